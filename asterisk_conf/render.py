"""Render a complete, minimal Asterisk configuration from settings and the database.

``render(out_dir, ...)`` writes every file Asterisk needs (asterisk.conf, modules.conf,
pjsip.conf, manager.conf, rtp.conf, logger.conf, indications.conf, extensions.conf) plus a
copy of ``dialplans/*.conf``. The output is deterministic: the same input gives the same
bytes (centralists sorted, no timestamps). Files meant for the telecom admin
(``pjsip_custom.conf``, ``extensions_custom.conf``) are created empty once and never
overwritten, and both rendered files ``#include`` them.

Nothing reaches a file unchecked (:func:`check_values`): the core validates what people type,
and the renderer checks again, refusing with :class:`RenderError` rather than writing a value
with a line break, a ``;`` or a reserved section name into Asterisk's configuration. Files are
written 0640 (some hold secrets); the instance gives them to Asterisk's group.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import math
import os
import re
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from asterisk_conf.numbers import LIST_SEPARATOR, NumberError, free_numbers
from asterisk_conf.sandbox import RUN_USER, InstanceLayout
from burgernet import channel_vars as cv
from burgernet.centralists import (
    CentralistError,
    check_contact,
    check_endpoint,
    check_md5_cred,
    check_name,
)
from burgernet.settings import AmdSettings, AsteriskSettings, Settings

TEMPLATES = Path(__file__).with_name("templates")
DIALPLANS = Path(__file__).resolve().parent.parent / "dialplans"
ADMIN_FILES = ("pjsip_custom.conf", "extensions_custom.conf")

# Explicit and short on purpose (modules.conf has autoload = no): PJSIP with digest auth and
# IP identification, RTP, FastAGI, the dialplan applications and functions the dialplans use,
# and the codecs/formats for our 8 kHz WAV prompts and Asterisk's own GSM sounds.
MODULES = (
    "res_pjproject",
    "res_statsd",
    "res_geolocation",
    "res_speech",
    "res_sorcery_config",
    "res_sorcery_memory",
    "res_sorcery_astdb",
    "res_pjsip",
    "res_pjsip_session",
    "res_pjsip_authenticator_digest",
    "res_pjsip_outbound_authenticator_digest",
    "res_pjsip_endpoint_identifier_user",
    "res_pjsip_endpoint_identifier_ip",
    "res_pjsip_registrar",
    "res_pjsip_outbound_registration",
    "res_pjsip_sdp_rtp",
    "res_pjsip_caller_id",
    "res_pjsip_header_funcs",  # PJSIP_HEADER(read,To): the called number from the To header
    "res_pjsip_acl",
    "res_security_log",
    "res_srtp",
    "res_pjsip_nat",
    "res_pjsip_dtmf_info",
    "res_pjsip_rfc3326",
    "res_pjsip_pubsub",
    # Device state shared with the other nodes of a cluster (asterisk.peer_nodes): PUBLISH out,
    # PUBLISH in. Loaded on a single node too (they cost nothing there), so one module list holds.
    "res_pjsip_outbound_publish",
    "res_pjsip_publish_asterisk",
    "chan_pjsip",
    "res_rtp_asterisk",
    "res_timing_timerfd",
    "res_agi",
    # Dial m(): the caller hears the "connecting" prompt while the centralist's phone rings.
    "res_musiconhold",
    # DeviceStateChange events on AMI (presence) and the DeviceStateList action (its resync).
    "res_manager_devicestate",
    "pbx_config",
    "app_dial",
    "app_playback",
    "app_record",
    "app_read",
    "app_verbose",
    "app_exec",
    # Gosub: Dial's b() and U() subroutines on the centralist's leg (dialplans/desk.conf).
    "app_stack",
    # Answering-machine detection on alert calls: AMD(), WaitForSilence() for the beep, and
    # UserEvent() that tells the voice sender AMD's verdict (dialplans/alert.conf).
    "app_amd",
    "app_waitforsilence",
    "app_userevent",
    "func_callerid",
    "func_strings",
    "func_channel",
    "func_logic",
    "func_global",
    "func_env",
    "func_hangupcause",
    "func_timeout",  # TIMEOUT(absolute): the AGI deadline around every AGI() a caller waits for
    "bridge_simple",
    "bridge_native_rtp",
    "codec_ulaw",
    "codec_alaw",
    "codec_a_mu",
    "codec_gsm",
    "codec_resample",
    "format_wav",
    "format_pcm",
    "format_gsm",
    "format_sln",
)


# The AMI events the project listens to (manager.conf eventfilter): the call tracker's, the
# broadcaster's Originate outcomes, and FullyBooted (panoramisk sends queued actions on it).
# UserEvent: AMD's verdict on an alert call (channel_vars.AMD_EVENT).
AMI_EVENTS = (
    "DialBegin",
    "DialEnd",
    "Hangup",
    "DeviceStateChange",
    "OriginateResponse",
    "FullyBooted",
    "UserEvent",
)


class RenderError(ValueError):
    """A value cannot go into Asterisk's configuration; nothing was written."""


# A digest no password has: an account without a password yet cannot be used by anyone.
LOCKED_MD5 = "0" * 32
# Rendered config files hold secrets (AMI secret, trunk password, digests).
FILE_MODE = 0o640
KEYS_DIR = "keys"


@dataclass(frozen=True)
class CentralistEndpoint:
    endpoint: str
    md5_cred: str | None  # PJSIP md5_cred (md5 of endpoint:realm:password); None: no password yet
    region_code: str
    display_name: str
    on_duty: bool = True
    contact: str | None = None  # a fixed contact for phones that do not REGISTER (and SIPp)


@dataclass(frozen=True)
class AsteriskPlan:
    """What the database says Asterisk must know, as plain data."""

    centralists: tuple[CentralistEndpoint, ...]
    fallback_region: str

    @property
    def fallback_pool(self) -> tuple[str, ...]:
        return tuple(
            c.endpoint for c in self.centralists if c.region_code == self.fallback_region and c.on_duty
        )


@dataclass(frozen=True)
class PeerNode:
    """Another Asterisk node this one exchanges its centralists' device states with."""

    name: str
    host: str
    port: int

    @property
    def endpoint(self) -> str:
        """Its PJSIP endpoint here (and the From user it publishes as): never a centralist's name."""
        return f"{PEER_ENDPOINT_PREFIX}{self.name}"

    @property
    def address(self) -> str | None:
        """The peer's IP address when ``host`` is one (then only it may publish as the peer)."""
        try:
            return str(ipaddress.ip_address(self.host))
        except ValueError:
            return None


# Peer nodes' endpoints are "bn-node-<name>"; check_values refuses a centralist of that name.
PEER_ENDPOINT_PREFIX = "bn-node-"
# Only the centralists' phones' states travel between nodes (not trunks, not peers themselves).
PEER_DEVICE_FILTER = "^PJSIP/"
_PROXY = re.compile(r"[A-Za-z0-9.-]{1,253}:[0-9]{1,5}")
_PEER = re.compile(r"(?P<name>[a-z][a-z0-9-]{0,19})@(?P<host>[A-Za-z0-9.-]{1,253}):(?P<port>[0-9]{1,5})")


def peer_nodes(a: AsteriskSettings) -> tuple[PeerNode, ...]:
    """asterisk.peer_nodes ("name@host:port"), each checked; :class:`RenderError` names a bad one."""
    peers = []
    for text in a.peer_nodes:
        match = _PEER.fullmatch(text)
        if match is None or not 1 <= int(match["port"]) <= 65535:
            raise _refuse("asterisk.peer_nodes", text, "is not name@host:port (name: a-z, 0-9, -)")
        peers.append(PeerNode(match["name"], match["host"], int(match["port"])))
    return tuple(peers)


def _agi_backup(a: AsteriskSettings) -> str:
    """The second FastAGI server's URL, or "" (none); host:port checked like the phone proxy."""
    if not a.agi_backup:
        return ""
    host, _, port = a.agi_backup.rpartition(":")
    if _PROXY.fullmatch(a.agi_backup) is None or not 1 <= int(port) <= 65535:
        raise _refuse("asterisk.agi_backup", a.agi_backup, "is not host:port")
    if (host, int(port)) == (a.agi_host, a.agi_port):
        raise _refuse("asterisk.agi_backup", a.agi_backup, "is this node's own FastAGI server")
    return f"agi://{a.agi_backup}"


def system_name(node_name: str) -> str:
    """Asterisk's systemname, the prefix of every channel's unique id. Nodes must differ: two
    nodes that both answered their 5th call in the same second would otherwise give it the same
    unique id, which the call log and the tip files are keyed by."""
    return f"burgernet-{node_name}" if node_name else "burgernet"


def entity_id(node_name: str) -> str:
    """A node's Asterisk entity id (EID), made from its name.

    Asterisk tells apart the device states of different nodes by EID, which it otherwise takes
    from a network card's MAC address: nodes on one machine (`burgernet cluster up`) or cloned
    virtual machines would share it and ignore each other's states. A locally administered
    address (the 0x02 bit) never collides with a real card's."""
    digest = hashlib.sha256(f"burgernet-node:{node_name}".encode()).digest()
    octets = bytes([(digest[0] | 0x02) & 0xFE, *digest[1:6]])
    return ":".join(f"{octet:02x}" for octet in octets)


@dataclass(frozen=True)
class RenderPaths:
    """Folders as Asterisk sees them (the data folder is bind-mounted at the same path)."""

    layout: InstanceLayout
    modules_dir: Path
    sounds_dir: Path
    tips_dir: Path


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def dialplan_files() -> list[Path]:
    return sorted(DIALPLANS.glob("*.conf"))


def render(out_dir: Path, settings: Settings, plan: AsteriskPlan, paths: RenderPaths) -> list[Path]:
    """Write the configuration into ``out_dir`` (a host path); returns the files written."""
    a = settings.asterisk
    out_dir.mkdir(parents=True, exist_ok=True)
    centralists = tuple(sorted(plan.centralists, key=lambda c: c.endpoint))
    pool = plan.fallback_pool
    check_values(a, centralists)
    try:
        numbers = free_numbers(a)
    except NumberError as exc:
        raise RenderError(f"not rendering Asterisk's configuration: {exc}") from None
    globals_ = [
        (cv.GLOBAL_AGI_URL, f"agi://{a.agi_host}:{a.agi_port}"),
        (cv.GLOBAL_AGI_URL_BACKUP, _agi_backup(a)),
        (cv.GLOBAL_FALLBACK_POOL, "&".join(f"PJSIP/{endpoint}" for endpoint in sorted(pool))),
        (cv.GLOBAL_FALLBACK_TIMEOUT, str(a.pool_ring_seconds)),
        (cv.GLOBAL_TIP_DIR, str(paths.tips_dir)),
        (cv.GLOBAL_FREE_NUMBER, a.free_number),
        (cv.GLOBAL_FREE_NUMBERS, LIST_SEPARATOR.join(numbers)),
        (cv.GLOBAL_CALLED_NUMBER_FROM, a.called_number_from),
        (cv.GLOBAL_SOUNDS, str(paths.sounds_dir)),
        (cv.GLOBAL_AGI_DEADLINE, str(cv.AGI_DEADLINE_SECONDS)),
        (cv.GLOBAL_ALERT_CALLER_ID, a.alert_caller_id),
        (cv.GLOBAL_ALERT_CALLER_NAME, a.alert_caller_name),
        (cv.GLOBAL_DESK_WHISPER, _yes_no("asterisk.desk_whisper", a.desk_whisper)),
        (cv.GLOBAL_PROMPT_FIRST, _prompt_first(a.connecting_prompt)),
        (cv.GLOBAL_AMD, _yes_no("amd.enabled", settings.amd.enabled)),
        (cv.GLOBAL_AMD_ARGS, ",".join(str(value) for value in amd_arguments(settings.amd))),
        (cv.GLOBAL_AMD_BEEP_SILENCE, str(_amd_number("amd.beep_silence_ms", settings.amd.beep_silence_ms))),
        (cv.GLOBAL_AMD_BEEP_WAIT, str(_amd_number("amd.beep_wait_seconds", settings.amd.beep_wait_seconds))),
    ]
    context = {
        "s": a,
        "networks": ",".join(a.centralist_networks),
        "locked": LOCKED_MD5,
        "tls": _install_tls_files(out_dir, a, paths),
        "plan": AsteriskPlan(centralists, plan.fallback_region),
        "layout": paths.layout,
        "modules_dir": paths.modules_dir,
        "modules": MODULES,
        "channel_vars": cv.AMI_CHANNEL_VARS,
        "ami_events": AMI_EVENTS,
        "globals": globals_,
        "dialplans": [path.name for path in dialplan_files()],
        "run_user": RUN_USER,
        "moh_classes": _moh_classes(paths),
        "peers": peer_nodes(a),
        "peer_device_filter": PEER_DEVICE_FILTER,
        "entity_id": entity_id(a.node_name) if a.node_name else None,
        "system_name": system_name(a.node_name),
        "amd": dict(zip(AMD_CONF_KEYS, amd_arguments(settings.amd), strict=True)),
    }
    environment = _environment()
    written: list[Path] = []
    for template in sorted(TEMPLATES.glob("*.conf.j2")):
        target = out_dir / template.name.removesuffix(".j2")
        _write_if_changed(target, environment.get_template(template.name).render(**context))
        written.append(target)
    dialplan_dir = out_dir / "dialplans"
    dialplan_dir.mkdir(exist_ok=True)
    wanted = {path.name for path in dialplan_files()}
    for stale in dialplan_dir.glob("*.conf"):
        if stale.name not in wanted:
            stale.unlink()
    for source in dialplan_files():
        _write_if_changed(dialplan_dir / source.name, source.read_text())
        written.append(dialplan_dir / source.name)
    _write_bytes_if_changed(out_dir / f"{RINGBACK_SOUND}.wav", ringback_wav())
    written.append(out_dir / f"{RINGBACK_SOUND}.wav")
    for name in ADMIN_FILES:
        admin = out_dir / name
        if not admin.exists():
            _write_if_changed(
                admin, f"; {name}: yours. Burgernet creates this file once and never overwrites it.\n"
            )
        written.append(admin)
    return written


# --- the caller's side while the centralist's phone rings (musiconhold.conf) ------------------
# The languages a caller's prompts come in: recordings.paths.LANGUAGES (an adapter this one may
# not import; tests/asterisk/test_desk_dialplan.py checks they are the same).
CALLER_LANGUAGES = ("nl", "en")
# Written next to the configuration: a Dutch ringback tone (425 Hz, 1 s on, 4 s off), looped
# after the prompt by the music-on-hold class (loop_last).
RINGBACK_SOUND = "burgernet-ringback"
_RINGBACK_RATE = 8000


def ringback_wav() -> bytes:
    """One cadence of the Dutch ringback tone as an 8 kHz 16-bit mono WAV (the same bytes each time)."""
    samples = bytearray()
    for n in range(5 * _RINGBACK_RATE):
        value = int(8000 * math.sin(2 * math.pi * 425 * n / _RINGBACK_RATE)) if n < _RINGBACK_RATE else 0
        samples += struct.pack("<h", value)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(_RINGBACK_RATE)
        out.writeframes(bytes(samples))
    return buffer.getvalue()


@dataclass(frozen=True)
class MohClass:
    name: str
    entries: tuple[str, ...]  # sound files as Asterisk sees them, without extension


def _moh_classes(paths: RenderPaths) -> tuple[MohClass, ...]:
    """One class per caller language: the "connecting" prompt once, then the ringback looped."""
    ringback = str(paths.layout.etc / RINGBACK_SOUND)
    classes = []
    for language in CALLER_LANGUAGES:
        prompt = str(paths.sounds_dir / language / "burgernet" / "connecting")
        for entry in (prompt, ringback):
            if not _CONF_VALUE.fullmatch(entry) or "," in entry:
                raise _refuse("music-on-hold file", entry, "is not a plain path")
        classes.append(MohClass(f"{cv.MOH_CONNECTING_PREFIX}{language}", (prompt, ringback)))
    return tuple(classes)


# --- answering-machine detection (settings [amd]) ---------------------------------------------
# AMD()'s arguments in its own order, and the amd.conf key of each (the same values are rendered
# into amd.conf, so an admin's own AMD() in extensions_custom.conf behaves like ours).
AMD_CONF_KEYS = (
    "initial_silence",
    "greeting",
    "after_greeting_silence",
    "total_analysis_time",
    "min_word_length",
    "between_words_silence",
    "maximum_number_of_words",
    "silence_threshold",
    "maximum_word_length",
)


def _amd_number(field: str, value: object) -> int:
    """A whole, positive number (bool is not one): anything else would change AMD()'s argument
    list (a comma) or end the line early."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 60_000:
        raise _refuse(field, value, "is not a whole number from 1 to 60000")
    return value


def amd_arguments(amd: AmdSettings) -> tuple[int, ...]:
    """AMD()'s nine arguments from settings, each checked, in the order of :data:`AMD_CONF_KEYS`."""
    values = (
        ("amd.initial_silence_ms", amd.initial_silence_ms),
        ("amd.greeting_ms", amd.greeting_ms),
        ("amd.after_greeting_silence_ms", amd.after_greeting_silence_ms),
        ("amd.total_analysis_ms", amd.total_analysis_ms),
        ("amd.min_word_length_ms", amd.min_word_length_ms),
        ("amd.between_words_silence_ms", amd.between_words_silence_ms),
        ("amd.max_words", amd.max_words),
        ("amd.silence_threshold", amd.silence_threshold),
        ("amd.max_word_length_ms", amd.max_word_length_ms),
    )
    checked = tuple(_amd_number(field, value) for field, value in values)
    if checked[3] <= checked[2]:  # total analysis time
        raise _refuse("amd.total_analysis_ms", checked[3], "is not longer than amd.after_greeting_silence_ms")
    return checked


def _yes_no(field: str, value: object) -> str:
    """A dialplan switch: only a real boolean becomes "yes" or "no"."""
    if not isinstance(value, bool):
        raise _refuse(field, value, "is not true or false")
    return "yes" if value else "no"


def _prompt_first(order: str) -> str:
    if order not in ("while_ringing", "before_ringing"):
        raise _refuse("asterisk.connecting_prompt", order, "is not while_ringing or before_ringing")
    return "yes" if order == "before_ringing" else "no"


@dataclass(frozen=True)
class TlsFiles:
    cert_file: Path  # as Asterisk sees them
    key_file: Path


def _install_tls_files(out_dir: Path, a: AsteriskSettings, paths: RenderPaths) -> TlsFiles | None:
    """Copy the certificate and key into the instance (Asterisk may live in a chroot)."""
    if not a.tls_enabled:
        return None
    keys = out_dir / KEYS_DIR
    keys.mkdir(mode=0o750, exist_ok=True)
    copied = []
    for source, name in ((a.tls_cert_file, "sip-cert.pem"), (a.tls_key_file, "sip-key.pem")):
        assert source is not None  # check_values made sure
        _write_if_changed(keys / name, source.read_text())
        copied.append(paths.layout.etc / KEYS_DIR / name)
    return TlsFiles(*copied)


# One line of configuration, without a comment: no control characters (a line break would start
# a new line), no ';' (starts a comment), no '[' ']' (section headers).
_CONF_VALUE = re.compile(r"[^\x00-\x1f\x7f;\[\]]*")
_HOST = re.compile(r"[A-Za-z0-9.:-]{1,253}")
_SIP_USER = re.compile(r"[A-Za-z0-9._+-]{0,64}")


def _refuse(field: str, value: object, why: str) -> RenderError:
    return RenderError(f"not rendering Asterisk's configuration: {field} {value!r} {why}")


def check_values(a: AsteriskSettings, centralists: tuple[CentralistEndpoint, ...]) -> None:
    """Every value the templates write, checked; :class:`RenderError` names the first bad one."""
    for field, value, pattern, allowed in (
        ("asterisk.sip_bind", a.sip_bind, _HOST, "an IP address or host name"),
        ("asterisk.ami_host", a.ami_host, _HOST, "an IP address or host name"),
        ("asterisk.agi_host", a.agi_host, _HOST, "an IP address or host name"),
        ("asterisk.trunk_host", a.trunk_host, _HOST, "an IP address or host name"),
        ("asterisk.trunk_username", a.trunk_username, _SIP_USER, "letters, digits and . _ + -"),
        ("asterisk.ami_username", a.ami_username, re.compile(r"[a-z0-9_-]{1,40}"), "a-z, 0-9, _ and -"),
        ("asterisk.free_number", a.free_number, re.compile(r"[0-9]{3,15}"), "3 to 15 digits"),
        ("asterisk.alert_caller_id", a.alert_caller_id, re.compile(r"[0-9]{3,15}"), "3 to 15 digits"),
        (
            "asterisk.alert_caller_name",
            a.alert_caller_name,
            re.compile(r"[A-Za-z0-9 .-]{1,40}"),
            "letters, digits, spaces, . and -",
        ),
        ("asterisk.fallback_region", a.fallback_region, re.compile(r"[A-Z0-9]{1,10}"), "a region code"),
        (
            "asterisk.called_number_from",
            a.called_number_from,
            re.compile(r"request_uri|to"),
            "request_uri or to",
        ),
    ):
        if not pattern.fullmatch(value):
            raise _refuse(field, value, f"is not allowed here: use {allowed}")
    for field, secret in (
        ("asterisk.ami_secret", a.ami_secret),
        ("asterisk.trunk_password", a.trunk_password),
        ("asterisk.node_secret", a.node_secret),
    ):
        if not _CONF_VALUE.fullmatch(secret):  # the secret itself stays out of the message
            raise RenderError(
                f"not rendering Asterisk's configuration: {field} contains a line break, a control "
                "character, ';', '[' or ']'"
            )
    if a.ami_username in ("general",):
        raise _refuse("asterisk.ami_username", a.ami_username, "is a reserved section name")
    for network in a.centralist_networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise _refuse("asterisk.centralist_networks", network, "is not a network (CIDR)") from None
    if a.tls_enabled:
        for field, path in (
            ("asterisk.tls_cert_file", a.tls_cert_file),
            ("asterisk.tls_key_file", a.tls_key_file),
        ):
            if path is None or not path.is_file():
                raise _refuse(field, str(path), "is not a file (needed with asterisk.tls_enabled)")
    if a.phone_proxy and _PROXY.fullmatch(a.phone_proxy) is None:
        raise _refuse("asterisk.phone_proxy", a.phone_proxy, "is not host:port")
    peers = peer_nodes(a)
    if peers and len(a.node_secret) < 24:
        raise RenderError(
            "not rendering Asterisk's configuration: asterisk.peer_nodes needs asterisk.node_secret "
            "(at least 24 characters, the same on every node; `burgernet secrets init` makes one)"
        )
    seen: set[str] = {peer.endpoint for peer in peers}
    for c in centralists:
        try:
            check_endpoint(c.endpoint)
            check_name(c.display_name)
            if c.contact is not None:
                check_contact(c.contact)
            if c.md5_cred is not None:
                check_md5_cred(c.md5_cred)
        except CentralistError as exc:
            raise RenderError(
                f"not rendering Asterisk's configuration: centralist {c.endpoint!r}: {exc}"
            ) from None
        if not re.fullmatch(r"[A-Z0-9]{1,10}", c.region_code):
            raise _refuse("region code", c.region_code, f"of centralist {c.endpoint!r}")
        if c.endpoint.startswith(PEER_ENDPOINT_PREFIX):
            raise _refuse(
                "SIP endpoint", c.endpoint, f"starts with {PEER_ENDPOINT_PREFIX!r}, kept for the nodes"
            )
        if c.endpoint in seen:
            raise _refuse("SIP endpoint", c.endpoint, "is there twice")
        seen.add(c.endpoint)


def _write_bytes_if_changed(target: Path, data: bytes) -> None:
    if target.is_file() and target.read_bytes() == data:
        os.chmod(target, FILE_MODE)
        return
    temporary = target.with_suffix(target.suffix + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(temporary, FILE_MODE)
    temporary.replace(target)


def _write_if_changed(target: Path, text: str) -> None:
    if target.is_file() and target.read_text() == text:
        os.chmod(target, FILE_MODE)
        return
    temporary = target.with_suffix(target.suffix + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(temporary, FILE_MODE)  # whatever the umask
    temporary.replace(target)

"""Render a complete, minimal Asterisk configuration from settings and the database.

``render(out_dir, ...)`` writes every file Asterisk needs (asterisk.conf, modules.conf,
pjsip.conf, manager.conf, rtp.conf, logger.conf, indications.conf, extensions.conf) plus a
copy of ``dialplans/*.conf``. The output is deterministic: the same input gives the same
bytes (centralists sorted, no timestamps). Files meant for the telecom admin
(``pjsip_custom.conf``, ``extensions_custom.conf``) are created empty once and never
overwritten, and both rendered files ``#include`` them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from asterisk_conf.sandbox import InstanceLayout
from burgernet import channel_vars as cv
from burgernet.settings import Settings

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
    "res_pjsip_nat",
    "res_pjsip_dtmf_info",
    "res_pjsip_rfc3326",
    "res_pjsip_pubsub",
    "chan_pjsip",
    "res_rtp_asterisk",
    "res_timing_timerfd",
    "res_agi",
    "pbx_config",
    "app_dial",
    "app_playback",
    "app_record",
    "app_read",
    "app_verbose",
    "app_exec",
    "func_callerid",
    "func_strings",
    "func_channel",
    "func_logic",
    "func_global",
    "func_env",
    "func_hangupcause",
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
AMI_EVENTS = ("DialEnd", "Hangup", "DeviceStateChange", "OriginateResponse", "FullyBooted")


@dataclass(frozen=True)
class CentralistEndpoint:
    endpoint: str
    password: str
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
    globals_ = [
        (cv.GLOBAL_AGI_URL, f"agi://{a.agi_host}:{a.agi_port}"),
        (cv.GLOBAL_FALLBACK_POOL, "&".join(f"PJSIP/{endpoint}" for endpoint in sorted(pool))),
        (cv.GLOBAL_FALLBACK_TIMEOUT, str(a.pool_ring_seconds)),
        (cv.GLOBAL_TIP_DIR, str(paths.tips_dir)),
        (cv.GLOBAL_FREE_NUMBER, a.free_number),
        (cv.GLOBAL_SOUNDS, str(paths.sounds_dir)),
    ]
    context = {
        "s": a,
        "plan": AsteriskPlan(centralists, plan.fallback_region),
        "layout": paths.layout,
        "modules_dir": paths.modules_dir,
        "modules": MODULES,
        "channel_vars": cv.AMI_CHANNEL_VARS,
        "ami_events": AMI_EVENTS,
        "globals": globals_,
        "dialplans": [path.name for path in dialplan_files()],
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
    for name in ADMIN_FILES:
        admin = out_dir / name
        if not admin.exists():
            admin.write_text(f"; {name}: yours. Burgernet creates this file once and never overwrites it.\n")
        written.append(admin)
    return written


def _write_if_changed(target: Path, text: str) -> None:
    if target.is_file() and target.read_text() == text:
        return
    temporary = target.with_suffix(target.suffix + ".tmp")
    temporary.write_text(text)
    temporary.replace(target)

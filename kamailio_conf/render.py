"""Render Kamailio's configuration (the SIP edge) from settings and the database.

``render(out_dir, settings, plan)`` writes:

- ``kamailio.cfg``: one template (templates/kamailio.cfg.j2), the routing logic and every value;
- ``dispatcher.list``: the Asterisk nodes, dispatcher set 1;
- ``credentials/centralist_ha1``: the centralists' digests (HA1) as a db_text table that
  Kamailio's htable module loads (folder 0700, file 0600: an HA1 is as good as the password
  against this realm). No other file holds them, and the configuration never logs them.

As with Asterisk's files (asterisk_conf.render), nothing reaches a file unchecked: every value
is matched against what it may be (an IP address, a port, a plain name, 32 hex digits) and
anything else, above all a quote, a line break or a route-script character, is refused with
:class:`KamailioRenderError` naming the setting, before a single file is written. The output is
deterministic: the same input gives the same bytes.
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from asterisk_conf.numbers import NumberError, free_numbers
from burgernet.settings import KAMAILIO_ALGORITHMS, Settings, sip_host_port

TEMPLATES = Path(__file__).with_name("templates")
CONFIG_FILE = "kamailio.cfg"
DISPATCHER_FILE = "dispatcher.list"
CREDENTIALS_DIR = "credentials"
CREDENTIALS_TABLE = "centralist_ha1"
RUNTIME_DIR = "run"
# The Asterisk nodes' dispatcher set.
NODE_SET = 1
# kamailio.cfg and dispatcher.list hold no secret; the digests do.
FILE_MODE = 0o640
SECRET_FILE_MODE = 0o600
SECRET_DIR_MODE = 0o700
# Kamailio's `debug` levels by name.
LOG_LEVELS = {"error": -1, "warning": 0, "notice": 1, "info": 2, "debug": 3}

# db_text's header for an htable table: htable reads key_name/key_type/value_type/key_value
# (and expires); types 0/0: a plain key with a string value.
_DB_TEXT_HEADER = "key_name(str) key_type(int) value_type(int) key_value(str) expires(int)"


class KamailioRenderError(ValueError):
    """A value cannot go into Kamailio's configuration; nothing was written."""


@dataclass(frozen=True)
class CentralistCredential:
    """A centralist's SIP account: the endpoint (the auth user) and its HA1 for the realm."""

    endpoint: str
    ha1: str


@dataclass(frozen=True)
class KamailioPlan:
    """What the database says Kamailio must know, as plain data."""

    credentials: tuple[CentralistCredential, ...]


@dataclass(frozen=True)
class RenderedEdge:
    """Where the rendered files are, and the addresses they use."""

    directory: Path
    listen_address: str
    listen_port: int
    nodes: tuple[tuple[str, int], ...]

    @property
    def config_file(self) -> Path:
        return self.directory / CONFIG_FILE

    @property
    def runtime_dir(self) -> Path:
        return self.directory / RUNTIME_DIR


# --- validation --------------------------------------------------------------------------------
# Everything below is pasted into route script or module parameters between double quotes:
# the patterns leave no room for a quote, a backslash, a line break, '$' (a pseudo-variable),
# '#' (a comment or preprocessor directive), ';' or ',' (list separators in parameters).
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_REALM = re.compile(r"[a-z0-9.-]{1,60}")
_ENDPOINT = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")
_HA1 = re.compile(r"[0-9a-f]{32}")
_CALLED_NUMBER = re.compile(r"\+?[0-9]{3,15}")


def _refuse(field: str, value: object, why: str) -> KamailioRenderError:
    return KamailioRenderError(f"not rendering Kamailio's configuration: {field} {value!r} {why}")


def _ipv4(field: str, value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise _refuse(field, value, "is not an IP address") from None
    if address.version != 4:
        raise _refuse(field, value, "is IPv6: the edge listens on IPv4 only for now")
    return str(address)


def _listen_address(value: str) -> str:
    address = _ipv4("kamailio.listen_address", value)
    if ipaddress.ip_address(address).is_unspecified:
        raise _refuse(
            "kamailio.listen_address",
            value,
            "is not one address: Via and Record-Route carry it, so it must be the edge's own",
        )
    return address


def _networks(field: str, values: Iterable[str]) -> tuple[str, ...]:
    networks = []
    for value in values:
        try:
            network = ipaddress.ip_network(str(value).strip(), strict=False)
        except ValueError:
            raise _refuse(field, value, "is not an IP address or network (CIDR)") from None
        if network.version != 4:
            raise _refuse(field, value, "is IPv6: the edge listens on IPv4 only for now")
        networks.append(str(network))
    if not networks:
        raise KamailioRenderError(f"not rendering Kamailio's configuration: {field} is empty")
    return tuple(dict.fromkeys(networks))


def _nodes(settings: Settings) -> tuple[tuple[str, int], ...]:
    k, a = settings.kamailio, settings.asterisk
    field = "kamailio.asterisk_nodes"
    configured = k.asterisk_nodes or [f"{a.sip_bind}:{a.sip_port}"]
    nodes = []
    for entry in configured:
        try:
            host, port = sip_host_port(entry)
        except ValueError as exc:
            raise _refuse(field, entry, f"is not usable: {exc}") from None
        # An IP, not a name: ds_is_from_list() recognises a node's requests by source address.
        nodes.append((_ipv4(field, host), port))
    if len(set(nodes)) != len(nodes):
        raise _refuse(field, configured, "lists a node twice")
    if (_listen_address(k.listen_address), k.listen_port) in nodes:
        raise _refuse(
            field,
            f"{k.listen_address}:{k.listen_port}",
            "is Kamailio's own address (kamailio.listen_address:listen_port): give the edge another port",
        )
    return tuple(nodes)


def _trunk_networks(settings: Settings) -> tuple[str, ...]:
    k, a = settings.kamailio, settings.asterisk
    if k.trunk_networks:
        return _networks("kamailio.trunk_networks", k.trunk_networks)
    try:
        return _networks("asterisk.trunk_host", [a.trunk_host])
    except KamailioRenderError:
        raise _refuse(
            "asterisk.trunk_host",
            a.trunk_host,
            "is not an IP address: list the carrier's addresses in kamailio.trunk_networks",
        ) from None


def _called_number_test(settings: Settings) -> str:
    """The route-script condition "the called number is one of the free numbers"."""
    try:
        numbers = free_numbers(settings.asterisk)
    except NumberError as exc:
        raise KamailioRenderError(f"not rendering Kamailio's configuration: {exc}") from None
    for number in numbers:
        if not _CALLED_NUMBER.fullmatch(number):
            raise _refuse("free number", number, "is not digits with an optional leading +")
    # Where the carrier puts the dialled number, as the Asterisk side reads it.
    variable = "$tU" if settings.asterisk.called_number_from == "to" else "$rU"
    return " || ".join(f'{variable} == "{number}"' for number in numbers)


def check_credentials(credentials: Iterable[CentralistCredential]) -> tuple[CentralistCredential, ...]:
    checked: dict[str, CentralistCredential] = {}
    for credential in sorted(credentials, key=lambda c: c.endpoint):
        if not _ENDPOINT.fullmatch(credential.endpoint):
            raise _refuse("SIP endpoint", credential.endpoint, "is not 2-40 of a-z, 0-9 and '-'")
        if not _HA1.fullmatch(credential.ha1):  # the digest itself stays out of the message
            raise KamailioRenderError(
                f"not rendering Kamailio's configuration: the SIP digest of {credential.endpoint!r} "
                "is not 32 lower-case hex digits"
            )
        if credential.endpoint in checked:
            raise _refuse("SIP endpoint", credential.endpoint, "is there twice")
        checked[credential.endpoint] = credential
    return tuple(checked.values())


def template_values(settings: Settings, out_dir: Path) -> dict[str, object]:
    """Every value the template writes, checked (:class:`KamailioRenderError` names the first bad one)."""
    k, a = settings.kamailio, settings.asterisk
    if not _REALM.fullmatch(a.sip_realm):
        raise _refuse("asterisk.sip_realm", a.sip_realm, "is not a-z, 0-9, '.' and '-'")
    for domain in k.domains:
        if not _NAME.fullmatch(domain):
            raise _refuse("kamailio.domains", domain, "is not a host name (letters, digits, '.', '-')")
    if k.dispatcher_algorithm not in KAMAILIO_ALGORITHMS:
        raise _refuse("kamailio.dispatcher_algorithm", k.dispatcher_algorithm, "is not a known algorithm")
    directory = out_dir.resolve()
    # Paths go between double quotes in the configuration.
    if not re.fullmatch(r"/[A-Za-z0-9._/+-]*", str(directory)):
        raise _refuse("output folder", str(directory), "has characters other than letters, digits and ._/+-")
    numbers = (
        k.listen_port,
        k.probe_interval_seconds,
        k.failover_timeout_ms,
        k.answer_timeout_seconds,
        k.pike_window_seconds,
        k.pike_max_requests,
        k.ban_seconds,
        k.auth_failures_before_ban,
        k.workers,
    )
    if not all(isinstance(number, int) and not isinstance(number, bool) for number in numbers):
        raise KamailioRenderError("not rendering Kamailio's configuration: a number setting is not a number")
    return {
        "listen_address": _listen_address(k.listen_address),
        "listen_port": k.listen_port,
        "aliases": tuple(k.domains),
        "realm": a.sip_realm,
        "workers": k.workers,
        "log_level": LOG_LEVELS[k.log_level],
        "runtime_dir": str(directory / RUNTIME_DIR),
        "dispatcher_list": str(directory / DISPATCHER_FILE),
        "credentials_dir": str(directory / CREDENTIALS_DIR),
        "credentials_table": CREDENTIALS_TABLE,
        "node_set": NODE_SET,
        "algorithm": k.algorithm_number,
        "algorithm_name": k.dispatcher_algorithm,
        "probe_interval_seconds": k.probe_interval_seconds,
        "failover_timeout_ms": k.failover_timeout_ms,
        "answer_timeout_ms": k.answer_timeout_seconds * 1000,
        "trunk_networks": ",".join(_trunk_networks(settings)),
        "phone_networks": ",".join(_networks("asterisk.centralist_networks", a.centralist_networks)),
        "free_number_test": _called_number_test(settings),
        "pike_window_seconds": k.pike_window_seconds,
        "pike_max_requests": k.pike_max_requests,
        "ban_seconds": k.ban_seconds,
        "auth_failures_before_ban": k.auth_failures_before_ban,
    }


def dispatcher_list(nodes: Iterable[tuple[str, int]]) -> str:
    lines = ["# Rendered by `burgernet kamailio render`: set, destination, flags, priority, attributes"]
    for number, (host, port) in enumerate(nodes, start=1):
        lines.append(f"{NODE_SET} sip:{host}:{port} 0 0 duid=node{number}")
    return "\n".join(lines) + "\n"


def credentials_table(credentials: Iterable[CentralistCredential]) -> str:
    rows = [_DB_TEXT_HEADER] + [f"{c.endpoint}:0:0:{c.ha1}:0" for c in credentials]
    return "\n".join(rows) + "\n"


def _environment() -> Environment:
    # Not HTML: autoescape would mangle the route script. Every value is checked before rendering.
    return Environment(  # nosec B701
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(out_dir: Path, settings: Settings, plan: KamailioPlan) -> RenderedEdge:
    """Check every value, then write the configuration into ``out_dir``."""
    values = template_values(settings, out_dir)
    nodes = _nodes(settings)
    credentials = check_credentials(plan.credentials)
    config = _environment().get_template(f"{CONFIG_FILE}.j2").render(**values)

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RUNTIME_DIR).mkdir(mode=SECRET_DIR_MODE, exist_ok=True)
    secrets_dir = out_dir / CREDENTIALS_DIR
    secrets_dir.mkdir(mode=SECRET_DIR_MODE, exist_ok=True)
    os.chmod(secrets_dir, SECRET_DIR_MODE)
    _write_if_changed(secrets_dir / CREDENTIALS_TABLE, credentials_table(credentials), SECRET_FILE_MODE)
    _write_if_changed(out_dir / DISPATCHER_FILE, dispatcher_list(nodes), FILE_MODE)
    _write_if_changed(out_dir / CONFIG_FILE, config, FILE_MODE)
    return RenderedEdge(out_dir, str(values["listen_address"]), settings.kamailio.listen_port, nodes)


def _write_if_changed(target: Path, text: str, mode: int) -> None:
    previous_mtime = None
    if target.is_file():
        if target.read_text() == text:
            os.chmod(target, mode)
            return
        previous_mtime = target.stat().st_mtime
    temporary = target.with_suffix(target.suffix + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(temporary, mode)  # whatever the umask
    temporary.replace(target)
    if previous_mtime is not None:
        # db_text notices a changed table by its modification time, in whole seconds: a file
        # rewritten within the second it was last written would otherwise look unchanged.
        mtime = max(time.time(), previous_mtime + 1)
        os.utime(target, (mtime, mtime))

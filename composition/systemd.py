"""systemd units for a real server: one service per long-running part, restarted by systemd.

``burgernet systemd render --output DIR`` writes them (it installs nothing and creates no user;
the README says what to copy where). Under systemd each part is its own service with
``Restart=always``: systemd does what ``burgernet run``'s supervisor does on a development
machine, and sandboxes each one (its own /tmp, a read-only system but for the data folder, no
privilege gain).

* ``burgernet-serve``, ``burgernet-serve-standby`` (the second FastAGI server, on
  asterisk.agi_backup's port), ``burgernet-worker``, ``burgernet-web``: as the dedicated
  system user.
* ``burgernet-asterisk``: the project's sandboxed Asterisk (``burgernet asterisk start``). It
  runs as root because the sandbox is a chroot with a bind mount; Asterisk itself drops to its
  own unprivileged user (``runuser`` in asterisk.conf). Leave it out (``--no-asterisk``) when
  Asterisk comes from a package of its own and point ``asterisk.*`` settings at it.
* ``burgernet.target``: all of them, to start, stop or restart together.

Redis and PostgreSQL come from their Debian units (``redis-server``, ``postgresql``); the units
are ordered after them when they exist. Every value put into a unit is checked first: a path
with a space or a ``%`` (a systemd specifier) would change what the line means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SERVICES = ("burgernet-serve", "burgernet-serve-standby", "burgernet-worker", "burgernet-web")
ASTERISK_SERVICE = "burgernet-asterisk"
TARGET = "burgernet.target"
ENV_EXAMPLE = "burgernet.env.example"

# useradd's own rule on Debian (NAME_REGEX), without the trailing "$" of machine accounts.
_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# Characters that systemd would read as something else in a path: whitespace splits, "%" is a
# specifier, quotes and backslashes are syntax, ";" separates commands.
_UNSAFE_IN_PATH = re.compile(r"[\s%\"'\\;$`]|[\x00-\x1f\x7f]")

WHAT = {
    "burgernet-serve": ("Burgernet FastAGI and AMI (the free number's call flows)", "serve"),
    # Listens on asterisk.agi_backup's port (set in the environment file): the dialplan tries it
    # when burgernet-serve is down or frozen, within the same call.
    "burgernet-serve-standby": ("Burgernet standby FastAGI server (asterisk.agi_backup)", "serve --standby"),
    "burgernet-worker": ("Burgernet broadcast worker (voice, SMS, e-mail)", "worker"),
    "burgernet-web": ("Burgernet control panel and API", "web serve"),
    ASTERISK_SERVICE: ("Burgernet's Asterisk (sandboxed)", "asterisk start"),
}
# How long a graceful stop may take before systemd kills: serve gives running calls 10 s.
STOP_TIMEOUT_SECONDS = {
    "burgernet-serve": 20,
    "burgernet-serve-standby": 20,
    "burgernet-worker": 30,
    "burgernet-web": 15,
    ASTERISK_SERVICE: 30,
}


class SystemdUnitError(ValueError):
    """A value that cannot go into a unit file; the message names it."""


@dataclass(frozen=True)
class UnitOptions:
    burgernet: Path  # the venv's `burgernet` executable
    user: str = "burgernet"
    group: str = "burgernet"
    data_dir: Path = Path("/var/lib/burgernet")
    env_file: Path = Path("/etc/burgernet/burgernet.env")
    restart_seconds: float = 2.0
    asterisk: bool = True
    sandbox_root: Path = Path("/var/cache/burgernet/asterisk-sid")

    def validate(self) -> None:
        for label, path in (
            ("--burgernet", self.burgernet),
            ("--data-dir", self.data_dir),
            ("--env-file", self.env_file),
            ("asterisk.sandbox_root", self.sandbox_root),
        ):
            text = str(path)
            if not path.is_absolute():
                raise SystemdUnitError(f"{label} must be an absolute path, not {text!r}")
            if _UNSAFE_IN_PATH.search(text):
                raise SystemdUnitError(
                    f"{label} {text!r} has a character systemd would misread (space, %, quote, ...)"
                )
            if ".." in path.parts:
                raise SystemdUnitError(f"{label} {text!r} may not contain '..'")
        for label, name in (("--user", self.user), ("--group", self.group)):
            if not _NAME.match(name):
                raise SystemdUnitError(
                    f"{label} {name!r} is not a valid user or group name (a-z, 0-9, '_' and '-', "
                    "starting with a letter or '_', at most 32 characters)"
                )
            if name == "root":
                raise SystemdUnitError(f"{label} may not be root: the services run as a dedicated user")
        if not 0.1 <= self.restart_seconds <= 600:
            raise SystemdUnitError("--restart-sec must be between 0.1 and 600 seconds")


def render_units(options: UnitOptions) -> dict[str, str]:
    """File name → contents: the services, the target and an example environment file."""
    options.validate()
    services = [*SERVICES, *([ASTERISK_SERVICE] if options.asterisk else [])]
    files = {f"{name}.service": _service(name, options) for name in services}
    files[TARGET] = _target(services)
    files[ENV_EXAMPLE] = _env_example(options)
    return files


def write_units(options: UnitOptions, output: Path) -> list[Path]:
    files = render_units(options)
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = output / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o644)
        written.append(path)
    return written


def _restart_seconds(value: float) -> str:
    return f"{value:g}s"


def _under_home(path: Path) -> bool:
    return path.parts[1:2] in (("home",), ("root",))


def _service(name: str, options: UnitOptions) -> str:
    description, command = WHAT[name]
    data_dir = str(options.data_dir)
    is_asterisk = name == ASTERISK_SERVICE
    after = ["network-online.target", "redis-server.service", "postgresql.service"]
    if not is_asterisk and options.asterisk:
        after.append(f"{ASTERISK_SERVICE}.service")
    writable = [data_dir, str(options.sandbox_root)] if is_asterisk else [data_dir]
    # The program must stay reachable: a venv under /home or /root keeps them readable.
    protect_home = "read-only" if _under_home(options.burgernet) or _under_home(options.data_dir) else "yes"
    lines = [
        "# Rendered by `burgernet systemd render`; render again rather than edit.",
        "[Unit]",
        f"Description={description}",
        f"After={' '.join(after)}",
        "Wants=network-online.target",
        f"PartOf={TARGET}",
        # Never give up: a part that keeps failing is retried every RestartSec, for ever.
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "Type=exec",
    ]
    if is_asterisk:
        lines += [
            "# Root for the chroot and its bind mount only: Asterisk drops to its own user (runuser).",
            "User=root",
        ]
    else:
        lines += [f"User={options.user}", f"Group={options.group}"]
    lines += [
        f"EnvironmentFile={options.env_file}",
        f"Environment=BURGERNET_DATA_DIR={data_dir}",
        f"WorkingDirectory={data_dir}",
        f"ExecStart={options.burgernet} {command}",
        "Restart=always",
        f"RestartSec={_restart_seconds(options.restart_seconds)}",
        f"TimeoutStopSec={STOP_TIMEOUT_SECONDS[name]}s",
        "UMask=0027",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ReadWritePaths={' '.join(writable)}",
        "PrivateTmp=yes",
        f"ProtectHome={protect_home}",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectControlGroups=yes",
        "LockPersonality=yes",
        "RestrictRealtime=yes",
        "SystemCallArchitectures=native",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"
        + (" AF_NETLINK" if is_asterisk else ""),  # Asterisk lists the interfaces
    ]
    if not is_asterisk:
        # (The Asterisk sandbox sets set-group-ID bits on its folders, and needs its devices.)
        lines += ["RestrictSUIDSGID=yes", "PrivateDevices=yes", "CapabilityBoundingSet="]
    lines += ["", "[Install]", f"WantedBy={TARGET}", ""]
    return "\n".join(lines)


def _target(services: list[str]) -> str:
    wanted = " ".join(f"{name}.service" for name in services)
    return "\n".join(
        [
            "# Rendered by `burgernet systemd render`.",
            "[Unit]",
            "Description=Burgernet (all its services)",
            f"Wants={wanted}",
            f"After={wanted}",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def _env_example(options: UnitOptions) -> str:
    return "\n".join(
        [
            f"# Copy to {options.env_file} (mode 0640, root:{options.group}); every BURGERNET_* setting",
            "# may be given here. The generated secrets live in <data dir>/secrets.toml",
            "# (`burgernet secrets init`), not here.",
            "# A TOML file with the other settings:",
            "#BURGERNET_CONFIG=/etc/burgernet/burgernet.toml",
            "# Debian's redis-server: its requirepass goes into the URL (or into redis.password).",
            "#BURGERNET_REDIS__URL=redis://:PASSWORD@127.0.0.1:6379/0",
            "# PostgreSQL (default: SQLite in the data folder).",
            "#BURGERNET_DATABASE__URL=postgresql+psycopg2://burgernet:PASSWORD@127.0.0.1/burgernet",
            "# The second FastAGI server (burgernet-serve-standby listens here; Asterisk tries it",
            "# when burgernet-serve fails). Another node's serve in a cluster.",
            "BURGERNET_ASTERISK__AGI_BACKUP=127.0.0.1:4574",
            "",
        ]
    )

"""An Asterisk instance for this project: provisioned, configured from the database, started.

Used by ``burgernet asterisk ...``, ``burgernet run`` and the telephony tests alike.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asterisk_conf.render import ADMIN_FILES, MODULES, AsteriskPlan, RenderPaths, render
from asterisk_conf.sandbox import (
    AsteriskInstall,
    AsteriskInstance,
    SandboxError,
    instance_layout,
    provision,
)
from burgernet import channel_vars as cv
from burgernet.settings import Settings
from recordings.paths import tips_dir

Log = Callable[[str], None]


@dataclass
class ConfiguredAsterisk:
    install: AsteriskInstall
    instance: AsteriskInstance
    paths: RenderPaths

    @property
    def config_dir(self) -> Path:
        """The rendered files, as a host path."""
        return self.install.inside(self.paths.layout.etc)


def install_for(settings: Settings, log: Log = print) -> AsteriskInstall:
    return provision(settings.asterisk.sandbox_root, settings.asterisk.prefer_system_asterisk, log=log)


def paths_for(settings: Settings, install: AsteriskInstall) -> RenderPaths:
    """Where this instance's files live, as Asterisk sees them."""
    data_dir = settings.data_dir.resolve()
    layout = instance_layout(install, settings.asterisk.instance_name, data_dir / "asterisk")
    return RenderPaths(
        layout, install.modules_dir, settings.sounds_dir.resolve(), tips_dir(settings).resolve()
    )


def prepare(settings: Settings, plan: AsteriskPlan, log: Log = print) -> ConfiguredAsterisk:
    """Provision (or reuse) Asterisk and render this instance's configuration."""
    install = install_for(settings, log)
    paths = paths_for(settings, install)
    render(install.inside(paths.layout.etc), settings, plan, paths)
    # The data folder is shared with Asterisk at the same path: prompts in, tips out.
    instance = AsteriskInstance(
        install,
        paths.layout,
        shared_dirs=(settings.data_dir.resolve(),),
        readable_dirs=(paths.sounds_dir, settings.recordings_dir.resolve()),
        writable_dirs=(paths.tips_dir,),
    )
    return ConfiguredAsterisk(install, instance, paths)


def check(configured: ConfiguredAsterisk, plan: AsteriskPlan | None = None) -> list[str]:
    """Let Asterisk load the configuration; every problem it reports, as lines (none = good).

    Starts the instance when it is not running (and stops it again). Prefer
    :func:`check_configuration`, which never touches a running instance.
    """
    instance = configured.instance
    started_here = instance.process is None
    if started_here:
        try:
            instance.start()
        except SandboxError as exc:
            return [str(exc), *_log_problems(instance)]
    try:
        return inspect(instance, plan)
    finally:
        if started_here:
            instance.stop()


def inspect(instance: AsteriskInstance, plan: AsteriskPlan | None = None) -> list[str]:
    """What a booted instance says is wrong: logged errors, missing modules/contexts/endpoints."""
    problems = _log_problems(instance)
    loaded = instance.rx("module show")
    problems += [f"module {module} did not load" for module in MODULES if f"{module}.so" not in loaded]
    dialplan = instance.rx("dialplan show")
    problems += [f"context {context} missing" for context in cv.CONTEXTS if f"'{context}'" not in dialplan]
    endpoints = instance.rx("pjsip show endpoints")
    wanted = ["trunk", *(c.endpoint for c in plan.centralists)] if plan else ["trunk"]
    problems += [f"endpoint {name} missing" for name in wanted if f" {name}" not in endpoints]
    return problems


def _log_problems(instance: AsteriskInstance) -> list[str]:
    text = instance.log_text("startup.log") + instance.log_text() + instance.log_text("console.log")
    seen: dict[str, None] = {}
    for line in text.splitlines():
        if " ERROR[" in line or " WARNING[" in line:
            seen.setdefault(line.strip(), None)
    return list(seen)


def free_udp_and_tcp_port() -> int:
    """A port free for both UDP (SIP) and TCP (AMI) on loopback right now."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def check_configuration(
    settings: Settings, plan: AsteriskPlan, admin_dir: Path | None = None, log: Log = print
) -> list[str]:
    """Render ``plan`` into a scratch instance on spare ports, let Asterisk load it, report.

    The telecom admin's own files (``pjsip_custom.conf``, ``extensions_custom.conf``) are
    taken from ``admin_dir`` (default: this instance's configuration folder), so their
    edits are checked too. A running ``burgernet run`` instance is not disturbed: the check
    has its own folders and ports. An empty list means Asterisk loaded everything cleanly.
    """
    install = install_for(settings, log)
    if admin_dir is None:
        admin_dir = install.inside(paths_for(settings, install).layout.etc)
    scratch = settings.model_copy(
        update={
            "asterisk": settings.asterisk.model_copy(
                update={
                    "instance_name": f"{settings.asterisk.instance_name}-check-{os.getpid()}",
                    "sip_port": free_udp_and_tcp_port(),
                    "ami_port": free_udp_and_tcp_port(),
                }
            )
        }
    )
    paths = paths_for(scratch, install)
    config_dir = install.inside(paths.layout.etc)
    if install.root is None:  # a system Asterisk: the scratch folders go to a temporary place
        paths = RenderPaths(
            instance_layout(install, "check", Path(tempfile.mkdtemp(prefix="bn-asterisk-check-"))),
            paths.modules_dir,
            paths.sounds_dir,
            paths.tips_dir,
        )
        config_dir = paths.layout.etc
    instance = AsteriskInstance(install, paths.layout)
    try:
        config_dir.mkdir(parents=True, exist_ok=True)
        for name in ADMIN_FILES:
            if (admin_dir / name).is_file():
                shutil.copyfile(admin_dir / name, config_dir / name)
        render(config_dir, scratch, plan, paths)
        return check(ConfiguredAsterisk(install, instance, paths), plan)
    finally:
        instance.remove()

"""An Asterisk instance for this project: provisioned, configured from the database, started.

Used by ``burgernet asterisk ...``, ``burgernet run`` and the telephony tests alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asterisk_conf.render import MODULES, AsteriskPlan, RenderPaths, render
from asterisk_conf.sandbox import AsteriskInstall, AsteriskInstance, instance_layout, provision
from burgernet import channel_vars as cv
from burgernet.settings import Settings


@dataclass
class ConfiguredAsterisk:
    install: AsteriskInstall
    instance: AsteriskInstance
    paths: RenderPaths

    @property
    def config_dir(self) -> Path:
        """The rendered files, as a host path."""
        return self.install.inside(self.paths.layout.etc)


def prepare(settings: Settings, plan: AsteriskPlan, log: object = print) -> ConfiguredAsterisk:
    """Provision (or reuse) Asterisk and render this instance's configuration."""
    install = provision(settings.asterisk.sandbox_root, settings.asterisk.prefer_system_asterisk, log=log)  # type: ignore[arg-type]
    data_dir = settings.data_dir.resolve()
    layout = instance_layout(install, settings.asterisk.instance_name, data_dir / "asterisk")
    paths = RenderPaths(layout, install.modules_dir, data_dir / "sounds", data_dir / "recordings" / "tips")
    render(install.inside(layout.etc), settings, plan, paths)
    # The data folder is shared with Asterisk at the same path: prompts in, tips out.
    instance = AsteriskInstance(install, layout, shared_dirs=(data_dir,))
    return ConfiguredAsterisk(install, instance, paths)


def check(configured: ConfiguredAsterisk) -> list[str]:
    """Let Asterisk load the configuration; every problem it reports, as lines (none = good)."""
    instance = configured.instance
    started_here = instance.process is None
    if started_here:
        instance.start()
    try:
        problems = [
            line for line in instance.log_text().splitlines() if " ERROR[" in line or " WARNING[" in line
        ]
        loaded = instance.rx("module show")
        problems += [f"module {module} did not load" for module in MODULES if f"{module}.so" not in loaded]
        dialplan = instance.rx("dialplan show")
        problems += [
            f"context {context} missing" for context in cv.CONTEXTS if f"'{context}'" not in dialplan
        ]
        endpoints = instance.rx("pjsip show endpoints")
        if "trunk" not in endpoints:
            problems.append("the trunk endpoint is missing")
        return problems
    finally:
        if started_here:
            instance.stop()

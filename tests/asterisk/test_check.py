"""`check_configuration` lets the real Asterisk load the rendered files and reports its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from asterisk_conf.instance import check_configuration, paths_for
from asterisk_conf.render import AsteriskPlan
from asterisk_conf.sandbox import AsteriskInstall
from tests.asterisk.conftest import StartAsterisk, asterisk_settings, centralist

pytestmark = pytest.mark.asterisk

PLAN = AsteriskPlan((centralist("c-mn-1", port=5091), centralist("c-am-1", region="AM")), "MN")


def _quiet(_line: str) -> None:
    pass


def test_the_rendered_configuration_loads_without_errors(
    tmp_path: Path, asterisk_install: AsteriskInstall
) -> None:
    settings = asterisk_settings(tmp_path, asterisk_install)
    assert check_configuration(settings, PLAN, admin_dir=tmp_path, log=_quiet) == []
    # The scratch instance is gone again; the real instance's folders were never made.
    assert not asterisk_install.inside(paths_for(settings, asterisk_install).layout.base).exists()


def test_an_admins_mistake_is_reported(tmp_path: Path, asterisk_install: AsteriskInstall) -> None:
    settings = asterisk_settings(tmp_path, asterisk_install)
    admin = tmp_path / "admin"
    admin.mkdir()
    (admin / "pjsip_custom.conf").write_text("[extra-phone]\ntype = endpoint\nno_such_option = yes\n")
    problems = check_configuration(settings, PLAN, admin_dir=admin, log=_quiet)
    assert any("no_such_option" in problem for problem in problems), problems


def test_the_check_leaves_a_running_instance_alone(
    tmp_path: Path, asterisk_install: AsteriskInstall, start_asterisk: StartAsterisk
) -> None:
    # Same settings (instance name, ports) as a live `burgernet run`: the check must use its own.
    settings = asterisk_settings(tmp_path, asterisk_install)
    live = start_asterisk(PLAN, settings=settings)
    assert check_configuration(settings, PLAN, log=_quiet) == []
    assert "Asterisk 22" in live.instance.rx("core show version")
    assert live.instance.process is not None and live.instance.process.poll() is None

"""`burgernet asterisk sandbox|render|check` on the seeded demo database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from asterisk_conf.sandbox import AsteriskInstall
from burgernet.db import session_scope
from burgernet.models import Centralist
from burgernet.settings import Settings
from composition.cli import main
from composition.context import Context
from testbed.ports import free_port

pytestmark = pytest.mark.asterisk


@pytest.fixture
def runner(
    bn_settings: Settings, asterisk_install: AsteriskInstall, monkeypatch: pytest.MonkeyPatch
) -> CliRunner:
    environment = {
        "BURGERNET_DATA_DIR": str(bn_settings.data_dir),
        "BURGERNET_DATABASE__URL": bn_settings.database_url,
        "BURGERNET_REDIS__URL": bn_settings.redis.url,
        "BURGERNET_ASTERISK__SANDBOX_ROOT": str(asterisk_install.root or "/var/cache/burgernet/asterisk-sid"),
        "BURGERNET_ASTERISK__INSTANCE_NAME": f"cli-{os.getpid()}",
        "BURGERNET_ASTERISK__SIP_PORT": str(free_port()),
        "BURGERNET_ASTERISK__AMI_PORT": str(free_port()),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return CliRunner()


def test_sandbox_prints_the_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["asterisk", "sandbox"])
    assert result.exit_code == 0, result.output
    assert "Asterisk 22" in result.output


def test_render_writes_every_centralist_from_the_database(
    runner: CliRunner, bn_context: Context, tmp_path: Path
) -> None:
    with session_scope(bn_context.sessions) as session:
        endpoints = list(session.scalars(select(Centralist.sip_endpoint)))
    assert len(endpoints) >= 30  # the 10 demo regions, 3 centralists each
    out = tmp_path / "rendered"
    result = runner.invoke(main, ["asterisk", "render", "--out", str(out)])
    assert result.exit_code == 0, result.output
    pjsip = (out / "pjsip.conf").read_text()
    for endpoint in endpoints:
        assert f"\n[{endpoint}]\ntype = endpoint\n" in pjsip


def test_check_passes_and_then_reports_an_admin_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["asterisk", "check"])
    assert result.exit_code == 0, result.output
    assert "without errors" in result.output
    admin = tmp_path / "admin"
    admin.mkdir()
    (admin / "pjsip_custom.conf").write_text("[oops]\ntype = endpoint\nallow = alaw\nbogus_key = 1\n")
    failed = runner.invoke(main, ["asterisk", "check", "--admin-dir", str(admin)])
    assert failed.exit_code == 1
    assert "bogus_key" in failed.output

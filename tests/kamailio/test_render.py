"""The edge's rendered configuration: Kamailio accepts it, bad values never reach it, digests stay private."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import kamailio_conf.process as kamailio_process
from burgernet.centralists import CentralistService
from burgernet.settings import Settings, SettingsError, as_environment, load_settings
from composition.cli import main
from composition.context import Context
from kamailio_conf.process import KamailioProcess, check_configuration, options_ping
from kamailio_conf.render import (
    CREDENTIALS_DIR,
    CREDENTIALS_TABLE,
    CentralistCredential,
    KamailioPlan,
    KamailioRenderError,
    RenderedEdge,
    render,
)
from testbed.ports import port_block
from testbed.sipp_edge import EdgeSipp, register_scenario

from .conftest import edge_plan, edge_settings


def _settings(tmp_path: Path, **kamailio: object) -> Settings:
    return edge_settings(tmp_path, 5080, (5091, 5092), None, **kamailio)


def test_kamailio_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    edge = render(tmp_path / "edge", _settings(tmp_path, domains=["edge.burgernet.test"]), edge_plan())

    result = check_configuration(edge.config_file)

    assert result.ok, result.output
    config = edge.config_file.read_text()
    assert "listen=udp:127.0.0.1:5080" in config
    assert 'alias="edge.burgernet.test"' in config
    assert '$rU == "08000011" || $rU == "+318000011"' in config  # every form of the free number
    assert (edge.directory / "dispatcher.list").read_text().splitlines()[1:] == [
        "1 sip:127.0.0.1:5091 0 0 duid=node1",
        "1 sip:127.0.0.1:5092 0 0 duid=node2",
    ]


def test_the_digests_are_in_one_private_file_and_nowhere_else(tmp_path: Path) -> None:
    plan = edge_plan()
    edge = render(tmp_path / "edge", _settings(tmp_path), plan)

    table = edge.directory / CREDENTIALS_DIR / CREDENTIALS_TABLE
    assert stat.S_IMODE(table.stat().st_mode) == 0o600
    assert stat.S_IMODE(table.parent.stat().st_mode) == 0o700
    for credential in plan.credentials:
        assert f"{credential.endpoint}:0:0:{credential.ha1}:0" in table.read_text()
        for other in (edge.config_file, edge.directory / "dispatcher.list"):
            assert credential.ha1 not in other.read_text()


@pytest.mark.parametrize(
    ("kamailio", "named"),
    [
        ({"listen_address": '127.0.0.1"; exit; "'}, "kamailio.listen_address"),
        ({"listen_address": "0.0.0.0"}, "kamailio.listen_address"),
        ({"domains": ['edge"\nroute[X]{}']}, "kamailio.domains"),
        ({"domains": ["$si"]}, "kamailio.domains"),
        ({"trunk_networks": ["10.0.0.0/8,0.0.0.0/0"]}, "kamailio.trunk_networks"),
        ({"trunk_networks": ["carrier.example"]}, "kamailio.trunk_networks"),
        ({"asterisk_nodes": ["node-a.example:5060"]}, "kamailio.asterisk_nodes"),
        ({"asterisk_nodes": ["127.0.0.1:5080"]}, "kamailio.asterisk_nodes"),  # the edge's own address
    ],
)
def test_a_bad_setting_is_refused_by_name_and_nothing_is_written(
    tmp_path: Path, kamailio: dict[str, object], named: str
) -> None:
    with pytest.raises(KamailioRenderError, match=re.escape(named)):
        render(tmp_path / "edge", _settings(tmp_path, **kamailio), edge_plan())
    assert not (tmp_path / "edge").exists()


@pytest.mark.parametrize(
    "kamailio",
    [
        {"asterisk_nodes": ["127.0.0.1:5060;transport=tcp"]},
        {"asterisk_nodes": ['127.0.0.1"x:5060']},
        {"asterisk_nodes": ["127.0.0.1:99999"]},
        {"dispatcher_algorithm": "random"},
        {"listen_port": 0},
    ],
)
def test_settings_refuse_what_could_never_be_rendered(tmp_path: Path, kamailio: dict[str, object]) -> None:
    with pytest.raises(SettingsError, match="kamailio"):
        load_settings(data_dir=tmp_path, kamailio=kamailio)


@pytest.mark.parametrize(
    ("credential", "named"),
    [
        (CentralistCredential('c-mn-1"', "0" * 32), "SIP endpoint"),
        (CentralistCredential("c-mn-1", "0" * 31 + "\n"), "SIP digest of 'c-mn-1'"),
        (CentralistCredential("c-mn-1", "ABCDEF" + "0" * 26), "SIP digest of 'c-mn-1'"),
    ],
)
def test_a_bad_account_is_refused_without_showing_the_digest(
    tmp_path: Path, credential: CentralistCredential, named: str
) -> None:
    with pytest.raises(KamailioRenderError, match=re.escape(named)) as refused:
        render(tmp_path / "edge", _settings(tmp_path), KamailioPlan((credential,)))
    assert credential.ha1 not in str(refused.value)


def test_the_trunk_acl_defaults_to_the_asterisk_trunk_host(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, asterisk={"trunk_host": "192.0.2.10"})
    edge = render(tmp_path / "edge", settings, edge_plan())
    assert 'is_in_subnet("$si", "192.0.2.10/32")' in edge.config_file.read_text()

    named = load_settings(data_dir=tmp_path, asterisk={"trunk_host": "sip.carrier.example"})
    with pytest.raises(KamailioRenderError, match=re.escape("kamailio.trunk_networks")):
        render(tmp_path / "named", named, edge_plan())


@pytest.fixture
def runner(bn_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name, value in {
        "BURGERNET_DATA_DIR": str(bn_settings.data_dir),
        "BURGERNET_DATABASE__URL": bn_settings.database_url,
        "BURGERNET_REDIS__URL": bn_settings.redis.url,
        "BURGERNET_KAMAILIO__LISTEN_PORT": str(port_block()),
        "BURGERNET_KAMAILIO__ASTERISK_NODES": f'["127.0.0.1:{port_block()}"]',
    }.items():
        monkeypatch.setenv(name, value)
    return CliRunner()


def test_render_check_and_reload_from_the_database_a_phone_registers_with_its_current_password(
    runner: CliRunner, bn_context: Context, bn_settings: Settings, tmp_path: Path
) -> None:
    centralists = CentralistService(bn_context.sessions, realm=bn_settings.asterisk.sip_realm)
    first = centralists.rotate_password("c-mn-1", actor="test")

    checked = runner.invoke(main, ["kamailio", "check"])
    assert checked.exit_code == 0, checked.output
    assert "Kamailio accepted the configuration" in checked.output

    out = tmp_path / "edge"
    rendered = runner.invoke(main, ["kamailio", "render", "--output", str(out)])
    assert rendered.exit_code == 0, rendered.output
    assert first not in rendered.output

    # The rendered folder runs as it is; a new password takes effect on `kamailio reload`,
    # without a restart.
    edge = RenderedEdge(out, "127.0.0.1", load_settings().kamailio.listen_port, ())
    process = KamailioProcess(edge, out / "kamailio.log")
    sipp = EdgeSipp("127.0.0.1", edge.listen_port)
    contact = f"sip:c-mn-1@127.0.0.1:{port_block()}"

    def registers(password: str, expected: int, name: str) -> bool:
        scenario = register_scenario("c-mn-1", password, contact, expected)
        return sipp.run(name, scenario, host="127.0.0.1", port=port_block(), media_port=port_block()).ok

    process.start()
    try:
        assert registers(first, 200, "first"), process.log_tail()
        second = centralists.rotate_password("c-mn-1", actor="test")
        reloaded = runner.invoke(main, ["kamailio", "reload", "--output", str(out)])
        assert reloaded.exit_code == 0, reloaded.output
        assert registers(second, 200, "second"), process.log_tail()
        assert registers(first, 403, "first-again"), process.log_tail()
    finally:
        sipp.cleanup()
        process.stop()


def test_reload_without_a_running_kamailio_says_so(
    runner: CliRunner, bn_context: Context, tmp_path: Path
) -> None:
    result = runner.invoke(main, ["kamailio", "reload", "--output", str(tmp_path / "edge")])

    assert result.exit_code == 1
    assert "no Kamailio is running" in result.output


def test_check_without_kamailio_says_what_to_install(
    runner: CliRunner, bn_context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(kamailio_process, "_KNOWN_BINARY", Path("/nonexistent/kamailio"))

    result = runner.invoke(main, ["kamailio", "check"])

    assert result.exit_code == 1
    assert "kamailio is not installed" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_check_reports_a_bad_value_as_one_clear_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BURGERNET_KAMAILIO__TRUNK_NETWORKS", '["not-a-network"]')

    result = runner.invoke(main, ["kamailio", "check"])

    assert result.exit_code == 1
    assert "kamailio.trunk_networks 'not-a-network' is not an IP address or network" in result.output


def test_start_runs_the_edge_in_the_foreground_until_it_is_told_to_stop(
    runner: CliRunner, bn_context: Context
) -> None:
    settings = load_settings()  # the runner's environment: its database, data folder and ports
    command = [str(Path(sys.executable).with_name("burgernet")), "kamailio", "start"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 20
        # Up when it says so (it prints once Kamailio answers OPTIONS).
        while not any(line.startswith("Kamailio: SIP") for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            ready, _, _ = select.select([process.stdout], [], [], 0.5)
            if ready:
                line = process.stdout.readline()
                assert line, "".join(lines)  # it exited
                lines.append(line)
        assert options_ping("127.0.0.1", settings.kamailio.listen_port) == 200
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        _end_orphaned_kamailio(settings.data_dir / "kamailio" / "run" / "kamailio.pid")

    assert process.returncode == 0, "".join(lines)
    assert f"Kamailio: SIP 127.0.0.1:{settings.kamailio.listen_port}" in "".join(lines)
    # Stopped with it: nothing answers on the edge's port any more.
    assert options_ping("127.0.0.1", settings.kamailio.listen_port) is None


def _end_orphaned_kamailio(pid_file: Path) -> None:
    """If the command died without stopping its Kamailio (a failed test), end that group here."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def test_the_edge_settings_reach_a_child_process_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `burgernet run` / `cluster up` hand settings to their children as BURGERNET_* variables.
    settings = _settings(tmp_path, domains=["edge.burgernet.test"])
    for name, value in as_environment(settings).items():
        monkeypatch.setenv(name, value)

    child = load_settings()

    assert child.kamailio == settings.kamailio
    assert child.asterisk.centralist_networks == settings.asterisk.centralist_networks

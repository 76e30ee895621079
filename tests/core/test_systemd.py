"""``burgernet systemd render``: units systemd accepts, with the sandboxing the issue asks for,
and every value checked before it goes into a unit."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from composition.cli import main
from composition.systemd import SystemdUnitError, UnitOptions, render_units

BURGERNET = Path(sys.executable).parent / "burgernet"  # the venv's, as the default takes it
SERVICES = (
    "burgernet-serve",
    "burgernet-serve-standby",
    "burgernet-worker",
    "burgernet-web",
    "burgernet-asterisk",
)


def parse(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(text)
    return parser


@pytest.fixture
def rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BURGERNET_DATA_DIR", str(tmp_path / "data"))
    output = tmp_path / "units"
    result = CliRunner().invoke(
        main,
        ["systemd", "render", "--output", str(output), "--data-dir", "/srv/burgernet", "--restart-sec", "3"],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in output.iterdir()) == sorted(
        [*(f"{name}.service" for name in SERVICES), "burgernet.target", "burgernet.env.example"]
    )
    return output


def test_systemd_accepts_the_units(rendered: Path) -> None:
    # systemd-analyze comes with the systemd package (Debian 12 has it, CI's container too) and
    # works without systemd running. Only where it is truly absent does the check fall back to
    # the parsed files below; a verify that runs and complains fails the test.
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        units = [str(p) for p in sorted(rendered.iterdir()) if p.suffix in (".service", ".target")]
        result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
    for name in SERVICES:
        unit = parse((rendered / f"{name}.service").read_text())
        service = unit["Service"]
        assert service["Restart"] == "always" and service["RestartSec"] == "3s"
        assert service["NoNewPrivileges"] == "yes"
        assert service["ProtectSystem"] == "strict" and service["PrivateTmp"] == "yes"
        assert service["ReadWritePaths"].split()[0] == "/srv/burgernet"
        assert service["Environment"] == "BURGERNET_DATA_DIR=/srv/burgernet"
        assert service["EnvironmentFile"] == "/etc/burgernet/burgernet.env"
        assert service["ExecStart"].split()[0] == str(BURGERNET)
        assert unit["Unit"]["StartLimitIntervalSec"] == "0"  # never gives up
        assert unit["Install"]["WantedBy"] == "burgernet.target"
        if name == "burgernet-asterisk":
            assert service["User"] == "root"  # chroot + bind mount; Asterisk drops to its own user
            assert service["ExecStart"].endswith(" asterisk start")
        else:
            assert (service["User"], service["Group"]) == ("burgernet", "burgernet")
            assert service["CapabilityBoundingSet"] == ""
    assert parse((rendered / "burgernet-serve.service").read_text())["Service"]["ExecStart"].endswith(
        " serve"
    )
    standby = parse((rendered / "burgernet-serve-standby.service").read_text())
    assert standby["Service"]["ExecStart"].endswith(" serve --standby")
    # The port it listens on comes from the environment file, which names it.
    assert (
        "\nBURGERNET_ASTERISK__AGI_BACKUP=127.0.0.1:4574\n"
        in (rendered / "burgernet.env.example").read_text()
    )
    target = parse((rendered / "burgernet.target").read_text())
    assert set(target["Unit"]["Wants"].split()) == {f"{name}.service" for name in SERVICES}


def test_without_asterisk_the_others_are_not_ordered_after_it(tmp_path: Path) -> None:
    files = render_units(UnitOptions(burgernet=BURGERNET, asterisk=False))
    assert "burgernet-asterisk.service" not in files
    serve = parse(files["burgernet-serve.service"])
    assert "burgernet-asterisk" not in serve["Unit"]["After"]
    assert "redis-server.service" in serve["Unit"]["After"].split()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"burgernet": Path("venv/bin/burgernet")}, "--burgernet must be an absolute path"),
        ({"data_dir": Path("/srv/burger net")}, "--data-dir '/srv/burger net' has a character"),
        ({"data_dir": Path("/srv/%h")}, "has a character systemd would misread"),
        ({"env_file": Path("/etc/../burgernet.env")}, "may not contain '..'"),
        ({"user": "Burger Net"}, "--user 'Burger Net' is not a valid user or group name"),
        ({"group": "x\nExecStartPre=/bin/sh"}, "--group"),
        ({"user": "root"}, "--user may not be root"),
        ({"restart_seconds": 0.0}, "--restart-sec must be between"),
    ],
)
def test_a_bad_value_is_refused_before_anything_is_written(change: dict[str, object], message: str) -> None:
    options = UnitOptions(burgernet=BURGERNET)
    bad = UnitOptions(**{**options.__dict__, **change})
    with pytest.raises(SystemdUnitError, match=message.replace("(", r"\(").replace(".", r"\.")):
        render_units(bad)


def test_the_command_says_what_is_wrong_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BURGERNET_DATA_DIR", str(tmp_path / "data"))
    output = tmp_path / "units"
    result = CliRunner().invoke(main, ["systemd", "render", "--output", str(output), "--user", "Bad User"])
    assert result.exit_code == 2
    assert "--user 'Bad User' is not a valid user or group name" in result.output
    assert "Traceback" not in result.output
    assert not output.exists()

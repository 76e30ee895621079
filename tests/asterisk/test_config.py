"""The rendered Asterisk configuration: deterministic, admin files kept, loaded cleanly by Asterisk,
and the dialplans speaking exactly the names in burgernet/channel_vars.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asterisk_conf.instance import check, prepare
from asterisk_conf.render import AsteriskPlan, CentralistEndpoint, RenderPaths, dialplan_files, render
from asterisk_conf.sandbox import AsteriskInstall, InstanceLayout
from burgernet import channel_vars as cv
from burgernet.settings import load_settings
from tests.conftest import free_port

PLAN = AsteriskPlan(
    (
        CentralistEndpoint("c-mn-2", "secret-two", "MN", "Bram"),
        CentralistEndpoint("c-mn-1", "secret-one", "MN", "Anouk", contact="sip:c-mn-1@127.0.0.1:5091"),
        CentralistEndpoint("c-mn-3", "secret-three", "MN", "Daan", on_duty=False),
        CentralistEndpoint("c-am-1", "secret-am", "AM", "Eva"),
    ),
    "MN",
)
PATHS = RenderPaths(InstanceLayout(Path("/inst")), Path("/modules"), Path("/data/sounds"), Path("/data/tips"))


def test_render_is_deterministic_and_keeps_admin_files(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    first, second = tmp_path / "a", tmp_path / "b"
    render(first, settings, PLAN, PATHS)
    shuffled = AsteriskPlan(tuple(reversed(PLAN.centralists)), "MN")
    render(second, settings, shuffled, PATHS)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name

    custom = first / "pjsip_custom.conf"
    custom.write_text("[my-extra-trunk]\ntype = endpoint\n")
    render(first, settings, PLAN, PATHS)
    assert custom.read_text() == "[my-extra-trunk]\ntype = endpoint\n"
    assert "#include pjsip_custom.conf" in (first / "pjsip.conf").read_text()
    assert "#include extensions_custom.conf" in (first / "extensions.conf").read_text()


def test_rendered_content(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, asterisk={"ami_secret": "s3cret-for-ami!", "agi_port": 4599})
    render(tmp_path, settings, PLAN, PATHS)
    pjsip = (tmp_path / "pjsip.conf").read_text()
    assert pjsip.index("[c-am-1]") < pjsip.index("[c-mn-1]") < pjsip.index("[c-mn-2]")
    assert "contact = sip:c-mn-1@127.0.0.1:5091" in pjsip
    trunk = pjsip.split("[c-am-1]")[0].split("[trunk]")[1]
    assert "\ncallerid =" not in trunk  # the trunk keeps callers' own numbers
    manager = (tmp_path / "manager.conf").read_text()
    assert "bindaddr = 127.0.0.1" in manager and "permit = 127.0.0.1/255.255.255.255" in manager
    assert "write = originate\n" in manager and "secret = s3cret-for-ami!" in manager
    modules = (tmp_path / "modules.conf").read_text()
    assert "autoload = no" in modules
    extensions = (tmp_path / "extensions.conf").read_text()
    # The fallback pool: on-duty centralists of the fallback region only.
    assert "BN_FALLBACK_POOL = PJSIP/c-mn-1&PJSIP/c-mn-2\n" in extensions
    assert "BN_AGI_URL = agi://127.0.0.1:4599" in extensions


def _names_in_dialplans() -> tuple[set[str], set[str], set[str]]:
    text = "\n".join(path.read_text() for path in dialplan_files())
    code = "\n".join(line.split(";", 1)[0] for line in text.splitlines())
    variables = set(re.findall(r"\b(BN_[A-Z_]+?)(?:_\$\{|\b)", code))
    contexts = set(re.findall(r"^\[([a-z-]+)\]", code, re.MULTILINE))
    scripts = set(re.findall(r"\$\{BN_AGI_URL\}/([a-z]+)", code))
    return variables, contexts, scripts


def test_dialplans_and_python_share_one_vocabulary() -> None:
    variables, contexts, scripts = _names_in_dialplans()
    known = {value for name, value in vars(cv).items() if name.isupper() and isinstance(value, str)}
    prefixes = {cv.VAR_TARGET_PREFIX.rstrip("_"), cv.VAR_TIMEOUT_PREFIX.rstrip("_")}
    unknown = {name for name in variables if name not in known and name not in prefixes}
    assert not unknown, f"dialplans use names missing from channel_vars: {sorted(unknown)}"
    assert contexts == set(cv.CONTEXTS)
    assert scripts == set(cv.AGI_SCRIPTS)
    # ...and every route Python can set is handled by the dialplan.
    text = "\n".join(path.read_text() for path in dialplan_files())
    for route in (cv.ROUTE_DIAL, cv.ROUTE_TIP, cv.ROUTE_NO_ACTION):
        assert f'"${{BN_ROUTE}}" = "{route}"' in text


@pytest.mark.asterisk
def test_asterisk_loads_the_configuration_without_errors(
    tmp_path: Path, asterisk_install: AsteriskInstall
) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        asterisk={
            "sip_port": free_port(),
            "ami_port": free_port(),
            "agi_port": free_port(),
            "instance_name": f"check-{free_port()}",
            "sandbox_root": str(asterisk_install.root or "/var/cache/burgernet/asterisk-sid"),
        },
    )
    configured = prepare(settings, PLAN)
    assert check(configured) == []
    # A broken admin file is reported, not hidden.
    (configured.config_dir / "extensions_custom.conf").write_text("[broken\nexten => s,1,Nonsense(\n")
    problems = check(configured)
    assert problems, "a broken include must be reported"

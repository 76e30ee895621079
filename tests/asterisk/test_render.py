"""The rendered configuration: complete, deterministic, and kind to the admin's own files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asterisk_conf.render import (
    ADMIN_FILES,
    MODULES,
    AsteriskPlan,
    RenderError,
    RenderPaths,
    dialplan_files,
    render,
)
from asterisk_conf.sandbox import InstanceLayout
from burgernet import channel_vars as cv
from burgernet.settings import Settings, load_settings
from tests.asterisk.conftest import centralist

PATHS = RenderPaths(
    InstanceLayout(Path("/burgernet-instances/unit")),
    Path("/usr/lib/x86_64-linux-gnu/asterisk/modules"),
    Path("/srv/burgernet/sounds"),
    Path("/srv/burgernet/recordings/tips"),
)
PLAN = AsteriskPlan(
    (
        centralist("c-mn-2", port=5092),
        centralist("c-am-1", region="AM"),
        centralist("c-mn-1", port=5091),
        centralist("c-mn-3", on_duty=False),
    ),
    "MN",
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path, asterisk={"sip_port": 5160, "ami_secret": "a-long-ami-secret"})


def _files(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _section(text: str, name: str, kind: str) -> str:
    """The body of pjsip.conf section [name] with type = kind."""
    for body in re.split(r"^\[", text, flags=re.MULTILINE):
        if body.startswith(f"{name}]") and f"type = {kind}\n" in body:
            return body
    raise AssertionError(f"no [{name}] of type {kind}")


def test_same_input_gives_byte_identical_files(tmp_path: Path, settings: Settings) -> None:
    render(tmp_path / "a", settings, PLAN, PATHS)
    shuffled = AsteriskPlan(tuple(reversed(PLAN.centralists)), PLAN.fallback_region)
    render(tmp_path / "b", settings, shuffled, PATHS)
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert first == second
    expected = {
        "asterisk.conf",
        "modules.conf",
        "pjsip.conf",
        "manager.conf",
        "rtp.conf",
        "logger.conf",
        "extensions.conf",
    }
    assert expected <= set(first)
    assert {f"dialplans/{path.name}" for path in dialplan_files()} <= set(first)


def test_rerendering_keeps_admin_files_and_drops_stale_dialplans(tmp_path: Path, settings: Settings) -> None:
    out = tmp_path / "etc"
    render(out, settings, PLAN, PATHS)
    for name in ADMIN_FILES:
        assert (out / name).is_file()
        (out / name).write_text(f"; {name} edited by the telecom admin\n")
    (out / "dialplans" / "removed-long-ago.conf").write_text("[old]\n")
    (out / "pjsip.conf").write_text("; hand edit in a rendered file: overwritten\n")
    render(out, settings, PLAN, PATHS)
    for name in ADMIN_FILES:
        assert (out / name).read_text() == f"; {name} edited by the telecom admin\n"
    assert not (out / "dialplans" / "removed-long-ago.conf").exists()
    assert "hand edit" not in (out / "pjsip.conf").read_text()
    assert "#include pjsip_custom.conf" in (out / "pjsip.conf").read_text()
    assert "#include extensions_custom.conf" in (out / "extensions.conf").read_text()


def test_globals_carry_the_contract_names_and_the_on_duty_fallback_pool(
    tmp_path: Path, settings: Settings
) -> None:
    render(tmp_path, settings, PLAN, PATHS)
    text = (tmp_path / "extensions.conf").read_text()
    globals_ = dict(re.findall(r"^(BN_[A-Z_]+) = (.*)$", text, flags=re.MULTILINE))
    assert set(globals_) == set(cv.GLOBALS)
    # Sorted, on duty, in the fallback region only: c-mn-3 is off duty, c-am-1 is elsewhere.
    assert globals_[cv.GLOBAL_FALLBACK_POOL] == "PJSIP/c-mn-1&PJSIP/c-mn-2"
    assert globals_[cv.GLOBAL_FALLBACK_TIMEOUT] == str(settings.asterisk.pool_ring_seconds)
    assert globals_[cv.GLOBAL_AGI_URL] == f"agi://127.0.0.1:{settings.asterisk.agi_port}"
    assert globals_[cv.GLOBAL_TIP_DIR] == str(PATHS.tips_dir)
    assert globals_[cv.GLOBAL_SOUNDS] == str(PATHS.sounds_dir)
    assert globals_[cv.GLOBAL_FREE_NUMBER] == settings.asterisk.free_number
    for path in dialplan_files():
        assert f"#include dialplans/{path.name}" in text


def test_pjsip_has_the_trunk_by_ip_and_one_authenticated_endpoint_per_centralist(
    tmp_path: Path, settings: Settings
) -> None:
    render(tmp_path, settings, PLAN, PATHS)
    text = (tmp_path / "pjsip.conf").read_text()
    assert "bind = 127.0.0.1:5160" in text
    assert f"context = {cv.CTX_FREEPHONE}" in _section(text, "trunk", "endpoint")
    assert "match = 127.0.0.1" in _section(text, "trunk", "identify")
    assert "registration" not in text  # no trunk_username: the trunk needs no REGISTER
    for c in PLAN.centralists:
        endpoint = _section(text, c.endpoint, "endpoint")
        assert f"context = {cv.CTX_CENTRALISTS}" in endpoint and f"auth = {c.endpoint}" in endpoint
        auth = _section(text, c.endpoint, "auth")
        assert f"password_digest = md5:{c.md5_cred}" in auth and "\npassword =" not in auth
        aor = _section(text, c.endpoint, "aor")
        assert "max_contacts = 1" in aor
        assert (f"contact = {c.contact}" in aor) == (c.contact is not None)


def test_a_trunk_with_credentials_registers(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, asterisk={"trunk_username": "burgernet", "trunk_password": "pw-trunk-1"}
    )
    render(tmp_path, settings, PLAN, PATHS)
    text = (tmp_path / "pjsip.conf").read_text()
    assert "outbound_auth = trunk-auth" in _section(text, "trunk", "endpoint")
    assert "password = pw-trunk-1" in _section(text, "trunk-auth", "auth")
    assert "client_uri = sip:burgernet@127.0.0.1:5070" in _section(text, "trunk-registration", "registration")


def test_manager_is_loopback_only_with_the_channel_vars(tmp_path: Path, settings: Settings) -> None:
    render(tmp_path, settings, PLAN, PATHS)
    text = (tmp_path / "manager.conf").read_text()
    assert "bindaddr = 127.0.0.1" in text
    assert f"channelvars = {','.join(cv.AMI_CHANNEL_VARS)}" in text
    user = text.split(f"[{settings.asterisk.ami_username}]", 1)[1]
    assert "secret = a-long-ami-secret" in user
    assert "deny = 0.0.0.0/0.0.0.0" in user and "permit = 127.0.0.1/255.255.255.255" in user
    assert re.search(r"^write = originate,reporting$", user, flags=re.MULTILINE)  # reporting: reads only
    assert "system" not in re.search(r"^write = .*$", user, flags=re.MULTILINE).group(0)  # type: ignore[union-attr]


def test_modules_are_an_explicit_list(tmp_path: Path, settings: Settings) -> None:
    render(tmp_path, settings, PLAN, PATHS)
    text = (tmp_path / "modules.conf").read_text()
    assert "autoload = no" in text
    assert re.findall(r"^load = (\S+)\.so$", text, flags=re.MULTILINE) == list(MODULES)


def test_asterisk_conf_points_at_the_instance_folders(tmp_path: Path, settings: Settings) -> None:
    render(tmp_path, settings, PLAN, PATHS)
    text = (tmp_path / "asterisk.conf").read_text()
    for key, folder in (
        ("astetcdir", PATHS.layout.etc),
        ("astrundir", PATHS.layout.run),
        ("astspooldir", PATHS.layout.spool),
        ("astlogdir", PATHS.layout.log),
        ("astvarlibdir", PATHS.layout.lib),
        ("astmoddir", PATHS.modules_dir),
    ):
        assert f"{key} => {folder}\n" in text


def test_the_backup_fastagi_server_and_the_node_s_system_name_are_rendered(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        asterisk={"ami_secret": "a-long-ami-secret", "agi_backup": "10.0.1.12:4573", "node_name": "n1"},
    )
    render(tmp_path, settings, PLAN, PATHS)
    globals_ = dict(re.findall(r"^(BN_[A-Z_]+) = (.*)$", (tmp_path / "extensions.conf").read_text(), re.M))
    assert globals_[cv.GLOBAL_AGI_URL_BACKUP] == "agi://10.0.1.12:4573"
    # Unique ids start with the system name: two nodes must never hand out the same one.
    assert "\nsystemname = burgernet-n1\n" in (tmp_path / "asterisk.conf").read_text()


def test_without_a_backup_the_global_is_empty_and_the_system_name_plain(
    tmp_path: Path, settings: Settings
) -> None:
    render(tmp_path, settings, PLAN, PATHS)
    globals_ = dict(re.findall(r"^(BN_[A-Z_]+) = (.*)$", (tmp_path / "extensions.conf").read_text(), re.M))
    assert globals_[cv.GLOBAL_AGI_URL_BACKUP].strip() == ""
    assert "\nsystemname = burgernet\n" in (tmp_path / "asterisk.conf").read_text()


def test_a_backup_that_is_this_node_s_own_fastagi_server_is_refused(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        asterisk={"ami_secret": "a-long-ami-secret", "agi_port": 4600, "agi_backup": "127.0.0.1:4600"},
    )
    with pytest.raises(
        RenderError, match=re.escape("asterisk.agi_backup '127.0.0.1:4600' is this node's own")
    ):
        render(tmp_path, settings, PLAN, PATHS)

"""The sandbox Asterisk boots our configuration, answers the CLI, and instances coexist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asterisk_conf.instance import inspect
from asterisk_conf.render import AsteriskPlan
from asterisk_conf.sandbox import AsteriskInstall, SandboxError, provision
from burgernet import channel_vars as cv
from tests.asterisk.conftest import StartAsterisk, centralist

pytestmark = pytest.mark.asterisk

PLAN = AsteriskPlan((centralist("c-mn-1", port=5091), centralist("c-mn-2")), "MN")


def test_the_sandbox_is_asterisk_22(asterisk_install: AsteriskInstall) -> None:
    assert asterisk_install.version.startswith("Asterisk 22"), asterisk_install.version
    if asterisk_install.root is not None:
        # Without the host's names in the chroot every call stalls on look-ups.
        assert (asterisk_install.root / "etc/hosts").read_bytes() == Path("/etc/hosts").read_bytes()


def test_an_instance_boots_with_our_configuration(start_asterisk: StartAsterisk) -> None:
    configured = start_asterisk(PLAN)
    instance = configured.instance
    assert inspect(instance, PLAN) == []
    assert "Asterisk 22" in instance.rx("core show version")
    dialplan = instance.rx(f"dialplan show {cv.CTX_FREEPHONE}")
    assert "AGI(${BN_AGI_NOW}/freephone)" in dialplan
    globals_ = instance.rx("dialplan show globals")
    assert "BN_FALLBACK_POOL=PJSIP/c-mn-1&PJSIP/c-mn-2" in globals_
    contact = instance.rx("pjsip show aor c-mn-1")
    assert "sip:c-mn-1@127.0.0.1:5091" in contact
    # AMI listens where the settings say, on loopback only.
    port = re.search(r"^port = (\d+)$", (configured.config_dir / "manager.conf").read_text(), re.MULTILINE)
    assert port is not None
    assert f"127.0.0.1:{port.group(1)}" in instance.rx("manager show settings")


def test_host_paths_map_into_the_chroot(
    start_asterisk: StartAsterisk, asterisk_install: AsteriskInstall
) -> None:
    configured = start_asterisk(PLAN)
    instance = configured.instance
    log_dir = configured.paths.layout.log  # as Asterisk sees it
    messages = instance.host_path(log_dir) / "messages.log"
    assert messages.is_file() and messages.stat().st_size > 0  # Asterisk wrote it, we find it
    if asterisk_install.root is not None:
        assert instance.host_path(log_dir) == asterisk_install.root / str(log_dir).lstrip("/")
        assert not (log_dir / "messages.log").exists()  # not on the host's own /burgernet-instances


def test_two_instances_run_side_by_side_and_stop_cleanly(start_asterisk: StartAsterisk) -> None:
    first = start_asterisk(PLAN)
    second = start_asterisk(PLAN)
    assert first.paths.layout.run != second.paths.layout.run
    assert "Asterisk 22" in first.instance.rx("core show version")
    assert "Asterisk 22" in second.instance.rx("core show version")
    process = first.instance.process
    assert process is not None
    first.instance.stop()
    assert process.poll() is not None  # the child really ended
    with pytest.raises(SandboxError):
        first.instance.rx("core show version")
    assert "Asterisk 22" in second.instance.rx("core show version")


def test_an_unreachable_mirror_fails_clearly_and_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "cache" / "asterisk-sid"
    with pytest.raises(
        SandboxError, match=r"debootstrap failed \(is http://127\.0\.0\.1:9/debian reachable\?\)"
    ):
        provision(root, prefer_system=False, log=lambda _line: None, mirror="http://127.0.0.1:9/debian")
    assert not root.exists()
    assert list((tmp_path / "cache").iterdir()) == []  # no half-built chroot left behind

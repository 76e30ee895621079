"""A real Asterisk for the tests in this folder: the project's sandbox, provisioned once.

``asterisk_install`` (tests/conftest.py) provisions it for real: debootstrap of Debian sid the
first time, the cached chroot after that. When it cannot be had the tests fail with the
sandbox's message: no skips.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from asterisk_conf.instance import ConfiguredAsterisk, prepare
from asterisk_conf.render import AsteriskPlan, CentralistEndpoint
from asterisk_conf.sandbox import AsteriskInstall
from burgernet.centralists import sip_digest
from burgernet.settings import Settings, load_settings
from testbed.ports import free_port

_instances = itertools.count(1)


def sip_password(endpoint: str) -> str:
    """The test password of ``endpoint`` (the plan keeps only its digest)."""
    return f"secret-{endpoint}"


def centralist(
    endpoint: str, region: str = "MN", port: int | None = None, on_duty: bool = True
) -> CentralistEndpoint:
    contact = f"sip:{endpoint}@127.0.0.1:{port}" if port else None
    digest = sip_digest(endpoint, "burgernet", sip_password(endpoint))
    return CentralistEndpoint(endpoint, digest, region, endpoint.upper(), on_duty, contact)


def asterisk_settings(data_dir: Path, install: AsteriskInstall, **asterisk: object) -> Settings:
    """Settings for one test instance: its own folders and spare ports, FastAGI on a dead port."""
    values: dict[str, object] = {
        "sandbox_root": str(install.root or "/var/cache/burgernet/asterisk-sid"),
        "instance_name": f"t{os.getpid()}-{next(_instances)}",
        "sip_port": free_port(),
        "ami_port": free_port(),
        # Nothing listens here unless a test starts something: FastAGI is "down".
        "agi_port": free_port(),
        "trunk_port": free_port(),
        "pool_ring_seconds": 4,
        "owner_ring_seconds": 3,
        "fallback_region": "MN",
    }
    values.update(asterisk)
    return load_settings(data_dir=data_dir, asterisk=values)


StartAsterisk = Callable[..., ConfiguredAsterisk]


@pytest.fixture
def start_asterisk(tmp_path: Path, asterisk_install: AsteriskInstall) -> Iterator[StartAsterisk]:
    """Render a plan and boot an instance; every instance is stopped and deleted afterwards."""
    started: list[ConfiguredAsterisk] = []

    def start(plan: AsteriskPlan, settings: Settings | None = None, **asterisk: object) -> ConfiguredAsterisk:
        if settings is None:
            settings = asterisk_settings(tmp_path / f"data-{len(started)}", asterisk_install, **asterisk)
        configured = prepare(settings, plan, log=lambda _line: None)
        started.append(configured)
        configured.instance.start()
        return configured

    yield start
    for configured in started:
        configured.instance.remove()

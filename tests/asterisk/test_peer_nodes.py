"""Two real Asterisk nodes share their centralists' device states (asterisk.peer_nodes).

A call to the free number on node 1 is answered by centralist c-mn-1 (a SIPp phone). While it
lasts, node 2 — which carries no call at all — reports PJSIP/c-mn-1 as in a call (BUSY): in its device
state cache (AMI ``DeviceStateList``) and as a ``DeviceStateChange`` event, the very event the
routing's presence in Redis is fed from. When the call ends, node 2 says "not in use" again.
A publisher without the node secret is refused.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from asterisk_conf.render import AsteriskPlan, RenderError, check_values, entity_id, peer_nodes
from asterisk_conf.sandbox import AsteriskInstall
from burgernet.settings import Settings
from ivr.ami import AmiClient
from testbed.ports import free_port
from testbed.sipp import Sipp
from tests.asterisk.conftest import StartAsterisk, asterisk_settings, centralist
from tests.ivr.conftest import eventually

pytestmark = pytest.mark.asterisk

NODE_SECRET = "node-secret-for-the-test-0123456789"
CALLER = "0612345678"
DEVICE = "PJSIP/c-mn-1"
# A phone in a call: BUSY once it is at device_state_busy_at (1 call), INUSE otherwise. The
# routing's presence counts both as busy.
IN_A_CALL = {"INUSE", "BUSY"}


def ami_client(settings: Settings) -> AmiClient:
    a = settings.asterisk
    return AmiClient("127.0.0.1", a.ami_port, a.ami_username, a.ami_secret, min_backoff=0.1, max_backoff=0.5)


def two_nodes(
    tmp_path: Path, install: AsteriskInstall, secrets: tuple[str, str]
) -> tuple[Settings, Settings]:
    ports = (free_port(), free_port())
    first = asterisk_settings(tmp_path / "n1", install, node_name="n1", sip_port=ports[0])
    second = asterisk_settings(tmp_path / "n2", install, node_name="n2", sip_port=ports[1])
    linked = []
    for settings, peer, port, secret in (
        (first, "n2", ports[1], secrets[0]),
        (second, "n1", ports[0], secrets[1]),
    ):
        asterisk = settings.asterisk.model_copy(
            update={"peer_nodes": [f"{peer}@127.0.0.1:{port}"], "node_secret": secret}
        )
        linked.append(settings.model_copy(update={"asterisk": asterisk}))
    return linked[0], linked[1]


@pytest.fixture
def sipp(tmp_path: Path) -> Any:
    runner = Sipp(asterisk_port=0, workdir=tmp_path / "sipp")
    runner.workdir.mkdir()
    yield runner
    runner.cleanup()


def test_the_nodes_get_their_own_entity_ids_and_bad_peers_are_refused() -> None:
    assert entity_id("n1") != entity_id("n2")
    assert entity_id("n1") == entity_id("n1")  # stable across restarts and renders
    assert int(entity_id("n1")[:2], 16) & 0x03 == 0x02  # locally administered, unicast
    settings = asterisk_settings_for_values(peer_nodes=["n2@127.0.0.1:5062"], node_name="n1")
    assert [(p.name, p.host, p.port, p.address) for p in peer_nodes(settings)] == [
        ("n2", "127.0.0.1", 5062, "127.0.0.1")
    ]
    for bad in ("n2@127.0.0.1", "N2@host:5060", "n2@ho;st:5060", "n2@host:70000", "n2@host:5060\n[x]"):
        with pytest.raises(RenderError, match=r"asterisk\.peer_nodes"):
            peer_nodes(asterisk_settings_for_values(peer_nodes=[bad], node_name="n1"))


def test_peers_need_the_node_secret_and_keep_their_endpoint_names() -> None:
    peers = {"peer_nodes": ["n2@127.0.0.1:5062"], "node_name": "n1"}
    with pytest.raises(RenderError, match=r"needs asterisk\.node_secret"):
        check_values(asterisk_settings_for_values(**peers, node_secret="short"), ())
    with pytest.raises(RenderError, match="kept for the nodes"):
        check_values(
            asterisk_settings_for_values(**peers, node_secret=NODE_SECRET), (centralist("bn-node-x"),)
        )
    with pytest.raises(RenderError, match="node_secret contains a line break"):
        check_values(asterisk_settings_for_values(**peers, node_secret=NODE_SECRET + "\n[x]"), ())
    check_values(asterisk_settings_for_values(**peers, node_secret=NODE_SECRET), (centralist("c-mn-1"),))


def asterisk_settings_for_values(**values: Any) -> Any:
    from burgernet.settings import AsteriskSettings

    return AsteriskSettings.model_construct(**{**AsteriskSettings().model_dump(), **values})


def test_a_call_on_one_node_makes_the_centralist_busy_on_the_other(
    tmp_path: Path, asterisk_install: AsteriskInstall, start_asterisk: StartAsterisk, sipp: Sipp
) -> None:
    phone_port = free_port()
    plan = AsteriskPlan((centralist("c-mn-1", port=phone_port),), "MN")
    first, second = two_nodes(tmp_path, asterisk_install, (NODE_SECRET, NODE_SECRET))
    node1 = start_asterisk(plan, settings=first)
    node2 = start_asterisk(plan, settings=second)
    assert f"entityid = {entity_id('n1')}" in (node1.config_dir / "asterisk.conf").read_text()

    async def scenario() -> tuple[list[str], dict[str, str], dict[str, str]]:
        watcher = ami_client(second)
        seen: list[str] = []

        async def on_state(event: Any) -> None:
            if event.get("Device") == DEVICE:
                seen.append(str(event.get("State")))

        watcher.on("DeviceStateChange", on_state)
        await watcher.connect(wait=30)
        try:
            sipp.asterisk_port = first.asterisk.sip_port
            sipp.phone("c-mn-1", phone_port, free_port(), "answer", ring_ms=200, calls=1)
            call = asyncio.get_running_loop().run_in_executor(
                None,
                lambda: sipp.call(
                    CALLER,
                    first.asterisk.free_number,
                    local_port=free_port(),
                    media_port=free_port(),
                    hold_ms=8000,
                ),
            )
            await eventually(lambda: bool(IN_A_CALL & set(seen)), timeout=15)
            during = await watcher.device_states()
            result = await call
            assert (result.successful, result.failed) == (1, 0), result.output
            await eventually(lambda: seen[-1:] == ["NOT_INUSE"], timeout=15)
            after = await watcher.device_states()
            return seen, during, after
        finally:
            await watcher.close()

    seen, during, after = asyncio.run(scenario())
    assert during[DEVICE] in IN_A_CALL, during
    assert after[DEVICE] == "NOT_INUSE", after
    # Node 2 carried no channel: the state came from node 1's PUBLISH.
    assert "c-mn-1" not in node2.instance.rx("core show channels")
    assert IN_A_CALL & set(seen) and seen[-1] == "NOT_INUSE"


def test_a_node_without_the_secret_is_not_believed(
    tmp_path: Path, asterisk_install: AsteriskInstall, start_asterisk: StartAsterisk, sipp: Sipp
) -> None:
    phone_port = free_port()
    plan = AsteriskPlan((centralist("c-mn-1", port=phone_port),), "MN")
    first, second = two_nodes(tmp_path, asterisk_install, ("a-wrong-secret-of-enough-length", NODE_SECRET))
    start_asterisk(plan, settings=first)
    node2 = start_asterisk(plan, settings=second)

    async def scenario() -> list[str]:
        watcher = ami_client(second)
        seen: list[str] = []

        async def on_state(event: Any) -> None:
            if event.get("Device") == DEVICE:
                seen.append(str(event.get("State")))

        watcher.on("DeviceStateChange", on_state)
        await watcher.connect(wait=30)
        try:
            sipp.asterisk_port = first.asterisk.sip_port
            sipp.phone("c-mn-1", phone_port, free_port(), "answer", ring_ms=200, calls=1)
            result = await asyncio.get_running_loop().run_in_executor(
                None,
                lambda: sipp.call(
                    CALLER,
                    first.asterisk.free_number,
                    local_port=free_port(),
                    media_port=free_port(),
                    hold_ms=4000,
                ),
            )
            assert (result.successful, result.failed) == (1, 0), result.output
            return seen
        finally:
            await watcher.close()

    seen = asyncio.run(scenario())
    assert not IN_A_CALL & set(seen), seen
    deadline = time.monotonic() + 5
    log = ""
    while time.monotonic() < deadline:
        log = node2.instance.log_text("security.log") + node2.instance.log_text()
        if "bn-node-n1" in log:
            break
        time.sleep(0.2)
    assert "bn-node-n1" in log, "node 2 logged nothing about the refused publisher"

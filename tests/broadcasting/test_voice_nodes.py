"""Alert calls over more than one Asterisk node, without servers: which node a call goes to,
what happens when a node goes away, and whose events count.

Stand-ins: an AMI that answers an Originate (or fails as a lost connection does) and replays the
events Asterisk would send, and trunk channel leases kept in memory. The cluster test
(tests/cluster/test_outbound_nodes.py) does the same with real nodes, Redis and SIP.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import cast

import pytest

from broadcasting.channels.base import Message
from broadcasting.channels.voice_asterisk import (
    TRUNK_SLOTS,
    AsteriskVoiceSender,
    TrunkLease,
    TrunkNode,
    choose_order,
    trunk_slots_key,
)
from broadcasting.ratelimit import SharedRate, SharedSlots
from broadcasting.store import DeliveryJob
from burgernet.domain import Channel
from burgernet.settings import Settings, SettingsError, load_settings
from ivr.ami import AmiNotConnected

Callback = Callable[[Mapping[str, object]], Awaitable[None]]
MESSAGE = Message("", "Vermist kind")


class FakeAmi:
    """One node's AMI: answers Originate, then sends OriginateResponse (answered)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.connected = True
        self.fail_with: Exception | None = None
        self.originated: list[str] = []  # ChannelIds, in order
        self.callbacks: dict[str, list[Callback]] = {}
        self.connect_callbacks: list[Callable[[], Awaitable[None]]] = []

    def on(self, pattern: str, callback: Callback) -> None:
        self.callbacks.setdefault(pattern, []).append(callback)

    def on_connect(self, callback: Callable[[], Awaitable[None]]) -> None:
        self.connect_callbacks.append(callback)

    async def emit(self, name: str, **fields: object) -> None:
        for callback in self.callbacks.get(name, []):
            await callback({"Event": name, **fields})

    async def send_action(
        self, action: Mapping[str, object], timeout: float = 10.0, as_list: bool | None = None
    ) -> object:
        if action["Action"] == "Status":
            return [{"Response": "Success"}, {"Event": "StatusComplete"}]
        if self.fail_with is not None:
            raise self.fail_with
        unique_id = str(action["ChannelId"])
        self.originated.append(unique_id)
        asyncio.get_running_loop().call_soon(
            lambda: asyncio.ensure_future(self.emit("OriginateResponse", ActionID=unique_id, Reason="4"))
        )
        return {"Response": "Success"}

    async def reconnect(self) -> None:
        self.connected = True
        for callback in self.connect_callbacks:
            await callback()

    async def close(self) -> None:
        self.connected = False


class MemorySlots:
    """SharedSlots' interface, in memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lease_ms = 60_000
        self.holders: set[str] = set()

    async def try_acquire(self) -> str | None:
        if len(self.holders) >= self.limit:
            return None
        holder = uuid.uuid4().hex
        self.holders.add(holder)
        return holder

    async def in_use(self) -> int:
        return len(self.holders)

    async def release(self, holder: str) -> None:
        self.holders.discard(holder)

    async def renew(self, holder: str) -> bool:
        return holder in self.holders

    async def reinstate(self, holder: str) -> None:
        self.holders.add(holder)


class NoRate:
    async def wait_turn(self, count: int = 1) -> None:
        return None


def job(delivery_id: int) -> DeliveryJob:
    return DeliveryJob(
        delivery_id, 1, 1, None, "alert", Channel.VOICE, 1, 1, "+31612340009", None, "nl",
        "test", "missing_person", "Test", "", "", "", "Midden-Nederland", None, "sending",
    )  # fmt: skip


def two_nodes(
    tmp_path: Path, channels: tuple[int, int] = (5, 5)
) -> tuple[AsteriskVoiceSender, FakeAmi, FakeAmi]:
    settings = load_settings(data_dir=tmp_path)
    first, second = FakeAmi("n1"), FakeAmi("n2")
    sender = AsteriskVoiceSender(
        settings,
        first,
        cast(SharedSlots, MemorySlots(channels[0])),
        cast(SharedRate, NoRate()),
        lambda _job, _message: "beep",
        node_name="n1",
        more_nodes=[TrunkNode("n2", second, cast(SharedSlots, MemorySlots(channels[1])))],
    )
    return sender, first, second


def in_use(sender: AsteriskVoiceSender) -> dict[str, int]:
    return {node.name: len(cast(MemorySlots, node.slots).holders) for node in sender.nodes}


def test_the_order_is_most_free_channels_first_ties_in_turn_and_full_nodes_left_out() -> None:
    a, b, c = (TrunkNode(name, FakeAmi(name), cast(SharedSlots, MemorySlots(1))) for name in "abc")
    assert choose_order([a, b, c], [3, 7, 0], turn=0) == [b, a]
    assert [n.name for n in choose_order([a, b, c], [4, 4, 4], turn=0)] == ["a", "b", "c"]
    assert [n.name for n in choose_order([a, b, c], [4, 4, 4], turn=1)] == ["b", "c", "a"]
    assert [n.name for n in choose_order([a, b, c], [4, 4, 4], turn=2)] == ["c", "a", "b"]


async def test_each_call_goes_to_the_node_with_the_most_free_trunk_channels(tmp_path: Path) -> None:
    sender, _first, _second = two_nodes(tmp_path, channels=(2, 4))
    leases = [cast(TrunkLease, await sender.acquire()) for _ in range(6)]
    # 2 + 4 channels: n2 first until both have as many free, then in turn, until all are taken.
    assert in_use(sender) == {"n1": 2, "n2": 4}
    assert [lease.node.name for lease in leases[:2]] == ["n2", "n2"]
    assert await sender.try_lease() is None  # every channel taken: acquire waits
    for lease in leases:
        await sender.release(lease)
    assert in_use(sender) == {"n1": 0, "n2": 0}


async def test_a_node_whose_ami_is_down_gets_no_call(tmp_path: Path) -> None:
    sender, first, second = two_nodes(tmp_path)
    first.connected = False
    leases = [cast(TrunkLease, await sender.acquire()) for _ in range(5)]
    assert {lease.node.name for lease in leases} == {"n2"}
    second.connected = False
    assert await sender.try_lease() is None  # nowhere to call: the deliveries stay queued
    first.connected = True
    assert cast(TrunkLease, await sender.acquire()).node.name == "n1"


async def test_an_originate_the_node_did_not_take_is_placed_on_the_other_node_with_the_same_id(
    tmp_path: Path,
) -> None:
    sender, first, second = two_nodes(tmp_path)
    first.fail_with = AmiNotConnected("AMI at 127.0.0.1:5111 is not connected")
    permit = await sender.acquire()
    assert cast(TrunkLease, permit).node.name == "n1"  # both free: n1 has its turn

    outcome = await sender.send(job(7), MESSAGE, permit)

    assert (outcome.status, outcome.provider_ref) == ("answered", "bn-d7-a1")
    assert (first.originated, second.originated) == ([], ["bn-d7-a1"])
    assert in_use(sender) == {"n1": 0, "n2": 1}  # n1's channel given back, n2's held for the call
    # n1 gets no call until it logs in again (or NODE_RETRY_SECONDS pass).
    assert {cast(TrunkLease, await sender.acquire()).node.name for _ in range(3)} == {"n2"}
    first.fail_with = None
    await first.reconnect()
    assert cast(TrunkLease, await sender.acquire()).node.name == "n1"
    await sender.close()


async def test_with_no_other_node_free_the_attempt_fails_to_be_retried(tmp_path: Path) -> None:
    sender, first, second = two_nodes(tmp_path, channels=(1, 1))
    taken = await sender.acquire()  # n1 (turn)
    permit = await sender.acquire()  # n2, the last channel
    second.fail_with = ConnectionResetError("gone")
    outcome = await sender.send(job(8), MESSAGE, permit)
    assert outcome.status == "failed" and outcome.retry, outcome
    assert second.originated == [] and first.originated == []
    await sender.release(taken)
    assert in_use(sender) == {"n1": 0, "n2": 0}


async def test_a_call_is_released_by_its_own_nodes_hangup_only(tmp_path: Path) -> None:
    sender, first, second = two_nodes(tmp_path)
    first.connected = False  # the call goes to n2
    outcome = await sender.send(job(9), MESSAGE, await sender.acquire())
    assert outcome.status == "answered"
    assert in_use(sender) == {"n1": 0, "n2": 1}
    await first.emit("Hangup", Uniqueid="bn-d9-a1", Cause="16")  # not the node it is on
    await asyncio.sleep(0.05)
    assert in_use(sender) == {"n1": 0, "n2": 1}
    await second.emit("Hangup", Uniqueid="bn-d9-a1", Cause="16")
    for _ in range(50):
        if not in_use(sender)["n2"]:
            break
        await asyncio.sleep(0.01)
    assert in_use(sender) == {"n1": 0, "n2": 0}
    await sender.close()


async def test_a_missed_hangup_is_reconciled_by_the_node_the_call_is_on(tmp_path: Path) -> None:
    sender, first, _second = two_nodes(tmp_path)
    first.connected = False
    await sender.send(job(10), MESSAGE, await sender.acquire())
    await asyncio.sleep(0)  # the waiting task notes the call as held
    assert await sender.reconcile_leases(sender.nodes[0]) == []  # n1 has nothing of it
    assert await sender.reconcile_leases(sender.nodes[1]) == ["bn-d10-a1"]  # n2's Status lacks it
    for _ in range(50):
        if not in_use(sender)["n2"]:
            break
        await asyncio.sleep(0.01)
    assert in_use(sender) == {"n1": 0, "n2": 0} and sender.leases_reconciled == 1
    await sender.close()


async def test_one_node_alone_is_tried_even_while_its_ami_is_down(tmp_path: Path) -> None:
    """Single-node mode as before: the attempt fails and is retried, the channel given back."""
    ami, slots = FakeAmi("local"), MemorySlots(3)
    sender = AsteriskVoiceSender(
        load_settings(data_dir=tmp_path),
        ami,
        cast(SharedSlots, slots),
        cast(SharedRate, NoRate()),
        lambda _job, _message: "beep",
    )
    ami.connected = False
    ami.fail_with = AmiNotConnected("down")
    outcome = await sender.send(job(11), MESSAGE, await sender.acquire())
    assert outcome.status == "failed" and outcome.retry
    assert slots.holders == set()
    # A bare holder is the (only) node's channel, as callers that lease themselves pass it.
    holder = await slots.try_acquire()
    await sender.release(holder)
    assert slots.holders == set()


def test_alert_nodes_default_to_this_node_with_the_key_it_always_had(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, asterisk={"ami_port": 5138, "trunk_channels": 12})
    (node,) = settings.asterisk.alert_call_nodes()
    assert (node.ami_host, node.ami_port, node.trunk_channels) == ("127.0.0.1", 5138, 12)
    assert trunk_slots_key(settings, node) == f"bn:{TRUNK_SLOTS}"
    assert settings.voice_channels() == 12 - settings.broadcast.inbound_reserved_channels


def test_alert_nodes_each_have_their_channels_and_their_own_leases(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        asterisk={
            "alert_nodes": [
                {"name": "n1", "ami_port": 5111},
                {"name": "n2", "ami_host": "10.0.0.2", "ami_port": 5038, "trunk_channels": 60},
            ]
        },
    )
    n1, n2 = settings.asterisk.alert_call_nodes()
    assert (n1.trunk_channels, n2.trunk_channels) == (30, 60)
    assert trunk_slots_key(settings, n2) == f"bn:{TRUNK_SLOTS}:n2"
    assert settings.voice_channels() == (30 - 10) + (60 - 10)


@pytest.mark.parametrize(
    ("nodes", "complaint"),
    [
        ([{"name": "n1", "ami_port": 5111}, {"name": "n1", "ami_port": 5121}], "its own name"),
        ([{"name": "n1", "ami_port": 5111}, {"name": "n2", "ami_port": 5111}], "same AMI host and port"),
        ([{"name": "n1", "ami_port": 5111, "trunk_channels": 10}], "node n1 has 10 trunk channels"),
        ([{"name": "N 1", "ami_port": 5111}], "alert_nodes.0.name"),
        ([{"name": "n1", "ami_host": "bad host;", "ami_port": 5111}], "alert_nodes.0.ami_host"),
    ],
)
def test_bad_alert_nodes_are_refused_at_start_up(
    tmp_path: Path, nodes: list[dict[str, object]], complaint: str
) -> None:
    with pytest.raises(SettingsError, match=complaint):
        load_settings(data_dir=tmp_path, asterisk={"alert_nodes": nodes})


def test_alert_nodes_reach_a_child_process_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from burgernet.settings import as_environment

    settings = load_settings(
        data_dir=tmp_path,
        asterisk={"alert_nodes": [{"name": "n1", "ami_port": 5111}, {"name": "n2", "ami_port": 5121}]},
    )
    for name, value in as_environment(settings).items():
        monkeypatch.setenv(name, value)
    again: Settings = load_settings()
    assert again.asterisk.alert_call_nodes() == settings.asterisk.alert_call_nodes()

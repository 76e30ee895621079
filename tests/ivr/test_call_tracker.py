"""AMI events → callback log and presence: the pure interpretation and the database writes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from burgernet import channel_vars as cv
from burgernet.actions import AreaSpec
from burgernet.calls import CallLog
from burgernet.domain import AreaKind
from composition.context import Context
from ivr.call_tracker import Answered, Ended, PresenceChanged, endpoint_of, interpret
from routing import Presence

OURS = [
    "BN_ACTION_ID=4",
    "BN_PARTICIPANT_ID=",
    "BN_OUTCOME=tip_left",
    "BN_ANSWERED_BY=",
    "BN_DELIVERY_ID=",
    "BN_CALL_KIND=inbound",
]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            {"Event": "DeviceStateChange", "Device": "PJSIP/c-mn-1", "State": "INUSE"},
            [PresenceChanged("c-mn-1", Presence.BUSY)],
        ),
        (
            {"Event": "DeviceStateChange", "Device": "PJSIP/c-mn-1", "State": "NOT_INUSE"},
            [PresenceChanged("c-mn-1", Presence.AVAILABLE)],
        ),
        (
            {"Event": "DeviceStateChange", "Device": "PJSIP/c-mn-1", "State": "UNAVAILABLE"},
            [PresenceChanged("c-mn-1", Presence.OFFLINE)],
        ),
        (
            {"Event": "DeviceStateChange", "Device": "PJSIP/c-mn-1", "State": "SOMETHING_NEW"},
            [PresenceChanged("c-mn-1", Presence.UNKNOWN)],
        ),
        ({"Event": "DeviceStateChange", "Device": "Local/1@x", "State": "INUSE"}, []),
        (
            {
                "Event": "DialEnd",
                "Uniqueid": "1700.1",
                "DialStatus": "ANSWER",
                "DestChannel": "PJSIP/c-mn-2-0000002a",
                "ChanVariable": OURS,
            },
            [Answered("1700.1", "c-mn-2")],
        ),
        (
            {
                "Event": "DialEnd",
                "Uniqueid": "1700.1",
                "DialStatus": "BUSY",
                "DestChannel": "PJSIP/c-mn-2-0000002a",
                "ChanVariable": OURS,
            },
            [],
        ),
        (
            {"Event": "Hangup", "Uniqueid": "1700.1", "Cause": "16", "ChanVariable": OURS},
            [Ended("1700.1", "tip_left", 16)],
        ),
        (
            {"Event": "Hangup", "Uniqueid": "1700.1", "Cause": "", "ChanVariable": "BN_CALL_KIND=transfer"},
            [Ended("1700.1", None, None)],
        ),
        # FastAGI may never have run (the failure path): the caller comes from the event itself.
        (
            {
                "Event": "Hangup",
                "Uniqueid": "1700.4",
                "Cause": "16",
                "CallerIDNum": "0612345678",
                "ChanVariable": ["BN_CALL_KIND=inbound"],
            },
            [Ended("1700.4", None, 16, "+31612345678")],
        ),
        # Channels the dialplan did not mark (centralist legs, alert calls) are not logged.
        ({"Event": "Hangup", "Uniqueid": "1700.2", "Cause": "16", "ChanVariable": ["BN_CALL_KIND="]}, []),
        ({"Event": "Hangup", "Uniqueid": "1700.3", "Cause": "16"}, []),
        ({"Event": "Newchannel", "Uniqueid": "1700.1", "ChanVariable": OURS}, []),
    ],
)
def test_interpret(event: dict[str, object], expected: list[object]) -> None:
    assert interpret(event) == expected


def test_endpoint_of_channel_names() -> None:
    assert endpoint_of("PJSIP/c-zwb-3-000000ff") == "c-zwb-3"
    assert endpoint_of("PJSIP/trunk") is None
    assert endpoint_of("Local/s@x-00000001;1") is None


def test_call_log_outcomes_only_move_forward(bn_context: Context) -> None:
    calls = CallLog(bn_context.sessions)
    action = bn_context.actions.create(
        action_type="suspect",
        title="x",
        region_code="MN",
        area=AreaSpec(AreaKind.CIRCLE, centre=(5.1, 52.1), radius_m=900),
        team=["c-mn-1"],
        actor="t",
    )
    # AMI may report the answer before the FastAGI side wrote the row: both orders work.
    assert calls.answered("u1", "c-mn-2") == cv.OUTCOME_CONNECTED  # no action known yet
    calls.open_call("u1", caller_number="+31612345678", action_id=action.id, region_code="MN", reason="r")
    calls.ended("u1", outcome=None, hangup_cause=16)
    view = calls.get("u1")
    assert view is not None and view.outcome == cv.OUTCOME_CONNECTED and view.centralist == "c-mn-2"
    assert view.action_id == action.id and view.ended_at is not None and view.hangup_cause == 16

    calls.open_call("u2", action_id=action.id)
    assert calls.answered("u2", "c-mn-3") == cv.OUTCOME_OVERFLOWED  # pool, not an owner
    calls.open_call("u3", action_id=action.id)
    assert calls.answered("u3", "c-mn-1") == cv.OUTCOME_CONNECTED
    calls.open_call("u4", action_id=action.id)
    calls.ended("u4", outcome=None, hangup_cause=16)
    assert calls.get("u4").outcome == cv.OUTCOME_ABANDONED  # type: ignore[union-attr]
    tip_id = calls.register_tip("u4", action_id=action.id, recording_path="/x/u4.wav", callback_number=None)
    assert (
        calls.register_tip("u4", action_id=action.id, recording_path="/x/u4.wav", callback_number=None)
        == tip_id
    )
    assert calls.get("u4").outcome == cv.OUTCOME_TIP_LEFT  # type: ignore[union-attr]
    assert [c.unique_id for c in calls.for_action(action.id)] == ["u1", "u2", "u3", "u4"]
    assert [t.id for t in calls.tips(action.id)] == [tip_id]
    with pytest.raises(ValueError, match="unknown call outcome"):
        calls.set_outcome("u4", "teleported")


def test_asterisk_sends_the_events_the_tracker_needs() -> None:
    from asterisk_conf.render import AMI_EVENTS
    from ivr.call_tracker import CallTracker

    # manager.conf filters AMI events down to AMI_EVENTS; the tracker must not want others.
    assert set(CallTracker.EVENTS) <= set(AMI_EVENTS)


async def test_a_broken_line_is_logged_as_failed(bn_context: Context) -> None:
    from burgernet.live import AsyncLiveState
    from ivr.call_tracker import CallTracker

    calls = CallLog(bn_context.sessions)
    settings = bn_context.settings
    live = AsyncLiveState.from_url(settings.redis.url, settings.redis.key_prefix)
    tracker = CallTracker(calls, live)
    await tracker.on_event(
        {"Event": "Hangup", "Uniqueid": "1700.8", "Cause": "38", "ChanVariable": ["BN_CALL_KIND=inbound"]}
    )
    await tracker.on_event(
        {"Event": "Hangup", "Uniqueid": "1700.9", "Cause": "16", "ChanVariable": ["BN_CALL_KIND=inbound"]}
    )
    await live.close()
    assert calls.get("1700.8").outcome == cv.OUTCOME_FAILED  # type: ignore[union-attr]
    assert calls.get("1700.9").outcome == cv.OUTCOME_ABANDONED  # type: ignore[union-attr]


class ReportedState:
    """What Asterisk answers after a reconnection: its device-state cache and its channels."""

    def __init__(self, devices: dict[str, str], channels: set[str]) -> None:
        self.devices = devices
        self.channels = channels
        # What happens while each question is out (events, new calls).
        self.meanwhile: dict[str, Callable[[], Awaitable[None]]] = {}

    async def device_states(self, timeout: float = 10.0) -> dict[str, str]:
        if "devices" in self.meanwhile:
            await self.meanwhile["devices"]()
        return dict(self.devices)

    async def live_channels(self, timeout: float = 10.0) -> set[str]:
        if "channels" in self.meanwhile:
            await self.meanwhile["channels"]()
        return set(self.channels)


async def test_a_resync_rewrites_presence_and_closes_the_calls_asterisk_no_longer_has(
    bn_context: Context,
) -> None:
    from burgernet.calls import OUTCOME_UNOBSERVED
    from burgernet.live import AsyncLiveState
    from ivr.call_tracker import CallTracker

    calls = CallLog(bn_context.sessions)
    settings = bn_context.settings
    live = AsyncLiveState.from_url(settings.redis.url, settings.redis.key_prefix)
    tracker = CallTracker(calls, live)
    for endpoint in ("c-mn-1", "c-mn-2", "c-old-1"):  # what the events said before the outage
        await live.set_presence(endpoint, Presence.AVAILABLE)
    calls.open_call("gone-answered")
    calls.answered("gone-answered", "c-mn-2")
    calls.open_call("gone-silent")
    calls.open_call("still-up")
    asterisk = ReportedState(
        {
            "PJSIP/c-mn-1": "UNAVAILABLE",  # unregistered meanwhile
            "PJSIP/c-mn-2": "INUSE",
            "PJSIP/c-mn-3": "RINGING",
            "PJSIP/trunk": "NOT_INUSE",
            "Local/1@x": "INUSE",
        },
        {"still-up", "some-other-channel"},
    )

    async def c_mn_3_hangs_up() -> None:  # an event newer than the answer being prepared
        await tracker.on_event({"Event": "DeviceStateChange", "Device": "PJSIP/c-mn-3", "State": "NOT_INUSE"})

    async def a_call_comes_in() -> None:  # its channel is too new for the answer to show
        calls.open_call("started-after-the-question")

    asterisk.meanwhile = {"devices": c_mn_3_hangs_up, "channels": a_call_comes_in}
    try:
        report = await tracker.resync(asterisk)
        presence = await live.presence()
    finally:
        await live.close()
    # Exactly as the events would have said; c-mn-3 keeps what its newer event said.
    assert presence == {
        "c-mn-1": Presence.OFFLINE,
        "c-mn-2": Presence.BUSY,
        "c-mn-3": Presence.AVAILABLE,
        "trunk": Presence.AVAILABLE,
    }
    # Centralists of the seeded database that this Asterisk does not have, and c-old-1, are gone.
    assert "c-old-1" in report.forgotten and "c-mn-1" not in report.forgotten
    assert sorted(report.closed_calls) == ["gone-answered", "gone-silent"]
    answered, silent, up = (calls.get(u) for u in ("gone-answered", "gone-silent", "still-up"))
    assert answered is not None and answered.ended_at is not None and answered.outcome == cv.OUTCOME_CONNECTED
    assert silent is not None and silent.ended_at is not None and silent.outcome == OUTCOME_UNOBSERVED
    assert up is not None and up.ended_at is None
    later = calls.get("started-after-the-question")
    assert later is not None and later.ended_at is None  # opened after Status was asked: not judged
    # A Hangup that does arrive after all says more than "unobserved".
    calls.ended("gone-silent", outcome=cv.OUTCOME_TIP_LEFT, hangup_cause=16)
    assert calls.get("gone-silent").outcome == cv.OUTCOME_TIP_LEFT  # type: ignore[union-attr]


async def test_presence_events_handled_at_once_end_in_the_state_of_the_newest(bn_context: Context) -> None:
    """A backlog of events (a resumed process) runs as concurrent tasks: the last state wins."""
    import asyncio

    from burgernet.live import AsyncLiveState
    from ivr.call_tracker import CallTracker

    settings = bn_context.settings
    live = AsyncLiveState.from_url(settings.redis.url, settings.redis.key_prefix)
    written: list[Presence] = []
    real_set_presence = live.set_presence

    async def slow_first_write(endpoint: str, presence: Presence) -> None:
        if not written:  # the older event's write is the slow one
            written.append(presence)
            await asyncio.sleep(0.2)
        else:
            written.append(presence)
        await real_set_presence(endpoint, presence)

    live.set_presence = slow_first_write  # type: ignore[method-assign]
    tracker = CallTracker(CallLog(bn_context.sessions), live)
    try:
        await asyncio.gather(
            tracker.on_event({"Event": "DeviceStateChange", "Device": "PJSIP/c-mn-4", "State": "INUSE"}),
            tracker.on_event({"Event": "DeviceStateChange", "Device": "PJSIP/c-mn-4", "State": "NOT_INUSE"}),
        )
        presence = await live.presence()
    finally:
        await live.close()
    assert presence["c-mn-4"] == Presence.AVAILABLE
    assert written[-1] == Presence.AVAILABLE

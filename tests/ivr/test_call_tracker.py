"""AMI events → callback log and presence: the pure interpretation and the database writes."""

from __future__ import annotations

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

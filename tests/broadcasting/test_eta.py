"""The ETA (burgernet.eta) against a real dispatch: SMS through the worker and the fake Twilio
at the shared rate; the estimate for 100 % must be within 15 % of the measured time.

Also what the estimate reads from the database: the recipients of a draft (counted as the
fan-out will select them), the deliveries queued ahead, the night hold, and the estimate the
worker writes down at the fan-out.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import redis
import redis.asyncio as aioredis
from shapely.geometry import Polygon
from sqlalchemy import func, select

from broadcasting import store
from broadcasting.channels.sms_twilio import TwilioSmsSender
from broadcasting.ratelimit import SharedRate
from broadcasting.recipients import select_recipients
from broadcasting.twilio import TwilioSms
from burgernet import eta
from burgernet.alert_policies import OutcomePolicy
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.models import Action, Broadcast, Delivery, Participant
from burgernet.settings import Settings
from callback_api.settings.alert_policies.services import AlertPolicyStore
from composition.context import Context
from routing import Area, CircleArea, NationalArea, PolygonArea, PostcodeArea
from routing.model import Location
from testbed.fake_twilio import FakeTwilio
from tests.broadcasting.conftest import CENTRE, Crowd, WorkerThread

SMS_RATE = 25.0
SMS_COUNT = 300  # 12 s at the rate


@pytest.fixture
def bn_settings(bn_settings: Settings, fake_twilio: FakeTwilio) -> Settings:
    return bn_settings.model_copy(
        update={
            "twilio": fake_twilio.settings(bn_settings.twilio, "http://127.0.0.1:9"),
            "broadcast": bn_settings.broadcast.model_copy(update={"sms_per_second": SMS_RATE}),
        }
    )


def sms_senders(settings: Settings) -> Callable[[], dict[Channel, TwilioSmsSender]]:
    def build() -> dict[Channel, TwilioSmsSender]:
        client = aioredis.Redis.from_url(settings.redis.url)
        rate = SharedRate(client, f"{settings.redis.key_prefix}rate:sms", settings.broadcast.sms_per_second)
        return {Channel.SMS: TwilioSmsSender(TwilioSms(settings), rate)}

    return build


def measured_seconds(context: Context, broadcast_id: int) -> dict[int, float]:
    """Seconds from the broadcast's start until 50/90/100 % of its deliveries were final."""
    with session_scope(context.sessions) as session:
        started = session.scalar(select(Broadcast.started_at).where(Broadcast.id == broadcast_id))
        finished = sorted(
            moment
            for moment in session.scalars(
                select(Delivery.finished_at).where(Delivery.broadcast_id == broadcast_id)
            )
            if moment is not None
        )
    assert started is not None
    start = started.replace(tzinfo=UTC)
    times = [(moment.replace(tzinfo=UTC) - start).total_seconds() for moment in finished]
    return {pct: times[max(0, -(-len(times) * pct // 100) - 1)] for pct in (50, 90, 100)}


def test_eta_for_sms_is_within_15_percent_of_a_real_dispatch_through_the_fake_twilio(
    crowd: Crowd,
    bn_context: Context,
    fake_twilio: FakeTwilio,
    start_worker: Callable[..., WorkerThread],
) -> None:
    crowd.add(SMS_COUNT, sms=True)
    start_worker(sms_senders(bn_context.settings))
    # A fresh key prefix looks like a Redis that lost its queues: the worker's first beat
    # rebuilds the control (queueing running broadcasts again). Let it pass before the clock runs.
    client = redis.Redis.from_url(bn_context.settings.redis.url)
    crowd.wait_until(
        lambda: client.exists(f"{bn_context.settings.redis.key_prefix}bq:built") == 1, 15, "rebuild"
    )
    action_id = crowd.action("missing_person", start=False)
    with session_scope(bn_context.sessions) as session:
        before = eta.estimate_for_action(session, action_id, bn_context.settings)
    assert before is not None
    sms = before.channel("sms")
    assert sms is not None and sms.recipients == SMS_COUNT  # counted as the fan-out will select
    assert sms.held_until is None and sms.queued_ahead == 0

    bn_context.actions.start(action_id, actor="test")
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    assert crowd.wait_done(alert_id, timeout=SMS_COUNT / SMS_RATE * 3) == {"sent": SMS_COUNT}
    measured = measured_seconds(bn_context, alert_id)
    expected = before.seconds_to[100]
    print(f"SMS ETA {dict(before.seconds_to)} measured {measured}")
    assert expected is not None
    assert abs(expected - measured[100]) <= 0.15 * measured[100]
    # The estimate the worker wrote at the fan-out says the same, next to the real times.
    with session_scope(bn_context.sessions) as session:
        stored = eta.estimate_from_json(
            session.scalar(select(Broadcast.estimate).where(Broadcast.id == alert_id))
        )
    assert stored is not None
    kept = stored["seconds_to"]
    assert isinstance(kept, dict)
    assert abs(float(kept["100%"]) - measured[100]) <= 0.15 * measured[100]

    # Once sent, a new estimate of the same action reads the measured send times of its texts.
    with session_scope(bn_context.sessions) as session:
        measured_inputs = eta.measure(session, bn_context.settings.broadcast.max_attempts)
    assert Channel.SMS.value in measured_inputs.send_seconds


def test_deliveries_queued_ahead_at_the_same_or_a_higher_priority_count_and_lower_ones_not(
    crowd: Crowd, bn_context: Context
) -> None:
    crowd.add(40, sms=True)
    # No worker: the deliveries of both alerts, fanned out by hand below, stay queued.
    urgent = crowd.action("missing_person", start=False)
    information = crowd.action("vehicle", start=False)
    with session_scope(bn_context.sessions) as session:
        before = eta.estimate_for_action(session, urgent, bn_context.settings)
        assert before is not None and before.recipients == 40
        participants = list(session.scalars(select(Participant.id)))
        for action_id in (urgent, information):
            action = session.get(Action, action_id)
            assert action is not None
            broadcast = store.new_broadcast(session, action=action, kind="alert", message="")
            store.add_deliveries(session, broadcast, {Channel.SMS: participants})
        queued = session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "queued"))
        assert queued == 80
        behind_urgent = eta.queued_ahead(session, priority=1)
        behind_amber = eta.queued_ahead(session, priority=0)
        behind_information = eta.queued_ahead(session, priority=2)
    assert behind_amber == {}
    assert behind_urgent == {"sms": 40}
    assert behind_information == {"sms": 80}


def test_the_estimate_waits_for_the_morning_when_the_night_rules_hold_the_channel(
    crowd: Crowd, bn_context: Context
) -> None:
    crowd.add(10, sms=True, voice=True, email=True)
    settings = bn_context.settings.model_copy(
        update={
            "broadcast": bn_context.settings.broadcast.model_copy(
                update={"quiet_hours": "23:00-07:00", "quiet_hold_sms": False}
            )
        }
    )
    vehicle = crowd.action("vehicle", start=False)
    child = crowd.action("missing_child", start=False)
    night = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)  # 02:00 in Amsterdam
    with session_scope(bn_context.sessions) as session:
        held = eta.estimate_for_action(session, vehicle, settings, now=night)
        not_held = eta.estimate_for_action(session, child, settings, now=night)
    assert held is not None and not_held is not None
    voice = held.channel("voice")
    assert voice is not None and voice.held_until == datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    assert (voice.seconds_to[100] or 0) >= 5 * 3600
    sms = held.channel("sms")
    assert sms is not None and sms.held_until is None
    assert all(channel.held_until is None for channel in not_held.channels)
    stored = {c["channel"]: c["held_until"] for c in json.loads(held.to_json())["channels"]}
    assert stored["voice"] == "2026-12-03T06:00:00+00:00" and stored["email"] is None


def test_a_drafts_recipients_are_counted_as_the_fan_out_selects_them(
    crowd: Crowd, bn_context: Context
) -> None:
    crowd.add(30, voice=True, sms=True)
    crowd.add(20, sms=True, email=True, start=30)
    crowd.add(5, sms=True, start=50, opted_out=True)
    crowd.add(7, voice=True, start=60, lon=CENTRE[0] + 0.2)  # far outside the circle
    with session_scope(bn_context.sessions) as session:
        postcodes = {
            participant_id: "1012AB" if participant_id % 2 else "1013CD"
            for participant_id in session.scalars(select(Participant.id))
        }
        for participant_id, postcode in postcodes.items():
            session.get(Participant, participant_id).postcode = postcode  # type: ignore[union-attr]
    square = Polygon.from_bounds(CENTRE[0] - 0.01, CENTRE[1] - 0.01, CENTRE[0] + 0.01, CENTRE[1] + 0.01)
    areas: list[Area] = [
        CircleArea(Location(*CENTRE), 500.0),
        PolygonArea(square),
        PostcodeArea(frozenset({"1012"})),
        NationalArea(),
    ]
    with session_scope(bn_context.sessions) as session:
        for area in areas:
            selected = select_recipients(session, area)
            expected = {channel.value: selected.count(channel) for channel in selected.by_channel}
            counted = eta.count_recipients(session, area, ["voice", "sms", "email"])
            assert counted == {k: v for k, v in expected.items() if v}, area


def test_unanswered_calls_are_forecast_by_the_no_answer_policy_as_the_panel_set_it(
    bn_context: Context,
) -> None:
    def inputs() -> eta.EstimateInputs:
        with session_scope(bn_context.sessions) as session:
            return eta.gather_inputs(session, bn_context.settings, recipients={"voice": 10}, priority=1)

    default = bn_context.settings.broadcast.policies.no_answer
    before = inputs()
    assert before.max_attempts == default.attempts
    assert before.retry_waits == tuple(default.backoff_seconds for _ in range(default.attempts - 1))

    AlertPolicyStore(bn_context.sessions, bn_context.settings.broadcast).save(
        "no_answer", OutcomePolicy(3, 60.0, 2.0, "fall_back"), actor="admin", source="test"
    )
    after = inputs()
    assert after.max_attempts == 3 and after.retry_waits == (60.0, 120.0)
    # A person who does not answer gets the next call 60 s, then 120 s later: the forecast waits too.
    (calls,) = after.channels
    nobody_answers = dataclasses.replace(after, channels=(dataclasses.replace(calls, answer_share=0.0),))
    last = eta.estimate(nobody_answers).seconds_to[100]
    assert last is not None and last >= 60.0 + 120.0 + 3 * calls.unanswered_seconds

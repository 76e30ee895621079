"""The ETA (burgernet.eta) against a real voice dispatch: alert calls through the real Asterisk
to a SIPp trunk that answers every call at once and hangs up after 5 s, with 4 trunk channels
allowed for alerts. The estimate for 100 % must be within 15 % of the measured time.

The call figures the estimate uses are the trunk's own: the ring time until the answer is
measured from a first wave of calls (as ``burgernet.eta.measure`` reads it from the last
deliveries), the talk time is SIPp's 5 s, and everyone answers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select, update

from broadcasting.channels.registry import build_senders
from burgernet import eta
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind, Channel
from burgernet.models import Broadcast, Delivery, Participant
from burgernet.settings import Settings
from composition.context import Context
from testbed.ports import port_block
from tests.broadcasting.conftest import WorkerThread
from tests.telephony.conftest import PhoneSystem

ALERT_CHANNELS = 4
TALK_SECONDS = 5.0
CALLS = 16  # four waves
SPOT = (5.90, 51.98)  # Arnhem: no other telephony test alerts here


@pytest.fixture
def voice(phones: PhoneSystem) -> Iterator[tuple[Context, WorkerThread]]:
    with session_scope(phones.context.sessions) as session:  # nobody else's alerts in the way
        session.execute(update(Broadcast).where(Broadcast.status != "done").values(status="cancelled"))
        session.execute(
            update(Delivery).where(Delivery.status.in_(("queued", "sending"))).values(status="cancelled")
        )
    client = phones.context.live.client
    for key in client.scan_iter(f"{phones.settings.redis.key_prefix}bq:*"):
        client.delete(key)
    trunk = phones.settings.asterisk.trunk_channels
    settings: Settings = phones.settings.model_copy(
        update={
            "broadcast": phones.settings.broadcast.model_copy(
                update={
                    "inbound_reserved_channels": trunk - ALERT_CHANNELS,
                    "voice_calls_per_second": 20.0,
                    "voice_ring_seconds": 10,
                    "max_attempts": 1,
                }
            )
        }
    )
    assert settings.voice_channels() == ALERT_CHANNELS
    context = Context(settings)

    async def senders() -> object:
        made = await build_senders(settings, {Channel.VOICE}, aioredis.Redis.from_url(settings.redis.url))
        await made[Channel.VOICE].ami.wait_connected(15)  # type: ignore[attr-defined]
        return made

    worker = WorkerThread(context, senders)
    deadline = time.monotonic() + 15  # the first beat rebuilds the control of an emptied Redis
    while not client.exists(f"{settings.redis.key_prefix}bq:built") and time.monotonic() < deadline:
        time.sleep(0.1)
    phones.sipp.phone(
        "trunk",
        settings.asterisk.trunk_port,
        port_block(),
        f"answer-hangup-{int(TALK_SECONDS * 1000)}",
        ring_ms=0,
    )
    try:
        yield context, worker
    finally:
        worker.stop()
        context.close()


def _alert(context: Context, count: int, offset: int) -> int:
    now = datetime.now(UTC)
    lon = SPOT[0] + 0.05 * offset
    with session_scope(context.sessions) as session:
        session.add_all(
            Participant(
                phone_e164=f"+3164{offset}{n:06d}",
                postcode="6811AB",
                lat=SPOT[1],
                lon=lon,
                channel_voice=True,
                channel_sms=False,
                created_at=now,
            )
            for n in range(count)
        )
    view = context.actions.create(
        action_type="missing_child",
        title="Vermist kind Arnhem",
        description="Jongen van zeven, blauwe jas",
        region_code="ON",
        area=AreaSpec(AreaKind.CIRCLE, centre=(lon, SPOT[1]), radius_m=200),
        actor="test",
    )
    return view.id


def _wait_done(context: Context, action_id: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(context.sessions) as session:
            row = session.execute(
                select(Broadcast.id, Broadcast.status).where(Broadcast.action_id == action_id)
            ).first()
        if row is not None and row[1] == "done":
            return int(row[0])
        time.sleep(0.2)
    raise AssertionError(f"the alert of action {action_id} did not finish in {timeout} s")


def test_eta_for_alert_calls_is_within_15_percent_of_a_real_dispatch_through_asterisk(
    voice: tuple[Context, WorkerThread],
) -> None:
    context, _worker = voice
    # A first wave: how long the trunk takes to answer, measured as the estimate measures it.
    first = _alert(context, ALERT_CHANNELS, 1)
    context.actions.start(first, actor="test")
    _wait_done(context, first, 40)
    time.sleep(TALK_SECONDS + 1)  # the first wave's channels are free again

    action_id = _alert(context, CALLS, 2)
    with session_scope(context.sessions) as session:
        measured_before = eta.measure(session, context.settings.broadcast.max_attempts)
        inputs = eta.gather_inputs(
            session, context.settings, recipients={"voice": CALLS}, priority=1, talk_seconds=TALK_SECONDS
        )
    assert measured_before.ring_to_answer_seconds is not None
    (calls,) = inputs.channels
    assert calls.concurrent == ALERT_CHANNELS
    everyone_answers = dataclasses.replace(inputs, channels=(dataclasses.replace(calls, answer_share=1.0),))
    expected = eta.estimate(everyone_answers).seconds_to[100]

    context.actions.start(action_id, actor="test")
    broadcast_id = _wait_done(context, action_id, 90)
    with session_scope(context.sessions) as session:
        started = session.scalar(select(Broadcast.started_at).where(Broadcast.id == broadcast_id))
        finished = [
            moment
            for moment, status in session.execute(
                select(Delivery.finished_at, Delivery.status).where(Delivery.broadcast_id == broadcast_id)
            )
            if status == "answered" and moment is not None
        ]
    assert started is not None and len(finished) == CALLS
    measured = (max(finished).replace(tzinfo=UTC) - started.replace(tzinfo=UTC)).total_seconds()
    ring = measured_before.ring_to_answer_seconds
    print(f"voice ETA {expected} s, measured {measured:.2f} s, ring to answer {ring:.2f} s")
    assert expected is not None
    assert abs(expected - measured) <= 0.15 * measured

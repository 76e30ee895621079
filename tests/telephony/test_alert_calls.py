"""Voice alerts end to end: action start → worker → AMI Originate through the real Asterisk's
trunk → a SIPp phone that answers, is busy or never answers; the outcome lands on the Delivery."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select, update

from broadcasting.channels.registry import build_senders
from broadcasting.channels.voice_asterisk import AsteriskVoiceSender
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind, Channel
from burgernet.models import Broadcast, Delivery, Participant
from burgernet.settings import Settings
from composition.context import Context
from testbed.ports import port_block
from tests.broadcasting.conftest import WorkerThread
from tests.telephony.conftest import PhoneSystem

SPOT = (5.47, 51.44)  # Eindhoven; the freephone tests use Utrecht and Amsterdam
_spots = itertools.count()


@dataclass
class AlertCalls:
    phones: PhoneSystem
    context: Context
    worker: WorkerThread
    # Each test alerts its own street, so one test's participant is never in another's area.
    spot: tuple[float, float] = field(default_factory=lambda: (SPOT[0] + 0.02 * next(_spots), SPOT[1]))

    def participant(self) -> tuple[int, str]:
        number = f"+3162{int(time.time() * 1000) % 10_000_000:07d}"
        with session_scope(self.context.sessions) as session:
            participant = Participant(
                phone_e164=number,
                postcode="5611AB",
                lat=self.spot[1],
                lon=self.spot[0],
                channel_voice=True,
                channel_sms=False,
                created_at=datetime.now(UTC),
            )
            session.add(participant)
            session.flush()
            return participant.id, number

    def start_action(self) -> int:
        view = self.context.actions.create(
            action_type="missing_child",
            title="Vermist kind Eindhoven",
            description="Meisje van zes met een gele jas",
            region_code="OB",
            area=AreaSpec(AreaKind.CIRCLE, centre=self.spot, radius_m=300),
            actor="test",
        )
        self.context.actions.start(view.id, actor="test")
        return view.id

    def delivery(self, action_id: int, wait_for: Callable[[Delivery], bool], timeout: float = 60) -> Delivery:
        deadline = time.monotonic() + timeout
        last: Delivery | None = None
        while time.monotonic() < deadline:
            with session_scope(self.context.sessions) as session:
                last = session.scalars(
                    select(Delivery).join(Broadcast).where(Broadcast.action_id == action_id)
                ).first()
            if last is not None and wait_for(last):
                return last
            time.sleep(0.2)
        raise AssertionError(f"delivery of action {action_id} still {last and last.status} after {timeout} s")

    def trunk_channels_in_use(self) -> int:
        """The voice sender's own count of trunk channel leases, asked on the worker's loop."""
        sender = cast(AsteriskVoiceSender, self.worker.worker.senders[Channel.VOICE])
        return asyncio.run_coroutine_threadsafe(sender.slots.in_use(), self.worker.loop).result(10)


@contextmanager
def alert_call_worker(phones: PhoneSystem, settings: Settings) -> Iterator[AlertCalls]:
    """A worker placing alert calls through the shared phone system's Asterisk, with
    ``settings``, once the alerts other telephony tests left queued are cancelled."""
    # Actions the other telephony tests started queued alerts too; nobody should get those.
    with session_scope(phones.context.sessions) as session:
        session.execute(update(Broadcast).where(Broadcast.status != "done").values(status="cancelled"))
        session.execute(
            update(Delivery).where(Delivery.status.in_(("queued", "sending"))).values(status="cancelled")
        )
    client = phones.context.live.client
    for key in client.scan_iter(f"{phones.settings.redis.key_prefix}bq:*"):
        client.delete(key)
    context = Context(settings)

    async def senders() -> object:
        redis_client = aioredis.Redis.from_url(settings.redis.url)
        made = await build_senders(settings, {Channel.VOICE}, redis_client)
        await made[Channel.VOICE].ami.wait_connected(15)  # type: ignore[attr-defined]
        return made

    worker = WorkerThread(context, senders)
    try:
        yield AlertCalls(phones, context, worker)
    finally:
        worker.stop()
        context.close()


@pytest.fixture
def alert_calls(phones: PhoneSystem) -> Iterator[AlertCalls]:
    settings = phones.settings.model_copy(
        update={
            "broadcast": phones.settings.broadcast.model_copy(
                update={
                    "voice_ring_seconds": 5,
                    "retry_base_seconds": 0.5,
                    "max_attempts": 2,
                    "voice_calls_per_second": 5.0,
                    # Busy and unanswered calls: two calls, half a second apart, then done.
                    "policies": type(phones.settings.broadcast.policies).model_validate(
                        {
                            "busy": {"attempts": 2, "backoff_seconds": 0.5, "then": "done"},
                            "no_answer": {"attempts": 2, "backoff_seconds": 0.5, "then": "done"},
                        }
                    ),
                }
            )
        }
    )
    with alert_call_worker(phones, settings) as calls:
        yield calls


def test_an_answered_alert_call_plays_the_message_and_records_answered(alert_calls: AlertCalls) -> None:
    phones = alert_calls.phones
    participant_id, number = alert_calls.participant()
    phones.sipp.phone(
        "trunk", phones.settings.asterisk.trunk_port, port_block(), "answer", ring_ms=200, calls=1
    )

    action_id = alert_calls.start_action()
    delivery = alert_calls.delivery(action_id, lambda d: d.status != "queued" and d.status != "sending")
    assert (delivery.status, delivery.attempts, delivery.participant_id) == ("answered", 1, participant_id)
    assert delivery.provider_ref == f"bn-d{delivery.id}-a1"  # the channel's unique id, chosen by us
    # Calling the free number back now reaches this action first. The worker writes the outcome
    # first and marks the number alerted in Redis just after, so give it a moment.
    alerted_key = phones.context.live.keys.alerted(number)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alerted = phones.context.live.client.zrange(alerted_key, 0, -1)
        if str(action_id).encode() in alerted:
            break
        time.sleep(0.1)
    assert str(action_id).encode() in alerted
    assert alert_calls.trunk_channels_in_use() == 1  # held while the call is up

    answered = phones.sipp.phone_result("trunk", timeout_s=90)  # Asterisk hangs up after the menu
    assert (answered.returncode, answered.successful) == (0, 1), answered.output
    console = phones.asterisk.instance.log_text("console.log")
    assert f"alert call, action {action_id}, delivery {delivery.id}" in console
    # The message and the Dutch menu were found and played.
    assert "Unable to open" not in console and "File does not exist" not in console
    assert "/nl/burgernet/alert-menu" in console
    deadline = time.monotonic() + 10
    while alert_calls.trunk_channels_in_use() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alert_calls.trunk_channels_in_use() == 0  # released at the hang-up


def test_a_busy_line_is_retried_then_recorded_busy(alert_calls: AlertCalls) -> None:
    phones = alert_calls.phones
    alert_calls.participant()
    phones.sipp.phone("trunk", phones.settings.asterisk.trunk_port, port_block(), "busy", calls=2)

    action_id = alert_calls.start_action()
    delivery = alert_calls.delivery(action_id, lambda d: d.status == "busy")
    assert delivery.attempts == 2  # the busy policy's attempts
    result = phones.sipp.phone_result("trunk", timeout_s=30)
    assert result.successful + result.failed == 2, result.output  # two INVITEs, no more


def test_an_unanswered_call_gives_up_after_the_ring_time(alert_calls: AlertCalls) -> None:
    phones = alert_calls.phones
    alert_calls.participant()
    phones.sipp.phone("trunk", phones.settings.asterisk.trunk_port, port_block(), "no-answer", calls=2)

    began = time.monotonic()
    action_id = alert_calls.start_action()
    delivery = alert_calls.delivery(action_id, lambda d: d.status == "no_answer", timeout=60)
    assert delivery.attempts == 2
    assert time.monotonic() - began >= 2 * 5  # rang the full 5 s, twice
    assert "reason" in (delivery.last_error or "")


def test_key_1_puts_the_participant_through_and_logs_a_transfer_against_the_action(
    alert_calls: AlertCalls,
) -> None:
    phones = alert_calls.phones
    phones.phones({})  # the centralists' phones answer
    _, number = alert_calls.participant()
    phones.sipp.phone(
        "trunk", phones.settings.asterisk.trunk_port, port_block(), "answer-press-1", ring_ms=200, calls=1
    )
    view = alert_calls.context.actions.create(
        action_type="missing_child",
        title="Vermist kind, sleutel 1",
        description="Jongen met blauwe pet",
        region_code="AM",
        area=AreaSpec(AreaKind.CIRCLE, centre=alert_calls.spot, radius_m=300),
        team=["c-am-1"],
        actor="test",
    )
    alert_calls.context.actions.start(view.id, actor="test")

    delivery = alert_calls.delivery(view.id, lambda d: d.status == "answered")
    result = phones.sipp.phone_result("trunk", timeout_s=60)
    assert (result.returncode, result.successful) == (0, 1), result.output
    call = phones.logged_call(number)
    assert (call.kind, call.action_id, call.centralist, call.outcome) == (
        "transfer",
        view.id,
        "c-am-1",
        "connected",
    )
    assert delivery.participant_id is not None

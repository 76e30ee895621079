"""Per-outcome retry policies and the fallback to SMS, through a real worker on the real Redis
and SQLite: busy and no answer each wait and retry by their own policy, a message left on an
answering machine is done, and a voice alert that did not reach its participant goes out once
by SMS (counted in the broadcast's progress) — or not at all when they cannot get one."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
import redis.asyncio as aioredis
from sqlalchemy import select, update

from broadcasting import progress
from broadcasting.channels.base import Message, Outcome
from broadcasting.channels.sms_twilio import TwilioSmsSender
from broadcasting.ratelimit import SharedRate
from broadcasting.store import DeliveryJob
from broadcasting.twilio import TwilioSms
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind, Channel
from burgernet.models import AuditEvent, Broadcast, Delivery, Participant
from burgernet.settings import Settings
from composition.context import Context
from testbed.fake_twilio import FakeTwilio
from tests.broadcasting.conftest import CENTRE, Crowd, WorkerThread

BUSY_WAIT, NO_ANSWER_WAIT = 0.6, 1.6


@pytest.fixture
def bn_settings(bn_settings: Settings) -> Settings:
    policies = {
        "busy": {"attempts": 3, "backoff_seconds": BUSY_WAIT, "then": "fall_back"},
        "no_answer": {"attempts": 2, "backoff_seconds": NO_ANSWER_WAIT, "then": "fall_back"},
        "machine": {"attempts": 1, "backoff_seconds": 0.5},
        "failed": {"attempts": 1, "backoff_seconds": 0, "then": "fall_back"},
    }
    return bn_settings.model_copy(
        update={
            "broadcast": bn_settings.broadcast.model_copy(
                update={
                    # The general rule waits long: a busy or unanswered call retried by it
                    # instead of by its own policy would miss every deadline below.
                    "retry_base_seconds": 30.0,
                    "claim_idle_seconds": 2.0,
                    "sms_per_second": 200.0,
                    "policies": type(bn_settings.broadcast.policies).model_validate(policies),
                }
            )
        }
    )


@dataclass
class ScriptedVoice:
    """Alert calls whose outcomes a test scripts per number; every call is written down."""

    script: dict[str, list[str]] = field(default_factory=dict)
    calls: list[tuple[str, float, int]] = field(default_factory=list)  # number, monotonic, attempt
    channel: Channel = Channel.VOICE
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def acquire(self) -> object:
        return None

    async def release(self, permit: object) -> None:
        return None

    async def send(self, job: DeliveryJob, message: Message, permit: object) -> Outcome:
        with self._lock:
            self.calls.append((job.phone_e164, time.monotonic(), job.attempt))
            waiting = self.script.get(job.phone_e164, [])
            status = waiting.pop(0) if waiting else "answered"
        ref = f"bn-d{job.delivery_id}-a{job.attempt}"
        # Busy and no answer: the line may be free later (the trunk's cause says so).
        return Outcome(status, provider_ref=ref, retry=status in ("busy", "no_answer"))

    async def reconcile(self, job: DeliveryJob, message: Message) -> Outcome | None:
        return None

    async def close(self) -> None:
        return None

    def calls_to(self, number: str) -> list[tuple[float, int]]:
        with self._lock:
            return [(at, attempt) for to, at, attempt in self.calls if to == number]


@dataclass
class RingingVoice(ScriptedVoice):
    """Alert calls that ring until the wall clock passes ``ring_until`` (epoch seconds) before
    their scripted outcome: a call placed before the quiet window ends inside it."""

    ring_until: float = 0.0
    placed: list[tuple[str, float]] = field(default_factory=list)  # number, epoch seconds

    async def send(self, job: DeliveryJob, message: Message, permit: object) -> Outcome:
        self.placed.append((job.phone_e164, time.time()))
        while time.time() < self.ring_until:
            await asyncio.sleep(0.05)
        return await super().send(job, message, permit)

    def times_of(self, number: str) -> list[float]:
        return [at for to, at in self.placed if to == number]


@dataclass
class RecordedSms:
    sent: list[tuple[str, int]] = field(default_factory=list)  # number, delivery id
    channel: Channel = Channel.SMS
    sent_at: dict[str, float] = field(default_factory=dict)  # number: epoch seconds

    async def acquire(self) -> object:
        return None

    async def release(self, permit: object) -> None:
        return None

    async def send(self, job: DeliveryJob, message: Message, permit: object) -> Outcome:
        self.sent.append((job.phone_e164, job.delivery_id))
        self.sent_at[job.phone_e164] = time.time()
        return Outcome("sent", provider_ref=f"SM{job.delivery_id}")

    async def reconcile(self, job: DeliveryJob, message: Message) -> Outcome | None:
        return None

    async def close(self) -> None:
        return None


def number(n: int) -> str:
    return f"+3161{n:07d}"  # Crowd's numbering: mobile numbers


def voice_action(
    context: Context, channels: tuple[str, ...] = ("voice",), action_type: str = "missing_person"
) -> int:
    view = context.actions.create(
        action_type=action_type,
        title="Vermiste man",
        description="Man, 80 jaar, blauwe jas",
        region_code="AM",
        area=AreaSpec(AreaKind.CIRCLE, centre=CENTRE, radius_m=2000),
        channels=list(channels),
        actor="test",
    )
    context.actions.start(view.id, actor="test")
    return view.id


def deliveries(context: Context, broadcast_id: int) -> list[dict[str, Any]]:
    with session_scope(context.sessions) as session:
        rows = session.execute(
            select(
                Delivery.id,
                Delivery.participant_id,
                Delivery.channel,
                Delivery.status,
                Delivery.attempts,
                Delivery.fallback_of,
            )
            .where(Delivery.broadcast_id == broadcast_id)
            .order_by(Delivery.id)
        )
        return [row._asdict() for row in rows]


def total_of(context: Context, broadcast_id: int) -> int:
    with session_scope(context.sessions) as session:
        return int(session.scalar(select(Broadcast.total).where(Broadcast.id == broadcast_id)) or 0)


def settled(thread: WorkerThread) -> WorkerThread:
    """Once the worker rebuilt the (new, empty) Redis prefix's control from the database: that
    rebuild fans every running broadcast out again, which would queue a waiting retry early."""
    deadline = time.monotonic() + 15
    while thread.worker.control_rebuilds < 1:
        assert time.monotonic() < deadline, "the worker never rebuilt the broadcast control"
        time.sleep(0.05)
    return thread


def start(
    start_worker: Callable[..., WorkerThread], voice: ScriptedVoice, sms: Any | None = None
) -> WorkerThread:
    senders: dict[Channel, Any] = {Channel.VOICE: voice}
    if sms is not None:
        senders[Channel.SMS] = sms
    return settled(start_worker(lambda: senders))


# --- retries by outcome --------------------------------------------------------------------------------
def test_busy_and_no_answer_each_retry_after_their_own_wait_and_attempts(
    crowd: Crowd, bn_context: Context, start_worker: Callable[..., WorkerThread]
) -> None:
    busy, unanswered, answers = crowd.add(3, voice=True)
    voice = ScriptedVoice({number(0): ["busy"] * 5, number(1): ["no_answer"] * 5, number(2): ["busy"]})
    start(start_worker, voice)

    (alert_id,) = crowd.broadcasts(voice_action(bn_context), "alert")
    statuses = crowd.wait_done(alert_id, timeout=30)

    assert statuses == {"busy": 1, "no_answer": 1, "answered": 1}
    busy_calls = voice.calls_to(number(0))
    assert [attempt for _at, attempt in busy_calls] == [1, 2, 3]  # busy: three calls
    assert all(BUSY_WAIT <= b[0] - a[0] < 10 for a, b in itertools.pairwise(busy_calls))
    unanswered_calls = voice.calls_to(number(1))
    assert [attempt for _at, attempt in unanswered_calls] == [1, 2]  # no answer: two
    assert NO_ANSWER_WAIT <= unanswered_calls[1][0] - unanswered_calls[0][0] < 10
    assert len(voice.calls_to(number(2))) == 2  # busy once, then answered
    by_person = {row["participant_id"]: row for row in deliveries(bn_context, alert_id)}
    assert by_person[busy]["attempts"] == 3 and by_person[unanswered]["attempts"] == 2
    assert by_person[answers]["status"] == "answered"


def test_a_message_left_on_a_machine_is_done_and_falls_back_to_nothing(
    crowd: Crowd, bn_context: Context, start_worker: Callable[..., WorkerThread]
) -> None:
    crowd.add(1, voice=True, sms=True)
    voice, sms = ScriptedVoice({number(0): ["machine"] * 3}), RecordedSms()
    start(start_worker, voice, sms)

    (alert_id,) = crowd.broadcasts(voice_action(bn_context), "alert")

    assert crowd.wait_done(alert_id) == {"machine": 1}
    assert len(voice.calls) == 1 and sms.sent == []


def test_one_more_call_after_a_machine_when_configured(
    crowd: Crowd, bn_context: Context, bn_settings: Settings, start_worker: Callable[..., WorkerThread]
) -> None:
    policies = bn_settings.broadcast.policies
    once_more = policies.machine.model_copy(update={"attempts": 2})
    context = Context(
        bn_settings.model_copy(
            update={
                "broadcast": bn_settings.broadcast.model_copy(
                    update={"policies": policies.model_copy(update={"machine": once_more})}
                )
            }
        )
    )
    try:
        crowd.add(1, voice=True)
        voice = ScriptedVoice({number(0): ["machine", "answered"]})
        settled(start_worker(lambda: {Channel.VOICE: voice}, context))

        (alert_id,) = crowd.broadcasts(voice_action(bn_context), "alert")

        assert crowd.wait_done(alert_id) == {"answered": 1}
        assert [attempt for _at, attempt in voice.calls_to(number(0))] == [1, 2]
    finally:
        context.close()


# --- falling back to SMS ---------------------------------------------------------------------------------
@pytest.fixture
def bn_settings_twilio(bn_settings: Settings, fake_twilio: FakeTwilio) -> Settings:
    # Callbacks go nowhere (no panel here): the SMS delivery stays "sent", as the worker wrote it.
    return bn_settings.model_copy(
        update={"twilio": fake_twilio.settings(bn_settings.twilio, "http://127.0.0.1:9")}
    )


def test_a_failed_call_goes_out_once_by_sms_through_twilio_and_counts_in_the_progress(
    crowd: Crowd,
    bn_context: Context,
    bn_settings_twilio: Settings,
    fake_twilio: FakeTwilio,
    start_worker: Callable[..., WorkerThread],
) -> None:
    failed, answers = crowd.add(2, voice=True, sms=True)
    voice = ScriptedVoice({number(0): ["failed"]})

    def senders() -> dict[Channel, Any]:
        client = aioredis.Redis.from_url(bn_settings_twilio.redis.url)
        rate = SharedRate(client, f"{bn_settings_twilio.redis.key_prefix}rate:sms", 200.0)
        return {Channel.VOICE: voice, Channel.SMS: TwilioSmsSender(TwilioSms(bn_settings_twilio), rate)}

    thread = settled(start_worker(senders))
    (alert_id,) = crowd.broadcasts(voice_action(bn_context), "alert")  # voice only: no SMS at first

    assert crowd.wait_done(alert_id) == {"failed": 1, "answered": 1, "sent": 1}
    (message,) = fake_twilio.wait_for_messages(1)
    assert message.to == number(0)
    time.sleep(0.5)
    assert len(fake_twilio.messages) == 1  # once
    rows = deliveries(bn_context, alert_id)
    voice_row = next(r for r in rows if r["participant_id"] == failed and r["channel"] == "voice")
    (sms_row,) = [r for r in rows if r["channel"] == "sms"]
    assert sms_row["participant_id"] == failed and sms_row["fallback_of"] == voice_row["id"]
    assert voice_row["attempts"] == 1  # a failed call is not repeated
    assert len(voice.calls_to(number(0))) == 1
    assert total_of(bn_context, alert_id) == 3
    client = redis.Redis.from_url(bn_context.settings.redis.url)
    snapshot = progress.read(client, bn_context.settings.redis.key_prefix, alert_id)
    assert snapshot is not None and (snapshot.handled, snapshot.total) == (3, 3)
    assert 100 in snapshot.milestones_ms
    assert thread.worker.fallbacks == 1
    assert answers


def test_no_fallback_without_sms_allowed_or_a_mobile_number(
    crowd: Crowd, bn_context: Context, start_worker: Callable[..., WorkerThread]
) -> None:
    crowd.add(1, voice=True)  # did not allow SMS
    (fixed_line,) = crowd.add(1, voice=True, sms=True, start=1)
    with session_scope(bn_context.sessions) as session:
        session.execute(
            update(Participant).where(Participant.id == fixed_line).values(phone_e164="+31201234567")
        )
    voice = ScriptedVoice({number(0): ["failed"], "+31201234567": ["no_answer"] * 2})
    sms = RecordedSms()
    start(start_worker, voice, sms)

    (alert_id,) = crowd.broadcasts(voice_action(bn_context), "alert")

    assert crowd.wait_done(alert_id, timeout=30) == {"failed": 1, "no_answer": 1}
    assert sms.sent == []
    assert all(r["fallback_of"] is None for r in deliveries(bn_context, alert_id))
    assert total_of(bn_context, alert_id) == 2


def test_no_second_sms_for_someone_the_alert_texted_already(
    crowd: Crowd, bn_context: Context, start_worker: Callable[..., WorkerThread]
) -> None:
    crowd.add(1, voice=True, sms=True)
    voice, sms = ScriptedVoice({number(0): ["failed"]}), RecordedSms()
    start(start_worker, voice, sms)

    (alert_id,) = crowd.broadcasts(voice_action(bn_context, ("voice", "sms")), "alert")

    assert crowd.wait_done(alert_id) == {"failed": 1, "sent": 1}
    assert [to for to, _id in sms.sent] == [number(0)]  # the alert's own SMS, once
    assert all(r["fallback_of"] is None for r in deliveries(bn_context, alert_id))
    assert total_of(bn_context, alert_id) == 2


def test_busy_to_the_end_then_one_sms(
    crowd: Crowd, bn_context: Context, start_worker: Callable[..., WorkerThread]
) -> None:
    (texts,) = crowd.add(1, voice=True, sms=True)
    voice, sms = ScriptedVoice({number(0): ["busy"] * 3}), RecordedSms()
    start(start_worker, voice, sms)

    (alert_id,) = crowd.broadcasts(voice_action(bn_context), "alert")

    assert crowd.wait_done(alert_id, timeout=30) == {"busy": 1, "sent": 1}
    assert len(voice.calls_to(number(0))) == 3
    assert [to for to, _id in sms.sent] == [number(0)]
    (sms_row,) = [r for r in deliveries(bn_context, alert_id) if r["channel"] == "sms"]
    assert sms_row["participant_id"] == texts and sms_row["fallback_of"] is not None


def test_a_lost_enqueue_of_the_fallback_is_repaired_by_the_takeover(
    crowd: Crowd, bn_context: Context, start_worker: Callable[..., WorkerThread]
) -> None:
    crowd.add(1, voice=True, sms=True)
    voice, sms = ScriptedVoice({number(0): ["failed"]}), RecordedSms()
    thread = start(start_worker, voice, sms)
    worker = thread.worker
    real = worker._queue_fallbacks
    lost: list[int] = []

    async def lose_the_first(fallbacks: list[Any]) -> None:
        if not lost:
            lost.extend(f.delivery_id for f in fallbacks)
            raise redis.ConnectionError("Redis went away")
        await real(fallbacks)

    worker._queue_fallbacks = lose_the_first  # type: ignore[method-assign]
    (alert_id,) = crowd.broadcasts(voice_action(bn_context), "alert")

    # The voice entry stayed unacknowledged; after claim_idle_seconds it is taken over, found
    # final, and its fallback is queued then.
    assert crowd.wait_done(alert_id, timeout=30) == {"failed": 1, "sent": 1}
    assert lost and [delivery for _to, delivery in sms.sent] == lost
    assert len(voice.calls) == 1


# --- the panel's policy, used by the worker -------------------------------------------------------------
def test_a_policy_edited_in_the_panel_is_audited_and_used_by_the_worker(
    crowd: Crowd, bn_context: Context, start_worker: Callable[..., WorkerThread]
) -> None:
    from callback_api.app import create_app
    from callback_api.auth.services import create_user as create_panel_user
    from tests.panel.conftest import PASSWORD, csrf_token, login

    create_panel_user(
        bn_context.sessions, username="admin", role="admin", password=PASSWORD, actor="test", source="test"
    )
    app = create_app(bn_context.settings, context=bn_context, config={"TESTING": True})
    client = app.test_client()
    assert login(client, "admin") == 302
    page = "/settings/alert-policies/busy"
    answer = client.post(
        page,
        data={
            "csrf_token": csrf_token(client, page),
            "attempts": "2",
            "backoff_seconds": "1",
            "backoff_multiplier": "1",
            "then": "done",
            "do": "save",
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    with session_scope(bn_context.sessions) as session:
        audit = session.scalars(select(AuditEvent).where(AuditEvent.entity == "alert_outcome_policy")).one()
    assert (audit.actor, audit.verb, audit.entity_id) == ("admin", "save", "busy")
    assert (audit.source or "").startswith("web")

    crowd.add(1, voice=True, sms=True)
    voice, sms = ScriptedVoice({number(0): ["busy"] * 5}), RecordedSms()
    start(start_worker, voice, sms)
    (alert_id,) = crowd.broadcasts(voice_action(bn_context), "alert")

    assert crowd.wait_done(alert_id, timeout=30) == {"busy": 1}
    calls = voice.calls_to(number(0))
    assert [attempt for _at, attempt in calls] == [1, 2]  # the panel's two calls, not the settings' three
    assert calls[1][0] - calls[0][0] >= 1.0
    assert sms.sent == []  # the panel said: stop after the last call


def test_the_worker_reads_the_policies_once_per_period(
    bn_context: Context, start_worker: Callable[..., WorkerThread]
) -> None:
    thread = start_worker(lambda: {Channel.VOICE: ScriptedVoice()})
    worker = thread.worker
    reads: list[int] = []
    real = worker._read_policies

    def counted() -> Any:
        reads.append(1)
        return real()

    worker._read_policies = counted  # type: ignore[method-assign]
    worker.policy_cache_seconds = 60.0
    worker._policies = None

    async def many() -> None:
        for _ in range(50):
            await worker.policies()

    asyncio.run_coroutine_threadsafe(many(), thread.loop).result(10)
    assert len(reads) == 1


# --- the night rules on retries and fallbacks -------------------------------------------------------------
def test_a_retry_and_a_fallback_due_inside_the_quiet_window_wait_for_its_end(
    crowd: Crowd, bn_context: Context, bn_settings: Settings, start_worker: Callable[..., WorkerThread]
) -> None:
    """Calls placed just before the window opens end inside it: a busy line's retry and a
    failed call's fallback SMS wait for the window's end, as the broadcast itself would have;
    a participant who opted in to night alerts gets the SMS at once."""
    busy, failed, night_owl = crowd.add(3, voice=True, sms=True)
    with session_scope(bn_context.sessions) as session:
        session.execute(update(Participant).where(Participant.id == night_owl).values(night_alerts=True))
    amsterdam = ZoneInfo("Europe/Amsterdam")
    opens = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    closes = opens + timedelta(seconds=6)
    window = f"{opens.astimezone(amsterdam):%H:%M:%S}-{closes.astimezone(amsterdam):%H:%M:%S}"
    context = Context(
        bn_settings.model_copy(
            update={
                "broadcast": bn_settings.broadcast.model_copy(
                    update={"quiet_hours": window, "quiet_hold_sms": True}
                )
            }
        )
    )
    try:
        voice = RingingVoice(
            {number(0): ["busy", "answered"], number(1): ["failed"], number(2): ["failed"]},
            ring_until=opens.timestamp() + 0.2,
        )
        sms = RecordedSms()
        settled(start_worker(lambda: {Channel.VOICE: voice, Channel.SMS: sms}, context))
        assert datetime.now(UTC) < opens - timedelta(seconds=1), "the worker took too long to start"
        # Information about a vehicle: its alerts may wait for the morning.
        (alert_id,) = crowd.broadcasts(voice_action(bn_context, action_type="vehicle"), "alert")

        assert crowd.wait_done(alert_id, timeout=30) == {"answered": 1, "failed": 2, "sent": 2}
        first_call, retry = voice.times_of(number(0))
        assert first_call < opens.timestamp()  # placed before the window: not held itself
        assert retry >= closes.timestamp() - 0.1  # the busy policy's 0.6 s became the window's end
        assert sms.sent_at[number(1)] >= closes.timestamp() - 0.1
        assert sms.sent_at[number(2)] < closes.timestamp() - 1  # opted in: at once
        with session_scope(bn_context.sessions) as session:
            held = dict(
                session.execute(
                    select(Delivery.participant_id, Delivery.not_before).where(
                        Delivery.broadcast_id == alert_id, Delivery.not_before.is_not(None)
                    )
                ).all()
            )
        assert set(held) == {busy, failed}  # the retried call and the held SMS
        assert all(
            moment is not None and abs(moment.replace(tzinfo=UTC) - closes) < timedelta(seconds=1)
            for moment in held.values()
        )
    finally:
        context.close()

"""The closing word: an action's result message also goes to everyone who phoned about it and
left a number — once each, on one channel — through the real worker, Redis, SQLite, the fake
Twilio (SMS and voice) and the real panel for Twilio's callbacks and the call's TwiML."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer

from broadcasting import store
from broadcasting.channels.sms_twilio import TwilioSmsSender
from broadcasting.channels.voice_twilio import TwilioVoiceSender
from broadcasting.ratelimit import SharedRate
from broadcasting.recipients import closing_word_recipients, with_closing_word
from broadcasting.twilio import TwilioSms, TwilioVoice
from burgernet import channel_vars as cv
from burgernet import db
from burgernet.actions import AreaSpec, InvalidActionTransition
from burgernet.calls import CallLog
from burgernet.closing_word import callable_number, channel_for_caller
from burgernet.db import session_scope
from burgernet.domain import AreaKind, Channel
from burgernet.models import ActionChannelFact, ActionFact, AuditEvent, Base, Broadcast, Delivery
from burgernet.retention import Retention
from burgernet.settings import Settings
from composition.context import Context
from composition.redis_server import ManagedRedis
from testbed.fake_twilio import FakeTwilio
from testbed.postgres import ManagedPostgres
from tests.broadcasting.conftest import Crowd, WorkerThread
from tests.conftest import postgres_context

RESULT = "Het meisje is gevonden. Dank voor uw hulp!"
MOBILE_CALLER = "+31687654321"  # no participant: an SMS
FIXED_CALLER = "+31201234567"  # no participant, a fixed line: a short voice call
_calls = count(1)


@pytest.fixture
def bn_settings(bn_settings: Settings, fake_twilio: FakeTwilio, panel_port: int) -> Settings:
    return bn_settings.model_copy(
        update={
            "twilio": fake_twilio.settings(bn_settings.twilio, f"http://127.0.0.1:{panel_port}"),
            "broadcast": bn_settings.broadcast.model_copy(
                update={"sms_per_second": 200.0, "voice_calls_per_second": 50.0, "claim_idle_seconds": 2.0}
            ),
        }
    )


def twilio_senders(settings: Settings) -> Callable[[], dict[Channel, object]]:
    def build() -> dict[Channel, object]:
        client = aioredis.Redis.from_url(settings.redis.url)
        prefix = settings.redis.key_prefix
        return {
            Channel.SMS: TwilioSmsSender(
                TwilioSms(settings),
                SharedRate(client, f"{prefix}rate:sms", settings.broadcast.sms_per_second),
            ),
            Channel.VOICE: TwilioVoiceSender(
                TwilioVoice(settings),
                SharedRate(client, f"{prefix}rate:voice", settings.broadcast.voice_calls_per_second),
            ),
        }

    return build


@pytest.fixture
def worker(
    bn_context: Context,
    served_panel: BaseWSGIServer,
    start_worker: Callable[..., WorkerThread],
) -> WorkerThread:
    return start_worker(twilio_senders(bn_context.settings))


def phoned(
    context: Context, action_id: int | None, caller_id: str | None, *, kind: str = cv.CALL_KIND_INBOUND
) -> str:
    """A call to the free number about ``action_id`` with the caller ID as the trunk gave it."""
    unique_id = f"closing-{next(_calls)}"
    calls = CallLog(context.sessions)
    calls.open_call(unique_id, kind=kind, caller_number=caller_id, action_id=action_id, reason="test")
    calls.ended(unique_id, outcome=cv.OUTCOME_CONNECTED, hangup_cause=16)
    return unique_id


def left_a_tip(context: Context, action_id: int, caller_id: str | None, recording: str) -> None:
    unique_id = phoned(context, action_id, caller_id)
    CallLog(context.sessions).register_tip(
        unique_id, action_id=action_id, recording_path=recording, callback_number=caller_id
    )


def result_rows(context: Context, broadcast_id: int) -> list[tuple[int | None, str | None, str, str]]:
    with session_scope(context.sessions) as session:
        return [
            (participant_id, caller, channel, status)
            for participant_id, caller, channel, status in session.execute(
                select(Delivery.participant_id, Delivery.caller_e164, Delivery.channel, Delivery.status)
                .where(Delivery.broadcast_id == broadcast_id)
                .order_by(Delivery.id)
            )
        ]


def close(context: Context, action_id: int) -> None:
    context.actions.close(action_id, outcome_kind="found_otherwise", result_message=RESULT, actor="test")


# --- which numbers count ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("caller_id", "expected"),
    [
        ("0687654321", "+31687654321"),
        ("+31 6 8765 4321", "+31687654321"),
        ("0031687654321", "+31687654321"),
        ("020-1234567", "+31201234567"),
        (None, None),
        ("", None),
        ("anonymous", None),
        ("Restricted", None),
        ("0", None),
        ("12", None),  # garbage
        ("x0612", None),
        ("0800 1234", None),  # a service number: we never dial it
        ("0900 1234567", None),  # premium
        ("+32470123456", None),  # foreign: never dialled
        ("0661234567", None),  # a pager
    ],
)
def test_only_a_real_dutch_caller_id_counts(caller_id: str | None, expected: str | None) -> None:
    assert callable_number(caller_id) == expected


def test_a_mobile_gets_an_sms_a_fixed_line_a_call() -> None:
    assert channel_for_caller(MOBILE_CALLER) is Channel.SMS
    assert channel_for_caller(FIXED_CALLER) is Channel.VOICE


# --- through the worker ----------------------------------------------------------------------------------
def test_callers_get_the_result_once_each_on_one_channel(
    crowd: Crowd, bn_context: Context, fake_twilio: FakeTwilio, worker: WorkerThread
) -> None:
    alerted = crowd.add(3, sms=True)  # +31610000000..2, alerted by SMS
    (outside,) = crowd.add(1, voice=True, sms=True, start=50, lat=52.9, lon=6.0)  # never alerted
    crowd.add(1, sms=True, start=60, lat=52.9, lon=6.0, opted_out=True)  # +31610000060
    action_id = crowd.action()
    other_action = crowd.action()
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    crowd.wait_done(alert_id)
    crowd.wait_until(lambda: len(fake_twilio.messages) == 6, 10, "both alerts")  # 3 each action
    before = len(fake_twilio.messages)

    phoned(bn_context, action_id, "0687654321")
    phoned(bn_context, action_id, "06 87654321")  # the same person again: told once
    left_a_tip(bn_context, action_id, "0687654321", "/nonexistent/tip.wav")
    phoned(bn_context, action_id, "0201234567")
    phoned(bn_context, action_id, "0610000000")  # alerted by SMS: told the way they were alerted
    phoned(bn_context, action_id, "0610000050")  # a participant outside the area
    phoned(bn_context, action_id, "0610000060")  # a participant who opted out: told nothing
    for withheld in (None, "anonymous", "unknown", "12", "0900 1234567", "+32470123456"):
        phoned(bn_context, action_id, withheld)
    phoned(bn_context, other_action, "0622222222")  # about another action
    phoned(bn_context, action_id, "0633333333", kind=cv.CALL_KIND_CALLBACK)  # our call, not theirs

    close(bn_context, action_id)
    (result_id,) = crowd.broadcasts(action_id, "result")
    crowd.wait_done(result_id)

    rows = result_rows(bn_context, result_id)
    by_recipient = {participant or caller: (channel, status) for participant, caller, channel, status in rows}
    assert len(rows) == len(by_recipient) == 6  # nobody twice
    assert {pid: by_recipient[pid][0] for pid in alerted} == {pid: "sms" for pid in alerted}
    assert by_recipient[outside][0] == "sms"  # their own channel of choice, as a participant
    assert by_recipient[MOBILE_CALLER][0] == "sms"
    assert by_recipient[FIXED_CALLER][0] == "voice"
    assert all(status in ("sent", "delivered", "answered") for _channel, status in by_recipient.values())

    fake_twilio.wait_for_messages(before + 5)
    sent = [m for m in list(fake_twilio.messages)[before:]]
    assert sorted(m.to for m in sent) == sorted(
        ["+31610000000", "+31610000001", "+31610000002", "+31610000050", MOBILE_CALLER]
    )
    assert all(RESULT in m.body for m in sent)
    fake_twilio.wait_for(
        lambda: any(call.twiml for call in fake_twilio.calls), description="the call's TwiML"
    )
    (call,) = fake_twilio.calls
    assert call.to == FIXED_CALLER
    assert RESULT in call.twiml[0]  # the voice path reads the message out
    told = {m.to for m in fake_twilio.messages} | {c.to for c in fake_twilio.calls}
    for never in ("+31610000060", "+31622222222", "+31633333333", "+32470123456"):
        assert never not in told

    with session_scope(bn_context.sessions) as session:
        audit = session.scalars(
            select(AuditEvent.detail).where(
                AuditEvent.verb == "closing-word", AuditEvent.entity_id == str(action_id)
            )
        ).all()
        assert len(audit) == 1
        detail = json.loads(audit[0] or "{}")
        # Counted at closing: the mobile, the fixed line and the three participants who phoned.
        assert detail["callers"] == 5
        assert "+316" not in json.dumps(detail)


def test_the_figures_count_the_closing_word_as_result_deliveries(
    crowd: Crowd, bn_context: Context, fake_twilio: FakeTwilio, worker: WorkerThread
) -> None:
    crowd.add(2, sms=True)
    action_id = crowd.action()
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    crowd.wait_done(alert_id)
    phoned(bn_context, action_id, "0687654321")
    phoned(bn_context, action_id, "0201234567")
    close(bn_context, action_id)
    (result_id,) = crowd.broadcasts(action_id, "result")
    crowd.wait_done(result_id)

    assert bn_context.facts.refresh(action_id)
    with session_scope(bn_context.sessions) as session:
        fact = session.get(ActionFact, action_id)
        assert fact is not None
        assert fact.calls_total == 2
        figures = {
            (row.kind, row.channel): (row.recipients, row.delivered)
            for row in session.scalars(
                select(ActionChannelFact).where(ActionChannelFact.action_id == action_id)
            )
        }
        assert figures[("alert", "sms")] == (2, 2)  # the alert's figures are the alert's only
        assert figures[("result", "sms")] == (3, 3)
        assert figures[("result", "voice")] == (1, 1)
        assert fact.result_deliveries == 4

    # Retention removes a caller's delivery, number and all, like every other; the figures stay.
    later = datetime.now(UTC) + timedelta(days=bn_context.settings.retention.deliveries_days + 1)
    report = Retention(bn_context.sessions, bn_context.settings, bn_context.facts).run(
        later, kinds=["deliveries"]
    )
    assert report.kind("deliveries").counts["deliveries"] == 6  # 2 alert, 4 result
    with session_scope(bn_context.sessions) as session:
        assert (
            session.scalars(select(Delivery.caller_e164).where(Delivery.caller_e164.is_not(None))).all() == []
        )
        fact = session.get(ActionFact, action_id)
        assert fact is not None and fact.result_deliveries == 4


def test_an_action_that_alerted_nobody_still_tells_its_callers(
    crowd: Crowd, bn_context: Context, fake_twilio: FakeTwilio, worker: WorkerThread
) -> None:
    action_id = crowd.action(start=False)
    bn_context.actions.start(action_id, actor="test", broadcast=False)
    quiet = crowd.action(start=False)
    bn_context.actions.start(quiet, actor="test", broadcast=False)
    phoned(bn_context, action_id, "0687654321")
    phoned(bn_context, quiet, "anonymous")

    close(bn_context, action_id)
    close(bn_context, quiet)
    assert crowd.broadcasts(quiet) == []  # nobody alerted, nobody to tell: nothing asked for
    (result_id,) = crowd.broadcasts(action_id)
    crowd.wait_done(result_id)
    ((participant, caller, channel, status),) = result_rows(bn_context, result_id)
    assert (participant, caller, channel) == (None, MOBILE_CALLER, "sms") and status in ("sent", "delivered")
    (message,) = fake_twilio.wait_for_messages(1)
    assert message.to == MOBILE_CALLER and RESULT in message.body


def test_closing_twice_or_fanning_out_again_tells_nobody_twice(
    crowd: Crowd, bn_context: Context, fake_twilio: FakeTwilio, worker: WorkerThread
) -> None:
    crowd.add(1, sms=True)
    action_id = crowd.action()
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    crowd.wait_done(alert_id)
    phoned(bn_context, action_id, "0687654321")
    phoned(bn_context, action_id, "0201234567")
    close(bn_context, action_id)
    (result_id,) = crowd.broadcasts(action_id, "result")
    crowd.wait_done(result_id)
    fake_twilio.wait_for_messages(3)

    with pytest.raises(InvalidActionTransition):
        close(bn_context, action_id)
    # A fan-out asked for again (a lost acknowledgement, a Redis rebuild) adds nobody.
    worker.worker.sync_queue.request_fan_out(result_id)
    bn_context.broadcasts.nudge(result_id)
    crowd.wait_until(lambda: worker.worker.sent >= 4, 10, "the first result")
    time.sleep(1.5)  # time for a second fan-out to have sent something, if it wrongly would
    assert crowd.broadcasts(action_id, "result") == [result_id]
    assert len(result_rows(bn_context, result_id)) == 3
    assert sorted(m.to for m in fake_twilio.messages) == sorted(
        ["+31610000000", "+31610000000", MOBILE_CALLER]
    )
    assert [c.to for c in fake_twilio.calls] == [FIXED_CALLER]


# --- migration 0021 --------------------------------------------------------------------------------------
def _caller_delivery(connection: sa.Connection, delivery_id: int, **columns: object) -> None:
    values = {
        "id": delivery_id,
        "broadcast_id": 2,
        "channel": "sms",
        "status": "queued",
        "attempts": 0,
        "updated_at": "2026-11-01 11:00:00",
        **columns,
    }
    names = ", ".join(values)
    connection.execute(
        sa.text(f"INSERT INTO deliveries ({names}) VALUES ({', '.join(':' + n for n in values)})"), values
    )


def _round_trip_0021(url: str) -> None:
    engine = db.make_engine(url)
    db.upgrade(url, "0020")
    with engine.begin() as connection:
        for statement in (
            "INSERT INTO regions (id, code, name) VALUES (1, 'MN', 'Midden-Nederland')",
            "INSERT INTO actions (id, action_type, title, description, region_id, area_kind, postcodes,"
            " status, created_at, started_at) VALUES (1, 'missing_person', 'Oud', '', 1, 'postcodes',"
            " '3511', 'active', '2026-11-01 10:00:00', '2026-11-01 10:01:00')",
            "INSERT INTO participants (id, phone_e164, postcode, lat, lon, language, channel_voice,"
            " channel_sms, channel_email, opted_out, inquiry_opt_in, created_at) VALUES (1, '+31612345678',"
            " '3511AB', 52.09, 5.12, 'nl', true, true, false, false, false, '2026-11-01 09:00:00')",
            "INSERT INTO broadcasts (id, action_id, kind, message, status, created_at, priority, total)"
            " VALUES (1, 1, 'alert', '', 'done', '2026-11-01 10:01:00', 1, 1)",
            "INSERT INTO broadcasts (id, action_id, kind, message, status, created_at, priority, total)"
            " VALUES (2, 1, 'result', '', 'running', '2026-11-01 11:00:00', 2, 2)",
            "INSERT INTO deliveries (id, broadcast_id, participant_id, channel, status, attempts, updated_at)"
            " VALUES (1, 1, 1, 'sms', 'sent', 1, '2026-11-01 10:02:00')",
        ):
            connection.execute(sa.text(statement))
    db.upgrade(url)
    with engine.begin() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert [d for d in diff if "deliveries" in str(d)] == []
        _caller_delivery(connection, 2, caller_e164=MOBILE_CALLER)
        _caller_delivery(connection, 3, caller_e164=FIXED_CALLER, channel="voice")
    refused: list[dict[str, object]] = [
        {"caller_e164": "+31611111111", "participant_id": 1},  # a caller or a participant, not both
        {"caller_e164": "+31611111111", "channel": "email"},  # a caller hears it by voice or SMS
        {"caller_e164": MOBILE_CALLER, "channel": "voice"},  # once per caller, whatever the channel
        {},  # nobody at all
    ]
    for number, columns in enumerate(refused, start=10):
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            _caller_delivery(connection, number, **columns)
    command.downgrade(db.alembic_config(url), "0020")
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, participant_id FROM deliveries ORDER BY id")).all()
    assert rows == [(1, 1)]  # the callers' rows go with the column; the participants' stay
    db.upgrade(url)
    engine.dispose()


def test_migration_0021_on_sqlite(tmp_path: Path) -> None:
    _round_trip_0021(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.postgres
def test_migration_0021_on_postgresql(postgres_server: ManagedPostgres) -> None:
    engine = db.make_engine(postgres_server.url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    _round_trip_0021(postgres_server.url)


# --- the fan-out's statements on PostgreSQL --------------------------------------------------------------
@pytest.fixture
def pg(postgres_server: ManagedPostgres, redis_server: ManagedRedis, tmp_path: Path) -> Iterator[Context]:
    context = postgres_context(postgres_server, redis_server, tmp_path)
    yield context
    context.close()


@pytest.mark.postgres
def test_a_resumed_fan_out_on_postgresql_adds_no_caller_twice_and_the_job_has_their_number(
    pg: Context,
) -> None:
    view = pg.actions.create(
        action_type="missing_child",
        title="PG slot",
        region_code="MN",
        area=AreaSpec(AreaKind.CIRCLE, centre=(5.12, 52.09), radius_m=500),
        actor="test",
    )
    pg.actions.start(view.id, actor="test", broadcast=False)
    phoned(pg, view.id, "0687654321")
    phoned(pg, view.id, "0201234567")
    close(pg, view.id)
    with session_scope(pg.sessions) as session:
        broadcast = session.scalars(select(Broadcast).where(Broadcast.action_id == view.id)).one()
        created = []
        for _ in range(2):  # the second: a fan-out resumed after a crash
            word = closing_word_recipients(session, view.id, {})
            created.append(store.add_caller_deliveries(session, broadcast, word.callers))
            fan = store.add_deliveries(session, broadcast, with_closing_word({}, word))
        assert created == [2, 0] and broadcast.total == 2
        (sms_id,) = fan.queued[Channel.SMS]
        claim, job = store.claim(session, sms_id)
    assert claim is store.Claim.CLAIMED and job is not None
    assert (job.participant_id, job.phone_e164, job.language, job.kind) == (
        None,
        MOBILE_CALLER,
        "nl",
        "result",
    )

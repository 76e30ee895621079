"""Night rules end to end: real Redis, SQLite, a worker and the fake Twilio.

A short quiet window around now (seconds, in Europe/Amsterdam time) holds the SMS of an
information action until the window's end; the worker sends it then without anyone doing
anything, also after it was restarted and after Redis lost its queues. An urgent action, a
missing child and a participant who opted in to night alerts are not held.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
import redis.asyncio as aioredis
from sqlalchemy import select, update

from broadcasting.channels.sms_twilio import TwilioSmsSender
from broadcasting.ratelimit import SharedRate
from broadcasting.twilio import TwilioSms
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.models import Action, Delivery, Participant
from burgernet.settings import Settings
from composition.context import Context
from testbed.fake_twilio import FakeTwilio
from tests.broadcasting.conftest import Crowd, WorkerThread

HOLD_SECONDS = 20.0  # long enough for the restart and the rebuild below on a busy machine
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def window_ending_in(seconds: float) -> tuple[str, datetime]:
    """A quiet window that began a minute ago and ends ``seconds`` from now (local clock)."""
    now = datetime.now(UTC)
    end = (now + timedelta(seconds=seconds)).replace(microsecond=0) + timedelta(seconds=1)
    start = now - timedelta(seconds=60)
    text = f"{start.astimezone(AMSTERDAM):%H:%M:%S}-{end.astimezone(AMSTERDAM):%H:%M:%S}"
    return text, end


@pytest.fixture
def quiet_end() -> list[datetime]:
    return []


@pytest.fixture
def bn_settings(bn_settings: Settings, fake_twilio: FakeTwilio, quiet_end: list[datetime]) -> Settings:
    text, end = window_ending_in(HOLD_SECONDS)
    quiet_end.append(end)
    return bn_settings.model_copy(
        update={
            "twilio": fake_twilio.settings(bn_settings.twilio, "http://127.0.0.1:9"),
            "broadcast": bn_settings.broadcast.model_copy(
                update={"sms_per_second": 100.0, "quiet_hours": text, "quiet_hold_sms": True}
            ),
        }
    )


def sms_senders(settings: Settings) -> Callable[[], dict[Channel, TwilioSmsSender]]:
    def build() -> dict[Channel, TwilioSmsSender]:
        client = aioredis.Redis.from_url(settings.redis.url)
        rate = SharedRate(client, f"{settings.redis.key_prefix}rate:sms", settings.broadcast.sms_per_second)
        return {Channel.SMS: TwilioSmsSender(TwilioSms(settings), rate)}

    return build


def sent_to(fake_twilio: FakeTwilio) -> list[str]:
    return sorted(m.to for m in fake_twilio.messages)


def test_a_night_held_sms_goes_at_the_windows_end_and_urgent_ones_do_not_wait(
    crowd: Crowd,
    bn_context: Context,
    fake_twilio: FakeTwilio,
    start_worker: Callable[..., WorkerThread],
    quiet_end: list[datetime],
) -> None:
    (end,) = quiet_end
    sleeper, night_owl = crowd.add(2, sms=True)
    with session_scope(bn_context.sessions) as session:
        session.execute(update(Participant).where(Participant.id == night_owl).values(night_alerts=True))
    phones = {sleeper: "+31610000000", night_owl: "+31610000001"}
    first_worker = WorkerThread(bn_context, sms_senders(bn_context.settings))  # restarted below

    vehicle = crowd.action("vehicle")  # information: may wait
    urgent = crowd.action("missing_person")  # urgent: never waits
    child = crowd.action("missing_child", start=False)
    with session_scope(bn_context.sessions) as session:  # a missing child never waits, whatever its urgency
        session.execute(update(Action).where(Action.id == child).values(urgency="information"))
    bn_context.actions.start(child, actor="test")

    (held_alert,) = crowd.broadcasts(vehicle, "alert")
    crowd.wait_done(crowd.broadcasts(urgent, "alert")[0])
    crowd.wait_done(crowd.broadcasts(child, "alert")[0])

    # The night owl had the vehicle's SMS at once; the sleeper waits for the window's end.
    crowd.wait_until(lambda: crowd.statuses(held_alert).get("queued") == 1, 10, "the fan-out")
    crowd.wait_until(lambda: sent_to(fake_twilio).count(phones[night_owl]) == 3, 10, "the night owl's SMS")
    assert sent_to(fake_twilio).count(phones[sleeper]) == 2  # the urgent one and the missing child
    with session_scope(bn_context.sessions) as session:
        held_id, held_participant, not_before = session.execute(
            select(Delivery.id, Delivery.participant_id, Delivery.not_before).where(
                Delivery.broadcast_id == held_alert, Delivery.status == "queued"
            )
        ).one()
    assert held_participant == sleeper
    assert not_before is not None and abs(not_before.replace(tzinfo=UTC) - end) < timedelta(seconds=1)

    # A restart of the worker, and then Redis losing its queues, must not send it early.
    first_worker.stop()
    start_worker(sms_senders(bn_context.settings))
    client = redis.Redis.from_url(bn_context.settings.redis.url)
    prefix = bn_context.settings.redis.key_prefix
    for key in client.scan_iter(f"{prefix}bq:*"):
        client.delete(key)
    crowd.wait_until(lambda: client.exists(f"{prefix}bq:built") == 1, 15, "the control rebuild")
    # Back in the delayed set, at its time (the rebuild's fan-out puts it there).
    crowd.wait_until(lambda: client.zcard(f"{prefix}bq:retry") == 1, 5, "the held SMS in the delayed set")
    assert client.zscore(f"{prefix}bq:retry", f"{prefix}bq:sms:p2|{held_id}") == pytest.approx(
        end.timestamp()
    )

    while datetime.now(UTC) < end - timedelta(seconds=1):
        assert sent_to(fake_twilio).count(phones[sleeper]) == 2, "sent before the quiet window ended"
        time.sleep(0.2)
    statuses = crowd.wait_done(held_alert, timeout=HOLD_SECONDS + 15)
    sent_at = max(m.received_at for m in fake_twilio.messages if m.to == phones[sleeper])
    assert statuses == {"sent": 2}
    assert sent_to(fake_twilio).count(phones[sleeper]) == 3  # once, not twice after the rebuild
    assert end.timestamp() - 0.5 <= sent_at <= end.timestamp() + 3.0

"""Twilio SMS and voice adapters: the official client over real HTTP to the fake Twilio server,
error classification, reconciliation, and SMS broadcasts through the worker with status
callbacks arriving at the real panel app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select
from werkzeug.serving import BaseWSGIServer

from broadcasting.channels.sms_twilio import TwilioSmsSender
from broadcasting.errors import PermanentProviderError, TransientProviderError
from broadcasting.ratelimit import SharedRate
from broadcasting.twilio import TwilioSms, TwilioVoice, retry_after_seconds
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.models import Delivery, ProviderEvent
from burgernet.settings import Settings
from composition.context import Context
from testbed.fake_twilio import FakeTwilio
from testbed.ports import port_block
from tests.broadcasting.conftest import Crowd, WorkerThread

PHONE = "+31612340001"


@pytest.fixture
def bn_settings(bn_settings: Settings, fake_twilio: FakeTwilio, panel_port: int) -> Settings:
    return bn_settings.model_copy(
        update={
            "twilio": fake_twilio.settings(bn_settings.twilio, f"http://127.0.0.1:{panel_port}"),
            "broadcast": bn_settings.broadcast.model_copy(
                update={"sms_per_second": 200.0, "retry_base_seconds": 0.2, "claim_idle_seconds": 2.0}
            ),
        }
    )


# --- SMS adapter --------------------------------------------------------------------------------------
def test_send_reaches_twilio_over_http_with_the_status_callback(
    bn_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    sms = TwilioSms(bn_settings)
    sid = sms.send(to=PHONE, body="Burgernet: let op", delivery_id=42, attempt=1)

    (message,) = fake_twilio.wait_for_messages(1)
    assert sid == message.sid and sid.startswith("SM")
    assert (message.to, message.from_, message.body) == (
        PHONE,
        bn_settings.twilio.from_number,
        "Burgernet: let op",
    )
    assert message.status_callback == f"{bn_settings.twilio.callback_base_url}/twilio/sms/status?delivery=42"
    assert (
        "POST",
        f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json",
        201,
    ) in fake_twilio.requests


def test_rate_limit_is_transient_with_the_wait_twilio_asked_for(
    bn_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    sms = TwilioSms(bn_settings)
    fake_twilio.fail_next(1, 429, retry_after=7)
    with pytest.raises(TransientProviderError) as raised:
        sms.send(to=PHONE, body="x", delivery_id=1, attempt=1)
    assert raised.value.retry_after == 7.0
    assert raised.value.code == "20429"
    assert fake_twilio.messages == []  # a 429 means Twilio did not take it

    # The next attempt goes through.
    assert sms.send(to=PHONE, body="x", delivery_id=1, attempt=2).startswith("SM")


def test_server_error_and_no_connection_are_transient(bn_settings: Settings, fake_twilio: FakeTwilio) -> None:
    sms = TwilioSms(bn_settings)
    fake_twilio.fail_next(1, 500)
    with pytest.raises(TransientProviderError) as raised:
        sms.send(to=PHONE, body="x", delivery_id=1, attempt=1)
    assert raised.value.retry_after is None and raised.value.code == "20500"

    nowhere = bn_settings.model_copy(
        update={
            "twilio": bn_settings.twilio.model_copy(
                update={"api_base_url": f"http://127.0.0.1:{port_block()}"}
            )
        }
    )
    with pytest.raises(TransientProviderError, match="no answer from Twilio"):
        TwilioSms(nowhere).send(to=PHONE, body="x", delivery_id=1, attempt=1)


def test_invalid_or_unsubscribed_number_and_bad_credentials_are_permanent(
    bn_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    sms = TwilioSms(bn_settings)
    with pytest.raises(PermanentProviderError) as raised:
        sms.send(to="0612345678", body="x", delivery_id=1, attempt=1)
    assert raised.value.code == "21211"

    fake_twilio.fail_number("+31611111111", code=21610)
    with pytest.raises(PermanentProviderError) as raised:
        sms.send(to="+31611111111", body="x", delivery_id=1, attempt=1)
    assert raised.value.code == "21610"

    wrong = bn_settings.model_copy(
        update={"twilio": bn_settings.twilio.model_copy(update={"auth_token": "not-the-token"})}
    )
    with pytest.raises(PermanentProviderError) as raised:
        TwilioSms(wrong).send(to=PHONE, body="x", delivery_id=1, attempt=1)
    assert raised.value.code == "20003"
    assert fake_twilio.messages == []


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_find_sent_finds_the_message_only_when_it_was_sent(
    bn_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    sms = TwilioSms(bn_settings)
    since = datetime.now(UTC) - timedelta(minutes=1)
    assert sms.find_sent(to=PHONE, since=since, body="Vermist: jongen") is None

    sid = sms.send(to=PHONE, body="Vermist: jongen", delivery_id=5, attempt=1)
    # Many later messages to the same number: the lookup follows Twilio's paging.
    for n in range(60):
        sms.send(to=PHONE, body=f"later {n}", delivery_id=100 + n, attempt=1)
    sms.send(to="+31699999999", body="Vermist: jongen", delivery_id=6, attempt=1)

    assert sms.find_sent(to=PHONE, since=since, body="Vermist: jongen") == sid
    assert sms.find_sent(to=PHONE, since=since, body="iets anders") is None
    assert (
        sms.find_sent(to=PHONE, since=datetime.now(UTC) + timedelta(minutes=1), body="Vermist: jongen")
        is None
    )
    pages = [path for method, path, _ in fake_twilio.requests if method == "GET"]
    assert len(pages) >= 2


def test_an_answer_lost_after_twilio_took_the_message_is_not_sent_again(
    bn_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    sms = TwilioSms(bn_settings)
    fake_twilio.lose_next_answers(1)
    sid = sms.send(to=PHONE, body="Eén keer", delivery_id=9, attempt=1)
    (message,) = fake_twilio.wait_for_messages(1)
    assert sid == message.sid


# --- voice adapter ------------------------------------------------------------------------------------
def test_call_asks_twilio_for_the_alert_twiml_and_answered_completed_callbacks(
    bn_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    voice = TwilioVoice(bn_settings)
    sid = voice.call(to=PHONE, delivery_id=77, attempt=1)
    fake_twilio.wait_for(lambda: len(fake_twilio.calls) == 1, description="the call")
    (call,) = fake_twilio.calls
    base = bn_settings.twilio.callback_base_url
    assert sid == call.sid and sid.startswith("CA")
    assert (call.to, call.from_) == (PHONE, bn_settings.twilio.from_number)
    assert call.url == f"{base}/twilio/voice/alert?delivery=77"
    assert call.status_callback == f"{base}/twilio/voice/status?delivery=77"
    assert call.status_callback_events == ("answered", "completed")
    assert call.timeout == bn_settings.broadcast.voice_ring_seconds


def test_call_errors_are_classified(bn_settings: Settings, fake_twilio: FakeTwilio) -> None:
    voice = TwilioVoice(bn_settings)
    fake_twilio.fail_next(1, 429, retry_after=1)
    with pytest.raises(TransientProviderError) as transient:
        voice.call(to=PHONE, delivery_id=1, attempt=1)
    assert transient.value.retry_after == 1.0
    with pytest.raises(PermanentProviderError) as permanent:
        voice.call(to="12", delivery_id=1, attempt=1)
    assert permanent.value.code == "21217"
    assert fake_twilio.calls == []


# --- SMS broadcast through the worker, callbacks into the panel ----------------------------------------
def sms_senders(settings: Settings) -> Callable[[], dict[Channel, TwilioSmsSender]]:
    def build() -> dict[Channel, TwilioSmsSender]:
        client = aioredis.Redis.from_url(settings.redis.url)
        rate = SharedRate(client, f"{settings.redis.key_prefix}rate:sms", settings.broadcast.sms_per_second)
        return {Channel.SMS: TwilioSmsSender(TwilioSms(settings), rate)}

    return build


def test_sms_broadcast_sends_once_per_person_and_callbacks_settle_each_delivery_once(
    crowd: Crowd,
    bn_context: Context,
    fake_twilio: FakeTwilio,
    served_panel: BaseWSGIServer,
    start_worker: Callable[..., WorkerThread],
) -> None:
    ids = crowd.add(6, sms=True)
    phones = [f"+3161{n:07d}" for n in range(6)]
    fake_twilio.duplicate_callbacks = True  # every callback twice, as Twilio's retries may
    fake_twilio.fail_next(2, 429, retry_after=0.2)  # the first two sends are rate limited
    fake_twilio.message_outcome(phones[1], "undelivered")
    fake_twilio.fail_number(phones[2], code=21211)  # refused for good: one try only
    start_worker(sms_senders(bn_context.settings))

    action_id = crowd.action()
    (alert_id,) = crowd.broadcasts(action_id, "alert")
    crowd.wait_done(alert_id)

    accepted = list(fake_twilio.messages)
    assert sorted(m.to for m in accepted) == sorted(phones[:2] + phones[3:])  # each exactly once
    posts_to_refused = [p for p in fake_twilio.requests if p[2] == 400]
    assert len(posts_to_refused) == 1

    def settled() -> bool:
        return crowd.statuses(alert_id) == {"delivered": 4, "undelivered": 1, "failed": 1}

    crowd.wait_until(settled, 15, "status callbacks")
    with session_scope(bn_context.sessions) as session:
        rows = {
            pid: (status, error)
            for pid, status, error in session.execute(
                select(Delivery.participant_id, Delivery.status, Delivery.last_error).where(
                    Delivery.broadcast_id == alert_id
                )
            )
        }
        events = session.scalar(select(func.count()).select_from(ProviderEvent))
    assert rows[ids[1]][0] == "undelivered" and "30003" in (rows[ids[1]][1] or "")
    assert rows[ids[2]][0] == "failed" and "21211" in (rows[ids[2]][1] or "")
    # sent + final per accepted message, each key once although every callback came twice.
    assert events == 2 * len(accepted)
    hooks = fake_twilio.wait_for_webhooks(4 * len(accepted))
    assert {h.status_code for h in hooks} == {200}
    for hook in hooks:
        assert parse_qs(urlsplit(hook.url).query)["delivery"][0].isdigit()

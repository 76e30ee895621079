"""Twilio webhooks in the panel app, served over real HTTP and called by the fake Twilio the way
Twilio calls them: signed status callbacks (exactly once, forward only), forged requests refused,
SMS STOP/START, and the alert call's TwiML."""

from __future__ import annotations

import json
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator
from werkzeug.serving import BaseWSGIServer, make_server

from broadcasting import store
from broadcasting.errors import PermanentProviderError
from broadcasting.twilio import TwilioSms, TwilioVoice
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.models import Action, AuditEvent, Delivery, Participant, ProviderEvent
from burgernet.settings import Settings
from composition.context import Context
from recordings.catalogue import prompt_text
from recordings.messages import recorded_message_path
from testbed.fake_twilio import CallOutcome, FakeTwilio
from testbed.ports import port_block
from tests.panel.conftest import World, wav_bytes

PHONE = "+31612345678"  # the world's participant
TRANSFER_URI = "sip:08000011@pbx.burgernet.example:5060"


@pytest.fixture
def panel_port() -> int:
    return port_block()


@pytest.fixture
def bn_settings(bn_settings: Settings, fake_twilio: FakeTwilio, panel_port: int) -> Settings:
    twilio = fake_twilio.settings(bn_settings.twilio, f"http://127.0.0.1:{panel_port}")
    return bn_settings.model_copy(
        update={"twilio": twilio.model_copy(update={"transfer_sip_uri": TRANSFER_URI})}
    )


@pytest.fixture
def base(app: Flask, panel_port: int) -> Iterator[str]:
    """The app on the callback base URL; the fake's webhooks reach it over HTTP."""
    server: BaseWSGIServer = make_server("127.0.0.1", panel_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{panel_port}"
    server.shutdown()
    thread.join(5)


def delivery(
    context: Context,
    action_id: int,
    participant_id: int,
    *,
    channel: Channel = Channel.SMS,
    status: str = "sent",
    provider_ref: str | None = None,
) -> int:
    """A delivery as the worker leaves it: queued, sending (claimed) or sent with the SID."""
    with session_scope(context.sessions) as session:
        action = session.get(Action, action_id)
        assert action is not None
        broadcast = store.new_broadcast(session, action=action, kind="alert", message="")
        fan = store.add_deliveries(session, broadcast, {channel: [participant_id]})
        (delivery_id,) = fan.queued[channel]
        if status != "queued":
            store.claim(session, delivery_id)
        if status not in ("queued", "sending"):
            store.finish(session, delivery_id, status, provider_ref=provider_ref)
    return delivery_id


def state(context: Context, delivery_id: int) -> tuple[str, str | None]:
    with session_scope(context.sessions) as session:
        row = session.execute(
            select(Delivery.status, Delivery.last_error).where(Delivery.id == delivery_id)
        ).one()
        return row[0], row[1]


def event_count(context: Context) -> int:
    with session_scope(context.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(ProviderEvent)) or 0)


def audits(context: Context, verb: str) -> list[AuditEvent]:
    with session_scope(context.sessions) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.verb == verb)))


def sms_status(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": "ACx",
        "ApiVersion": "2010-04-01",
        "From": "+3197010000011",
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": PHONE,
        **extra,
    }


def twiml(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == "Response"
    return root


# --- status callbacks -----------------------------------------------------------------------------
def test_signed_status_callbacks_update_the_delivery_exactly_once_and_only_forward(
    base: str, bn_context: Context, world: World, fake_twilio: FakeTwilio
) -> None:
    delivery_id = delivery(bn_context, world.active_id, world.participant_id, provider_ref="SM1")
    url = f"{base}/twilio/sms/status?delivery={delivery_id}"

    first = fake_twilio.post_webhook(url, sms_status("SM1", "delivered"))
    again = fake_twilio.post_webhook(url, sms_status("SM1", "delivered"))  # Twilio's retry
    assert (first.status_code, again.status_code) == (200, 200)
    twiml(first.body)
    assert state(bn_context, delivery_id) == ("delivered", None)
    assert event_count(bn_context) == 1

    late = fake_twilio.post_webhook(url, sms_status("SM1", "sent"))  # out of order: too late
    assert late.status_code == 200
    assert state(bn_context, delivery_id) == ("delivered", None)

    for interim in ("queued", "sending", "accepted"):
        assert fake_twilio.post_webhook(url, sms_status("SM1", interim)).status_code == 200
    assert state(bn_context, delivery_id) == ("delivered", None)


def test_undelivered_records_twilios_error(
    base: str, bn_context: Context, world: World, fake_twilio: FakeTwilio
) -> None:
    delivery_id = delivery(bn_context, world.active_id, world.participant_id, provider_ref="SM2")
    url = f"{base}/twilio/sms/status?delivery={delivery_id}"
    hook = fake_twilio.post_webhook(url, sms_status("SM2", "undelivered", ErrorCode="30003"))
    assert hook.status_code == 200
    assert state(bn_context, delivery_id) == ("undelivered", "Twilio error 30003: unreachable handset")


def test_forged_or_unsigned_callbacks_are_refused_and_change_nothing(
    base: str, bn_context: Context, world: World, fake_twilio: FakeTwilio
) -> None:
    delivery_id = delivery(bn_context, world.active_id, world.participant_id, provider_ref="SM3")
    other_id = delivery(bn_context, world.active_id, world.participant_id, provider_ref="SM4")
    url = f"{base}/twilio/sms/status?delivery={delivery_id}"
    params = sms_status("SM3", "failed")
    forged = {
        "unsigned": "",
        "wrong token": RequestValidator("not-our-auth-token").compute_signature(url, params),
        "signed for another URL": fake_twilio.sign(f"{base}/twilio/sms/status?delivery={other_id}", params),
        "signed other params": fake_twilio.sign(url, sms_status("SM3", "delivered")),
        "garbage": "c2lnbmF0dXJl",
    }
    for why, signature in forged.items():
        hook = fake_twilio.post_webhook(url, params, signature=signature)
        assert hook.status_code == 403, why
        body = json.loads(hook.body)
        assert body["status"] == 403 and "signature" in body["message"].lower(), why
        assert body["error_id"] == "webhook.signature_invalid" and body["request_id"], why
    inbound = fake_twilio.post_webhook(
        f"{base}/twilio/sms/inbound", {"MessageSid": "SM9", "From": PHONE, "Body": "STOP"}, signature=""
    )
    assert inbound.status_code == 403
    alert = requests.get(f"{base}/twilio/voice/alert?delivery={delivery_id}", timeout=10)
    assert alert.status_code == 403

    assert state(bn_context, delivery_id) == ("sent", None)
    assert event_count(bn_context) == 0
    with session_scope(bn_context.sessions) as session:
        participant = session.get(Participant, world.participant_id)
        assert participant is not None and participant.channel_sms


def test_a_callback_without_sid_or_with_an_unknown_status_is_a_clear_400(
    base: str, bn_context: Context, world: World, fake_twilio: FakeTwilio
) -> None:
    delivery_id = delivery(bn_context, world.active_id, world.participant_id, provider_ref="SM5")
    url = f"{base}/twilio/sms/status?delivery={delivery_id}"
    missing = fake_twilio.post_webhook(url, {"MessageStatus": "delivered"})
    odd = fake_twilio.post_webhook(url, sms_status("SM5", "teleported"))
    assert (missing.status_code, odd.status_code) == (400, 400)
    assert "SID" in missing.body
    assert state(bn_context, delivery_id) == ("sent", None)
    assert event_count(bn_context) == 0


def test_a_callback_before_the_worker_stored_the_sid_is_kept_and_the_worker_finishes(
    base: str, bn_context: Context, world: World, fake_twilio: FakeTwilio
) -> None:
    delivery_id = delivery(bn_context, world.active_id, world.participant_id, status="sending")
    url = f"{base}/twilio/sms/status?delivery={delivery_id}"
    hook = fake_twilio.post_webhook(url, sms_status("SM6", "delivered"))
    assert hook.status_code == 200
    assert state(bn_context, delivery_id) == ("delivered", None)
    # Then the worker records Twilio's answer to its POST: the attempt counts as finished
    # (progress, alerted-by) and the further status from the callback stays.
    with session_scope(bn_context.sessions) as session:
        assert store.finish(session, delivery_id, "sent", provider_ref="SM6")
        assert not store.finish(session, delivery_id, "sent", provider_ref="SM-other")
    assert state(bn_context, delivery_id) == ("delivered", None)
    # A callback naming another delivery that is not waiting for a SID changes nothing.
    done_id = delivery(bn_context, world.active_id, world.participant_id, status="sent", provider_ref="SM8")
    other = fake_twilio.post_webhook(
        f"{base}/twilio/sms/status?delivery={done_id}", sms_status("SM9", "delivered")
    )
    assert other.status_code == 200
    assert state(bn_context, done_id) == ("sent", None)


# --- inbound SMS ----------------------------------------------------------------------------------
@pytest.mark.parametrize("word", ["STOP", "stop", " Afmelden ", "STOPALL", "Quit.", "unsubscribe"])
def test_stop_ends_sms_for_that_number_and_cancels_its_queued_sms(
    word: str, base: str, bn_context: Context, world: World, fake_twilio: FakeTwilio
) -> None:
    queued_sms = delivery(bn_context, world.active_id, world.participant_id, status="queued")
    queued_voice = delivery(
        bn_context, world.active_id, world.participant_id, channel=Channel.VOICE, status="queued"
    )

    hook = fake_twilio.send_inbound(f"{base}/twilio/sms/inbound", from_=PHONE, body=word)
    assert hook.status_code == 200
    assert list(twiml(hook.body)) == []  # empty <Response/>: Twilio sends the STOP confirmation

    with session_scope(bn_context.sessions) as session:
        participant = session.get(Participant, world.participant_id)
        assert participant is not None
        assert (participant.channel_sms, participant.channel_voice, participant.opted_out) == (
            False,
            True,
            False,
        )
    assert state(bn_context, queued_sms)[0] == "cancelled"
    assert state(bn_context, queued_voice)[0] == "queued"
    (audit,) = audits(bn_context, "sms-stop")
    assert (audit.source, audit.actor, audit.entity_id) == (
        "twilio",
        f"participant:{world.participant_id}",
        str(world.participant_id),
    )

    # The same inbound message again (Twilio retried): acknowledged, nothing more happens.
    again = fake_twilio.post_webhook(hook.url, hook.params)
    assert again.status_code == 200
    assert len(audits(bn_context, "sms-stop")) == 1


def test_start_turns_sms_back_on_and_other_texts_change_nothing(
    base: str, bn_context: Context, world: World, fake_twilio: FakeTwilio
) -> None:
    url = f"{base}/twilio/sms/inbound"
    assert fake_twilio.send_inbound(url, from_=PHONE, body="STOP").status_code == 200
    # Twilio itself now refuses SMS to the number, exactly like our own records say.
    with pytest.raises(PermanentProviderError) as refused:
        TwilioSms(bn_context.settings).send(to=PHONE, body="x", delivery_id=1, attempt=1)
    assert refused.value.code == "21610"

    assert fake_twilio.send_inbound(url, from_=PHONE, body="Wat is dit?").status_code == 200
    assert fake_twilio.send_inbound(url, from_="+31687654321", body="STOP").status_code == 200  # unknown

    assert fake_twilio.send_inbound(url, from_=PHONE, body="START").status_code == 200
    with session_scope(bn_context.sessions) as session:
        participant = session.get(Participant, world.participant_id)
        assert participant is not None and participant.channel_sms
    assert len(audits(bn_context, "sms-stop")) == 1
    (started,) = audits(bn_context, "sms-start")
    assert started.source == "twilio"
    assert TwilioSms(bn_context.settings).send(to=PHONE, body="x", delivery_id=1, attempt=1).startswith("SM")


# --- the alert call -------------------------------------------------------------------------------
def alert(base: str, fake: FakeTwilio, delivery_id: int, query: str = "", **form: str) -> ET.Element:
    url = f"{base}/twilio/voice/alert?delivery={delivery_id}{query}"
    params = {"CallSid": "CA1", "CallStatus": "in-progress", "To": PHONE, **form}
    hook = fake.post_webhook(url, params)
    assert hook.status_code == 200, hook.body
    return twiml(hook.body)


def test_alert_twiml_plays_the_message_then_offers_the_menu_twice(
    base: str, bn_context: Context, world: World, fake_twilio: FakeTwilio
) -> None:
    delivery_id = delivery(bn_context, world.active_id, world.participant_id, channel=Channel.VOICE)
    root = alert(base, fake_twilio, delivery_id)
    gather = root.find("Gather")
    assert gather is not None
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == f"{base}/twilio/voice/alert?delivery={delivery_id}"
    said = [say.text or "" for say in gather.findall("Say")]
    assert any("Vermist meisje" in text or "0800-0011" in text for text in said[:-1])
    assert said[-1] == prompt_text("nl", "alert-menu")
    assert {say.get("language") for say in gather.findall("Say")} == {"nl-NL"}
    redirect = root.find("Redirect")
    assert redirect is not None and redirect.text is not None and redirect.text.endswith("&play=2")

    last = alert(base, fake_twilio, delivery_id, "&play=2")
    assert last.find("Redirect") is None and last.find("Hangup") is not None
    assert [say.text for say in last.findall("Say")] == [prompt_text("nl", "goodbye")]

    # Twilio may fetch the first TwiML with GET as well (signed over the URL alone).
    url = f"{base}/twilio/voice/alert?delivery={delivery_id}"
    got = requests.get(url, headers={"X-Twilio-Signature": fake_twilio.sign(url, {})}, timeout=10)
    assert got.status_code == 200 and twiml(got.text).find("Gather") is not None


def test_keys_two_one_and_nine(base: str, bn_context: Context, world: World, fake_twilio: FakeTwilio) -> None:
    delivery_id = delivery(bn_context, world.active_id, world.participant_id, channel=Channel.VOICE)
    queued_sms = delivery(bn_context, world.active_id, world.participant_id, status="queued")

    assert alert(base, fake_twilio, delivery_id, Digits="2").find("Gather") is not None
    assert alert(base, fake_twilio, delivery_id, Digits="7").find("Gather") is not None  # wrong key: again

    transfer = alert(base, fake_twilio, delivery_id, Digits="1")
    dial = transfer.find("Dial")
    assert dial is not None and dial.get("callerId") == PHONE
    sip = dial.find("Sip")
    assert sip is not None and sip.text == TRANSFER_URI
    assert (transfer.find("Say") is not None) and transfer.find("Hangup") is not None

    out = alert(base, fake_twilio, delivery_id, Digits="9")
    assert [say.text for say in out.findall("Say")] == [prompt_text("nl", "optout-confirmed")]
    assert out.find("Hangup") is not None
    with session_scope(bn_context.sessions) as session:
        participant = session.get(Participant, world.participant_id)
        assert participant is not None and participant.opted_out
    assert state(bn_context, queued_sms)[0] == "cancelled"
    (opt_out,) = audits(bn_context, "opt-out")
    assert opt_out.source == "twilio"


def test_a_recorded_message_is_played_from_a_tokened_url(
    base: str, bn_context: Context, world: World, fake_twilio: FakeTwilio
) -> None:
    recording = recorded_message_path(world.active_id, None, settings=bn_context.settings)
    recording.parent.mkdir(parents=True, exist_ok=True)
    recording.write_bytes(wav_bytes())
    delivery_id = delivery(bn_context, world.active_id, world.participant_id, channel=Channel.VOICE)

    gather = alert(base, fake_twilio, delivery_id).find("Gather")
    assert gather is not None
    play = gather.find("Play")
    assert play is not None and play.text
    audio = requests.get(play.text, timeout=10)  # fetched by Twilio's media fetcher, unsigned
    assert audio.status_code == 200 and audio.content == wav_bytes()
    assert audio.headers["Content-Type"].startswith("audio/")
    assert requests.get(play.text.replace("token=", "token=0"), timeout=10).status_code == 404

    missing = fake_twilio.post_webhook(f"{base}/twilio/voice/alert?delivery=999999", {"CallSid": "CA9"})
    assert missing.status_code == 404


# --- a Twilio alert call end to end ---------------------------------------------------------------
def place_call(context: Context, world: World, fake: FakeTwilio, outcome: CallOutcome) -> int:
    fake.call_outcome(PHONE, outcome)
    delivery_id = delivery(
        context, world.active_id, world.participant_id, channel=Channel.VOICE, status="sending"
    )
    sid = TwilioVoice(context.settings).call(to=PHONE, delivery_id=delivery_id, attempt=1)
    with session_scope(context.sessions) as session:  # what the worker does with the answer
        store.finish(session, delivery_id, "sent", provider_ref=sid)
    return delivery_id


@pytest.mark.parametrize(
    ("outcome", "final"),
    [
        (CallOutcome("completed"), "answered"),
        (CallOutcome("busy"), "busy"),
        (CallOutcome("no-answer"), "no_answer"),
    ],
)
def test_call_outcomes_arrive_by_callback(
    outcome: CallOutcome, final: str, base: str, bn_context: Context, world: World, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.duplicate_callbacks = True
    delivery_id = place_call(bn_context, world, fake_twilio, outcome)
    fake_twilio.wait_for(
        lambda: fake_twilio.calls[0].status not in ("queued", "in-progress"), description="call end"
    )
    deadline = time.monotonic() + 10
    while state(bn_context, delivery_id)[0] != final and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state(bn_context, delivery_id)[0] == final
    time.sleep(0.3)  # the repeated callbacks arrive too, and change nothing
    assert all(hook.status_code == 200 for hook in fake_twilio.webhooks)


def test_pressing_nine_on_a_twilio_alert_call_opts_out(
    base: str, bn_context: Context, world: World, fake_twilio: FakeTwilio
) -> None:
    delivery_id = place_call(bn_context, world, fake_twilio, CallOutcome("completed", digits="9"))
    fake_twilio.wait_for(lambda: fake_twilio.calls[0].status == "completed", description="call end")
    (call,) = fake_twilio.calls
    assert len(call.twiml) == 2 and "optout" not in call.twiml[0]
    assert prompt_text("nl", "optout-confirmed") in call.twiml[1]
    with session_scope(bn_context.sessions) as session:
        participant = session.get(Participant, world.participant_id)
        assert participant is not None and participant.opted_out
    deadline = time.monotonic() + 10
    while state(bn_context, delivery_id)[0] != "answered" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state(bn_context, delivery_id)[0] == "answered"

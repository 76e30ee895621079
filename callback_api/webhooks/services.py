"""What Twilio tells us, applied exactly once: delivery statuses, SMS STOP/START, alert-call TwiML.

Twilio retries webhooks and may send one twice or out of order. Every event that changes
something is first recorded in ``provider_events`` (unique per provider and key) in the same
transaction as the change, so a repeat — even one racing the first on another panel process —
is acknowledged and changes nothing. Statuses only move forward
(:func:`broadcasting.store.apply_provider_status`).

STOP by SMS ends *SMS* for that number (``channel_sms`` off, queued SMS deliveries cancelled),
rather than opting the participant out of Burgernet altogether: the keyword is a carrier-level
instruction about text messages (Twilio itself blocks further SMS to the number after it), and
a participant who still takes alert calls or e-mail keeps them. Opting out of everything stays
available through key 9 on an alert call, the IVR and the web link. START (or UNSTOP) turns SMS
back on; it does not undo a full opt-out made elsewhere.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from twilio.twiml.voice_response import Gather, VoiceResponse

from broadcasting import store
from broadcasting.messages import compose
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.models import Delivery, Participant, ProviderEvent
from burgernet.participants import set_opted_out
from burgernet.repositories import record_audit
from burgernet.settings import Settings
from recordings.catalogue import prompt_text
from recordings.messages import recorded_message_path

log = logging.getLogger(__name__)

PROVIDER = "twilio"
SOURCE = "twilio"

# Message statuses on the way (the delivery stays "sent"/"sending") and the ones that count.
SMS_INTERIM = frozenset({"accepted", "scheduled", "queued", "sending", "canceled", "receiving", "received"})
SMS_STATUSES = {"sent": "sent", "delivered": "delivered", "undelivered": "undelivered", "failed": "failed"}
# Call statuses: "in-progress" is the "answered" event, "completed" means it was answered.
VOICE_INTERIM = frozenset({"queued", "initiated", "ringing"})
VOICE_STATUSES = {
    "in-progress": "answered",
    "answered": "answered",
    "completed": "answered",
    "busy": "busy",
    "no-answer": "no_answer",
    "failed": "failed",
    "canceled": "failed",
}
# The most common reasons Twilio gives for a message that did not arrive.
SMS_ERRORS = {
    "30003": "unreachable handset",
    "30004": "message blocked",
    "30005": "unknown handset",
    "30006": "landline or unreachable carrier",
    "30007": "filtered by the carrier",
    "30008": "unknown error",
    "21610": "recipient unsubscribed (STOP)",
}

# Keywords Twilio's opt-out handling knows, plus the Dutch ones participants use.
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "AFMELDEN"})
START_KEYWORDS = frozenset({"START", "UNSTOP", "AANMELDEN"})


class HookResult(enum.Enum):
    APPLIED = "applied"  # the delivery moved
    UNCHANGED = "unchanged"  # recorded, but the delivery was already further (or unknown)
    REPEAT = "repeat"  # this very event was handled before
    IGNORED = "ignored"  # an in-between status that changes nothing


class TwilioInputError(ValueError):
    """The webhook lacks what Twilio always sends; nothing was changed."""


class _AlreadyHandled(Exception):
    """The event key is in ``provider_events``: the whole transaction is rolled back."""


def _record_event(session: Session, key: str) -> None:
    """Claim ``key`` as the first write of this transaction, or raise ``_AlreadyHandled``.

    No SAVEPOINT: on SQLite (pysqlite) releasing one can commit on its own. A duplicate key
    fails the flush, and the caller's ``session_scope`` rolls everything back.
    """
    session.add(ProviderEvent(provider=PROVIDER, event_key=key[:160], received_at=datetime.now(UTC)))
    try:
        session.flush()
    except IntegrityError as exc:
        raise _AlreadyHandled(key) from exc


def apply_status(
    sessions: sessionmaker[Session],
    *,
    provider_ref: str,
    twilio_status: str,
    voice: bool,
    delivery_id: int | None = None,
    error_code: str | None = None,
) -> HookResult:
    """A message or call status callback, applied once to the delivery known by ``provider_ref``."""
    if not provider_ref or not twilio_status:
        raise TwilioInputError("a status callback needs the SID and the status")
    twilio_status = twilio_status.strip().lower()
    mapping, interim = (VOICE_STATUSES, VOICE_INTERIM) if voice else (SMS_STATUSES, SMS_INTERIM)
    status = mapping.get(twilio_status)
    if status is None:
        if twilio_status in interim:
            return HookResult.IGNORED
        raise TwilioInputError(f"unknown Twilio status {twilio_status!r}")
    error = None
    if error_code:
        reason = SMS_ERRORS.get(error_code)
        error = f"Twilio error {error_code}" + (f": {reason}" if reason else "")
    try:
        with session_scope(sessions) as session:
            _record_event(session, f"{provider_ref}:{twilio_status}")
            # Before the worker stored the SID, the delivery named in the (signed) callback URL
            # takes it: Twilio may answer faster than our own POST returns.
            changed = store.apply_provider_status(
                session, provider_ref=provider_ref, status=status, error=error, delivery_id=delivery_id
            )
            known = changed or session.scalar(
                select(Delivery.id).where(Delivery.provider_ref == provider_ref)
            )
    except _AlreadyHandled:
        return HookResult.REPEAT
    if not known:
        log.warning("Twilio status %s for %s: no delivery has that SID", twilio_status, provider_ref)
    return HookResult.APPLIED if changed else HookResult.UNCHANGED


# --- inbound SMS ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InboundResult:
    keyword: str | None  # "stop", "start" or None for any other text
    participant_id: int | None
    changed: bool
    cancelled: int = 0
    repeat: bool = False


def keyword_of(body: str) -> str | None:
    word = body.strip().strip(".!").strip().upper()
    if word in STOP_KEYWORDS:
        return "stop"
    if word in START_KEYWORDS:
        return "start"
    return None


def inbound_sms(
    sessions: sessionmaker[Session], *, message_sid: str, from_number: str, body: str
) -> InboundResult:
    """STOP / START from a participant's phone; other texts are only logged."""
    if not message_sid or not from_number:
        raise TwilioInputError("an inbound message needs MessageSid and From")
    keyword = keyword_of(body)
    if keyword is None:
        log.info("inbound SMS %s from %s is no keyword; not acted on", message_sid, from_number[:6] + "…")
        return InboundResult(None, None, False)
    try:
        return _apply_keyword(sessions, keyword, message_sid=message_sid, from_number=from_number, body=body)
    except _AlreadyHandled:
        return InboundResult(keyword, None, False, repeat=True)


def _apply_keyword(
    sessions: sessionmaker[Session], keyword: str, *, message_sid: str, from_number: str, body: str
) -> InboundResult:
    with session_scope(sessions) as session:
        _record_event(session, f"inbound:{message_sid}")
        participant = session.scalar(
            select(Participant).where(Participant.phone_e164 == from_number).with_for_update()
        )
        if participant is None:
            return InboundResult(keyword, None, False)
        wanted = keyword == "start"
        cancelled = 0 if wanted else store.cancel_for_participant(session, participant.id, Channel.SMS)
        changed = participant.channel_sms != wanted
        participant.channel_sms = wanted
        if changed or cancelled:
            record_audit(
                session,
                actor=f"participant:{participant.id}",
                verb="sms-start" if wanted else "sms-stop",
                entity="participant",
                entity_id=participant.id,
                detail={
                    "keyword": body.strip().upper()[:20],
                    "message_sid": message_sid,
                    "cancelled": cancelled,
                },
                source=SOURCE,
            )
        return InboundResult(keyword, participant.id, changed, cancelled)


# --- the alert call -----------------------------------------------------------------------------------
SAY_LANGUAGE = {"nl": "nl-NL", "en": "en-GB"}
GATHER_SECONDS = 6  # as long as the Asterisk alert menu waits (WaitExten(6))
PLAYS = 2  # no key: the message once more, then goodbye (as dialplans/alert.conf)
TRANSFER_FAILED = {
    "nl": "Het doorverbinden is niet gelukt. Belt u alstublieft zelf het gratis nummer {number}.",
    "en": "We could not connect you. Please call the free number {number} yourself.",
}


class UnknownDelivery(LookupError):
    """The alert URL names a delivery that does not exist (any more)."""


def audio_token(secret: str, action_id: int, language: str) -> str:
    """Unguessable part of a message-audio URL: Twilio fetches <Play> media without our login."""
    return hmac.new(
        secret.encode(), f"twilio-audio:{action_id}:{language}".encode(), hashlib.sha256
    ).hexdigest()


def audio_file(settings: Settings, action_id: int, language: str, token: str) -> Path | None:
    """The action's recorded message for Twilio to play, if the token is right and it exists."""
    if language not in SAY_LANGUAGE or not hmac.compare_digest(
        token, audio_token(settings.web.secret_key, action_id, language)
    ):
        return None
    for candidate in (
        recorded_message_path(action_id, language, settings=settings),
        recorded_message_path(action_id, None, settings=settings),
    ):
        if candidate.is_file():
            return candidate
    return None


def _transfer_uri(settings: Settings) -> str:
    if settings.twilio.transfer_sip_uri:
        return settings.twilio.transfer_sip_uri
    a = settings.asterisk
    return f"sip:{a.free_number}@{a.sip_bind}:{a.sip_port}"


def alert_twiml(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    delivery_id: int,
    digits: str | None,
    play: int,
    callback_base: str,
) -> str:
    """The TwiML for an alert call: the message and menu, or what a key press asked for.

    Keys as on the Asterisk alert call: 1 = talk to the control room now (Twilio dials the free
    number on our Asterisk over SIP, showing the participant's number so routing finds the
    action that alerted them), 2 = hear it again, 9 = no more alerts.
    """
    with session_scope(sessions) as session:
        job = store.load_job(session, delivery_id)
        if job is None:
            raise UnknownDelivery(delivery_id)
        message = compose(session, job, settings)
    language = job.language if job.language in SAY_LANGUAGE else "nl"
    say_language = SAY_LANGUAGE[language]
    alert_url = f"{callback_base}/twilio/voice/alert?delivery={delivery_id}"
    response = VoiceResponse()

    if digits == "1":
        response.say(prompt_text(language, "connecting"), language=say_language)
        dial = response.dial(caller_id=job.phone_e164, timeout=60)
        dial.sip(_transfer_uri(settings))
        # Only reached when the transfer did not connect: never leave the caller in silence.
        number = settings.asterisk.free_number
        spoken = f"{number[:4]}-{number[4:]}" if number.startswith("0800") else number
        response.say(TRANSFER_FAILED[language].format(number=spoken), language=say_language)
        response.hangup()
        return str(response)
    if digits == "9":
        set_opted_out(sessions, participant_id=job.participant_id, source=SOURCE)
        with session_scope(sessions) as session:
            for channel in Channel:
                store.cancel_for_participant(session, job.participant_id, channel)
        response.say(prompt_text(language, "optout-confirmed"), language=say_language)
        response.hangup()
        return str(response)

    if digits is not None:
        play = 1  # 2 (or any other key): from the start
    gather = Gather(num_digits=1, action=alert_url, method="POST", timeout=GATHER_SECONDS)
    recording = None
    if job.kind == "alert":  # an update or result says something new: never the alert's recording
        recording = audio_file(
            settings, job.action_id, language, audio_token(settings.web.secret_key, job.action_id, language)
        )
    if recording is not None:
        token = audio_token(settings.web.secret_key, job.action_id, language)
        gather.play(f"{callback_base}/twilio/voice/audio/{job.action_id}/{language}.wav?token={token}")
    else:
        gather.say(message.body, language=say_language)
    gather.say(prompt_text(language, "alert-menu"), language=say_language)
    response.append(gather)
    if play < PLAYS:
        response.redirect(f"{alert_url}&play={play + 1}", method="POST")
    else:
        response.say(prompt_text(language, "goodbye"), language=say_language)
        response.hangup()
    return str(response)

"""The alert call's TwiML: the message and the menu, or what a key press asked for.

Keys as on the Asterisk alert call: 1 = talk to the control room now (Twilio dials the free
number on our Asterisk over SIP, showing the participant's number so routing finds the action
that alerted them), 2 = hear it again, 9 = no more alerts. A recorded alert message is played
from :data:`paths.VOICE_AUDIO`, which Twilio fetches unsigned: an HMAC token guards it.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from twilio.twiml.voice_response import Gather, VoiceResponse

from broadcasting import store
from broadcasting.messages import compose
from broadcasting.twilio import paths
from broadcasting.twilio.events import SOURCE
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.participants import set_opted_out
from burgernet.settings import Settings
from recordings.catalogue import prompt_text
from recordings.messages import recorded_message_path

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
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
    """The TwiML for an alert call: the message and menu, or what a key press asked for."""
    with session_scope(sessions) as session:
        job = store.load_job(session, delivery_id)
        if job is None:
            raise UnknownDelivery(delivery_id)
        message = compose(session, job, settings)
    language = job.language if job.language in SAY_LANGUAGE else "nl"
    say_language = SAY_LANGUAGE[language]
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
        if job.participant_id is not None:  # a caller told the closing word is no participant
            set_opted_out(sessions, participant_id=job.participant_id, source=SOURCE)
            with session_scope(sessions) as session:
                for channel in Channel:
                    store.cancel_for_participant(session, job.participant_id, channel)
        response.say(prompt_text(language, "optout-confirmed"), language=say_language)
        response.hangup()
        return str(response)

    if digits is not None:
        play = 1  # 2 (or any other key): from the start
    gather = Gather(
        num_digits=1,
        action=paths.voice_alert_url(callback_base, delivery_id),
        method="POST",
        timeout=GATHER_SECONDS,
    )
    recording = None
    if job.kind == "alert":  # an update or result says something new: never the alert's recording
        recording = audio_file(
            settings, job.action_id, language, audio_token(settings.web.secret_key, job.action_id, language)
        )
    if recording is not None:
        token = audio_token(settings.web.secret_key, job.action_id, language)
        gather.play(paths.voice_audio_url(callback_base, job.action_id, language, token))
    else:
        gather.say(message.body, language=say_language)
    gather.say(prompt_text(language, "alert-menu"), language=say_language)
    response.append(gather)
    if play < PLAYS:
        response.redirect(paths.voice_alert_url(callback_base, delivery_id, play=play + 1), method="POST")
    else:
        response.say(prompt_text(language, "goodbye"), language=say_language)
        response.hangup()
    return str(response)

"""What callback_api's Twilio webhook views call: a request's parameters in, our answer out.

Twilio's field names (``MessageSid``, ``CallStatus``, ``Digits``…) and its request signature
are known here only; the views pass the request's parameters through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from broadcasting.twilio import inbound, status, twiml
from broadcasting.twilio.client import callback_base
from broadcasting.twilio.inbound import InboundResult
from broadcasting.twilio.status import HookResult
from burgernet.services import Services
from burgernet.settings import Settings


class TwilioWebhooks:
    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings

    @classmethod
    def for_services(cls, services: Services) -> TwilioWebhooks:
        return cls(services.sessions, services.settings)

    @property
    def callback_base(self) -> str:
        return callback_base(self.settings)

    def signature_valid(self, path: str, query: str, params: Mapping[str, str], signature: str) -> bool:
        """Whether ``X-Twilio-Signature`` matches the public URL Twilio used (callback base + path
        + query string) and the posted ``params``, computed with our auth token."""
        if not signature:
            return False
        url = self.callback_base + path + (f"?{query}" if query else "")
        return bool(RequestValidator(self.settings.twilio.auth_token).validate(url, params, signature))

    def status(self, form: Mapping[str, str], *, voice: bool, delivery_id: int | None) -> HookResult:
        """A message (``voice=False``) or call status callback; raises ``TwilioInputError``."""
        sid_field, status_field = ("CallSid", "CallStatus") if voice else ("MessageSid", "MessageStatus")
        return status.apply_status(
            self.sessions,
            provider_ref=form.get(sid_field, ""),
            twilio_status=form.get(status_field, ""),
            voice=voice,
            delivery_id=delivery_id,
            error_code=form.get("ErrorCode") or None,
        )

    def inbound_sms(self, form: Mapping[str, str]) -> InboundResult:
        """A text from a participant; raises ``TwilioInputError``. Twilio's own opt-out handling
        sends the carrier-mandated confirmation, so there is never a reply."""
        return inbound.inbound_sms(
            self.sessions,
            message_sid=form.get("MessageSid", ""),
            from_number=form.get("From", ""),
            body=form.get("Body", ""),
        )

    def alert(self, delivery_id: int, params: Mapping[str, str], play: str) -> str:
        """The alert call's TwiML for the key in ``params`` (if any) and the ``play`` count
        (the :data:`paths.PLAY_ARG` query argument); raises ``UnknownDelivery``."""
        return twiml.alert_twiml(
            self.sessions,
            self.settings,
            delivery_id=delivery_id,
            digits=params.get("Digits") or None,
            play=int(play) if play.isdigit() else 1,
            callback_base=self.callback_base,
        )

    def audio_file(self, action_id: int, language: str, token: str) -> Path | None:
        return twiml.audio_file(self.settings, action_id, language, token)

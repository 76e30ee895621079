"""Alert calls through Twilio Programmable Voice (``broadcast.voice_provider = "twilio"``).

Twilio places the call, then fetches what to say from :data:`paths.VOICE_ALERT`
(TwiML from :mod:`broadcasting.twilio.twiml`: the message, key 1 to the free number over SIP,
2 to hear it again, 9 to opt out) and reports the outcome to :data:`paths.VOICE_STATUS`
(answered, then completed / busy / no-answer / failed).
"""

from __future__ import annotations

import logging

import requests
from twilio.base.exceptions import TwilioException

from broadcasting.twilio import paths
from broadcasting.twilio.client import callback_base, classify, make_client
from burgernet.settings import Settings

log = logging.getLogger(__name__)


class TwilioVoice:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client, self.http = make_client(settings)
        # Twilio only lets a call show a Twilio number or a verified caller ID: the fixed,
        # recognisable alert caller ID (PRODUCT.md) is therefore our Twilio number.
        self.from_number = settings.twilio.from_number
        self.callback_base = callback_base(settings)

    def alert_url(self, delivery_id: int) -> str:
        return paths.voice_alert_url(self.callback_base, delivery_id)

    def status_callback_url(self, delivery_id: int) -> str:
        return paths.voice_status_url(self.callback_base, delivery_id)

    def call(self, *, to: str, delivery_id: int, attempt: int) -> str:
        """Ask Twilio to place the alert call; the Call SID. Raises a ProviderError subclass.

        Not looked up again after a lost answer (unlike SMS): Twilio's call list cannot tell
        one alert call from another to the same number, and a rare second call is better than
        a participant never called.
        """
        try:
            call = self.client.calls.create(
                to=to,
                from_=self.from_number,
                url=self.alert_url(delivery_id),
                method="POST",
                status_callback=self.status_callback_url(delivery_id),
                status_callback_event=["answered", "completed"],
                status_callback_method="POST",
                timeout=self.settings.broadcast.voice_ring_seconds,
            )
        except (TwilioException, requests.RequestException) as exc:
            raise classify(exc, self.http, f"alert call for delivery {delivery_id}") from exc
        log.debug("delivery %s attempt %s: Twilio call %s", delivery_id, attempt, call.sid)
        return str(call.sid)

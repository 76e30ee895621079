"""Where Twilio calls us: the webhook paths of callback_api, as one set of constants.

The same constants register the Flask routes (:mod:`callback_api.webhooks.views`) and build
every URL we hand to Twilio (status callbacks, the alert call's TwiML, gather and audio URLs),
so the two cannot drift apart. The URLs are written into Twilio number configurations and
consoles: they never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from werkzeug.routing import Map, Rule

PREFIX: Final = "/twilio/"
# Query arguments of the URLs we build (Twilio hands them back to us unchanged).
DELIVERY_ARG: Final = "delivery"
PLAY_ARG: Final = "play"
TOKEN_ARG: Final = "token"


@dataclass(frozen=True)
class WebhookPath:
    rule: str  # a Flask (werkzeug) URL rule
    methods: tuple[str, ...]
    # Twilio signs its webhooks, but fetches <Play> media unsigned, like a browser would.
    signed: bool = True

    def url(self, base: str, **values: str | int) -> str:
        """``base`` + this path, variables filled in and the other values as query string, built
        by the same router that matches the route (so a built URL always finds its route)."""
        return base + _ROUTER.build(self.rule, values, method=self.methods[0])


SMS_STATUS: Final = WebhookPath("/twilio/sms/status", ("POST",))
SMS_INBOUND: Final = WebhookPath("/twilio/sms/inbound", ("POST",))
VOICE_STATUS: Final = WebhookPath("/twilio/voice/status", ("POST",))
# The alert call's TwiML: fetched when the call is answered, posted to again by <Gather> (the key
# pressed) and by <Redirect> (the message once more).
VOICE_ALERT: Final = WebhookPath("/twilio/voice/alert", ("GET", "POST"))
VOICE_AUDIO: Final = WebhookPath("/twilio/voice/audio/<int:action_id>/<language>.wav", ("GET",), signed=False)

ALL: Final = (SMS_STATUS, SMS_INBOUND, VOICE_STATUS, VOICE_ALERT, VOICE_AUDIO)

_ROUTER = Map([Rule(path.rule, endpoint=path.rule, methods=path.methods) for path in ALL]).bind(
    "callback.invalid"
)


def sms_status_url(base: str, delivery_id: int) -> str:
    return SMS_STATUS.url(base, **{DELIVERY_ARG: delivery_id})


def voice_status_url(base: str, delivery_id: int) -> str:
    return VOICE_STATUS.url(base, **{DELIVERY_ARG: delivery_id})


def voice_alert_url(base: str, delivery_id: int, play: int | None = None) -> str:
    query: dict[str, str | int] = {DELIVERY_ARG: delivery_id}
    if play is not None:
        query[PLAY_ARG] = play
    return VOICE_ALERT.url(base, **query)


def voice_audio_url(base: str, action_id: int, language: str, token: str) -> str:
    return VOICE_AUDIO.url(base, action_id=action_id, language=language, **{TOKEN_ARG: token})

"""Everything Twilio, in one place: the REST client, SMS and Voice providers, the webhook paths,
status callbacks, SMS STOP/START and the alert call's TwiML.

This module is the package's public surface: the channel registry and callback_api's webhook
views import from here only.
"""

from broadcasting.twilio import paths
from broadcasting.twilio.client import callback_base, retry_after_seconds
from broadcasting.twilio.events import TwilioInputError
from broadcasting.twilio.inbound import InboundResult
from broadcasting.twilio.sms import TwilioSms
from broadcasting.twilio.status import HookResult
from broadcasting.twilio.twiml import EMPTY_TWIML, UnknownDelivery
from broadcasting.twilio.voice import TwilioVoice
from broadcasting.twilio.webhooks import TwilioWebhooks

__all__ = [
    "EMPTY_TWIML",
    "HookResult",
    "InboundResult",
    "TwilioInputError",
    "TwilioSms",
    "TwilioVoice",
    "TwilioWebhooks",
    "UnknownDelivery",
    "callback_base",
    "paths",
    "retry_after_seconds",
]

"""SMS through Twilio's Messages API with the official client (``twilio.rest.Client``).

Synchronous on purpose: the worker (:class:`broadcasting.channels.sms_twilio.TwilioSmsSender`)
calls it in a thread. Status callbacks go to :data:`paths.SMS_STATUS` ``?delivery=<id>``, where
:mod:`broadcasting.twilio.status` moves the delivery to delivered/undelivered/failed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import requests
from twilio.base.exceptions import TwilioException

from broadcasting.twilio import paths
from broadcasting.twilio.client import call_twilio, callback_base, classify, make_client
from burgernet.settings import Settings

log = logging.getLogger(__name__)

# How many of a number's newest messages ``find_sent`` looks through: a participant gets a
# handful of alerts a month, and the delivery in doubt is at most minutes old.
FIND_SENT_LIMIT = 200


class TwilioSms:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client, self.http = make_client(settings)
        self.from_number = settings.twilio.from_number
        self.callback_base = callback_base(settings)

    def status_callback_url(self, delivery_id: int) -> str:
        return paths.sms_status_url(self.callback_base, delivery_id)

    def send(self, *, to: str, body: str, delivery_id: int, attempt: int) -> str:
        """Hand one message to Twilio; the Message SID. Raises a ProviderError subclass."""
        started = datetime.now(UTC)
        try:
            message = self.client.messages.create(
                to=to,
                from_=self.from_number,
                body=body,
                status_callback=self.status_callback_url(delivery_id),
            )
        except (requests.ReadTimeout, requests.ConnectionError) as exc:
            # The POST may have reached Twilio before the answer was lost: look before the
            # worker tries again, so that one alert is not sent twice.
            error = classify(exc, self.http, f"SMS for delivery {delivery_id}")
            try:
                sid = self.find_sent(to=to, since=started - timedelta(seconds=5), body=body)
            except Exception:  # still unreachable: the retry decides later
                sid = None
            if sid is not None:
                log.warning("delivery %s: answer lost, but Twilio has it as %s", delivery_id, sid)
                return sid
            raise error from exc
        except TwilioException as exc:
            raise classify(exc, self.http, f"SMS for delivery {delivery_id}") from exc
        log.debug("delivery %s attempt %s: Twilio message %s", delivery_id, attempt, message.sid)
        return str(message.sid)

    def find_sent(self, *, to: str, since: datetime, body: str) -> str | None:
        """The SID of a message with this body sent to ``to`` from our number since ``since``.

        Used to settle a delivery a dead worker left "sending": if Twilio has it, it was sent
        and must not be sent again. Filtered by creation time rather than Twilio's
        ``DateSent`` because a message still waiting in Twilio's queue has no send date yet,
        and it too must count as sent.
        """
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        wanted = body.strip()

        def look() -> str | None:
            for message in self.client.messages.stream(
                to=to, from_=self.from_number, limit=FIND_SENT_LIMIT, page_size=50
            ):
                created = message.date_created or message.date_sent
                if created is not None and created.tzinfo is None:
                    created = created.replace(tzinfo=UTC)
                if created is not None and created < since:
                    continue
                if (message.body or "").strip() == wanted:
                    return str(message.sid)
            return None

        return call_twilio(self.http, f"looking up messages to {to}", look)

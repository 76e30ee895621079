"""SMS through Twilio: status callbacks later move ``sent`` to ``delivered`` / ``undelivered``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Protocol

import redis.asyncio as aioredis

from broadcasting.channels.base import Message, Outcome, RateLimitedSender, outcome_from_error, shared_rate
from broadcasting.errors import ProviderError
from broadcasting.ratelimit import SharedRate
from broadcasting.store import DeliveryJob
from broadcasting.twilio import TwilioSms
from burgernet.domain import Channel
from burgernet.settings import Settings

RATE = "rate:sms:twilio"


class SmsProvider(Protocol):
    """What the sender needs of an SMS API (:class:`broadcasting.twilio.TwilioSms`); synchronous,
    run in a thread. ``send`` raises a :class:`broadcasting.errors.ProviderError`."""

    def send(self, *, to: str, body: str, delivery_id: int, attempt: int) -> str: ...

    def find_sent(self, *, to: str, since: datetime, body: str) -> str | None: ...


class TwilioSmsSender(RateLimitedSender):
    channel = Channel.SMS

    def __init__(self, provider: SmsProvider, rate: SharedRate) -> None:
        self.provider = provider
        self.rate = rate

    async def send(self, job: DeliveryJob, message: Message, permit: object) -> Outcome:
        try:
            sid = await asyncio.to_thread(
                self.provider.send,
                to=job.phone_e164,
                body=message.body,
                delivery_id=job.delivery_id,
                attempt=job.attempt,
            )
        except ProviderError as exc:
            return outcome_from_error(exc)
        return Outcome("sent", provider_ref=sid)

    async def reconcile(self, job: DeliveryJob, message: Message) -> Outcome | None:
        if job.sending_at is None:
            return None
        sid = await asyncio.to_thread(
            self.provider.find_sent,
            to=job.phone_e164,
            since=job.sending_at - timedelta(minutes=1),
            body=message.body,
        )
        return Outcome("sent", provider_ref=sid) if sid else None


async def create(settings: Settings, client: aioredis.Redis) -> TwilioSmsSender:
    per_second = settings.broadcast.sms_per_second
    return TwilioSmsSender(TwilioSms(settings), shared_rate(client, settings, RATE, per_second))

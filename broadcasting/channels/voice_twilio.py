"""Alert calls through Twilio Programmable Voice: Twilio fetches the TwiML from callback_api
(:mod:`broadcasting.twilio`) and reports the answered / busy / no-answer outcome by callback."""

from __future__ import annotations

import asyncio
from typing import Protocol

import redis.asyncio as aioredis

from broadcasting.channels.base import (
    VOICE_CALL_RATE,
    Message,
    Outcome,
    RateLimitedSender,
    outcome_from_error,
    shared_rate,
)
from broadcasting.errors import ProviderError
from broadcasting.ratelimit import SharedRate
from broadcasting.store import DeliveryJob
from broadcasting.twilio import TwilioVoice
from burgernet.domain import Channel
from burgernet.settings import Settings


class VoiceCallProvider(Protocol):
    """What the sender needs of a call API (:class:`broadcasting.twilio.TwilioVoice`); synchronous,
    run in a thread. Raises a :class:`broadcasting.errors.ProviderError`."""

    def call(self, *, to: str, delivery_id: int, attempt: int) -> str: ...


class TwilioVoiceSender(RateLimitedSender):
    # Our trunk's channels do not limit calls Twilio places: only the call set-up rate does.
    channel = Channel.VOICE

    def __init__(self, provider: VoiceCallProvider, rate: SharedRate) -> None:
        self.provider = provider
        self.rate = rate

    async def send(self, job: DeliveryJob, message: Message, permit: object) -> Outcome:
        try:
            sid = await asyncio.to_thread(
                self.provider.call, to=job.phone_e164, delivery_id=job.delivery_id, attempt=job.attempt
            )
        except ProviderError as exc:
            return outcome_from_error(exc)
        # The answered / busy / no-answer outcome arrives as a status callback.
        return Outcome("sent", provider_ref=sid)

    async def reconcile(self, job: DeliveryJob, message: Message) -> Outcome | None:
        return Outcome("sent", error="outcome unknown: the worker stopped during the call")


async def create(settings: Settings, client: aioredis.Redis) -> TwilioVoiceSender:
    per_second = settings.broadcast.voice_calls_per_second
    calls = shared_rate(client, settings, VOICE_CALL_RATE, per_second)
    return TwilioVoiceSender(TwilioVoice(settings), calls)

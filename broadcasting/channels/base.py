"""What every sender shares: the :class:`Sender` protocol the worker drives, the
:class:`Message` it sends, the :class:`Outcome` it reports, and the rate-limited base class.

A sender turns a claimed delivery into a provider call and an :class:`Outcome`; the worker
around it owns the queue, the database and the retry policy. Each has two entry points:

* ``send(job, message, permit)`` — the attempt the worker just claimed;
* ``reconcile(job, message)`` — a delivery a dead worker left *in doubt* (``sending``): find
  out from the provider whether it went out; ``None`` means it surely did not, send it now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import redis.asyncio as aioredis

from broadcasting.errors import ProviderError, TransientProviderError
from broadcasting.ratelimit import SharedRate
from broadcasting.store import DeliveryJob
from burgernet.domain import Channel
from burgernet.settings import Settings


@dataclass(frozen=True)
class Outcome:
    status: str  # a final delivery status: sent, answered, busy, no_answer, failed
    provider_ref: str | None = None
    error: str | None = None
    retry: bool = False  # trying again later may work (busy, no answer, transient error)
    retry_after: float | None = None  # the provider asked for this wait (seconds)


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


class Sender(Protocol):
    """``acquire`` waits for the shared capacity (rate, trunk channels) *before* the worker
    claims a delivery, so that a delivery waiting for its turn is still ``queued`` — and can be
    cancelled when the action closes. The permit goes to ``send`` or back via ``release``."""

    channel: Channel

    async def acquire(self) -> object: ...

    async def release(self, permit: object) -> None: ...

    async def send(self, job: DeliveryJob, message: Message, permit: object) -> Outcome: ...

    async def reconcile(self, job: DeliveryJob, message: Message) -> Outcome | None: ...

    async def close(self) -> None: ...


# Called with (delivery id, outcome) the instant a provider accepted a message.
AcceptedNote = Callable[[int, "Outcome"], None]


@runtime_checkable
class NotesAcceptance(Protocol):
    """A sender whose provider cannot be asked afterwards (SMTP) and that talks to it from a
    thread: it writes the acceptance down *in that thread*, the moment the provider said yes,
    so a worker killed before the event loop heard of it still does not send it twice
    (:mod:`broadcasting.journal`)."""

    def note_acceptance_with(self, note: AcceptedNote) -> None: ...


def outcome_from_error(exc: ProviderError) -> Outcome:
    """A provider's refusal as the worker sees it: retried later only when transient."""
    if isinstance(exc, TransientProviderError):
        return Outcome("failed", error=str(exc), retry=True, retry_after=exc.retry_after)
    return Outcome("failed", error=str(exc))


class RateLimitedSender:
    """A sender whose only shared limit is a rate: the permit is just a booked slot."""

    rate: SharedRate

    async def acquire(self) -> object:
        await self.rate.wait_turn()
        return None

    async def release(self, permit: object) -> None:
        return None

    async def close(self) -> None:
        return None


def burst_for(per_second: float) -> int:
    """Two sends may go back to back after a pause: a worker that wakes a millisecond late for
    its slot then still gets it, instead of the slot being lost and the rate sagging to ~90 %.
    Over any second at most one more than the rate is booked."""
    return 2 if per_second >= 2 else 1


def shared_rate(client: aioredis.Redis, settings: Settings, name: str, per_second: float) -> SharedRate:
    """The rate ``name`` (e.g. ``rate:sms:twilio``) every worker on every machine shares."""
    return SharedRate(client, f"{settings.redis.key_prefix}{name}", per_second, burst_for(per_second))


# Call set-ups per second: one limit for alert calls, whichever provider places them.
VOICE_CALL_RATE = "rate:voice:calls"

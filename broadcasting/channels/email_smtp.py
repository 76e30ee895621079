"""E-mail over SMTP (:class:`burgernet.mailer.Mailer`).

An e-mail cannot be looked up after the fact. So the sending thread writes down every mail the
server accepted, the moment it did (:mod:`broadcasting.journal`); an in-doubt delivery found
there is not sent again. One that is not there cannot have been accepted (but for a machine
crash in between) and is sent again, with the same Message-ID: mail systems that deduplicate
by Message-ID drop a copy.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import Protocol

import redis.asyncio as aioredis

from broadcasting.channels.base import AcceptedNote, Message, Outcome, RateLimitedSender, shared_rate
from broadcasting.ratelimit import SharedRate
from broadcasting.store import DeliveryJob
from burgernet.domain import Channel
from burgernet.mailer import Mailer, MailError, TransientMailError
from burgernet.settings import Settings

RATE = "rate:email:smtp"
# Every broadcast mail is machine-made (RFC 3834): no auto-reply or vacation notice comes back.
HEADERS = {"Auto-Submitted": "auto-generated"}


class MailTransport(Protocol):
    """What the sender needs of a mailer (:class:`burgernet.mailer.Mailer`); synchronous, run in a
    thread. Raises :class:`burgernet.mailer.MailError` (``TransientMailError`` when worth a retry)."""

    def send(
        self,
        to: str,
        subject: str,
        body_text: str,
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str: ...


class SmtpEmailSender(RateLimitedSender):
    channel = Channel.EMAIL

    def __init__(self, mailer: MailTransport, rate: SharedRate, domain: str = "burgernet.local") -> None:
        self.mailer = mailer
        self.rate = rate
        self.domain = domain
        self._note_acceptance: AcceptedNote | None = None

    def note_acceptance_with(self, note: AcceptedNote) -> None:
        self._note_acceptance = note

    def message_id(self, job: DeliveryJob) -> str:
        return f"<delivery-{job.delivery_id}@{self.domain}>"

    async def send(self, job: DeliveryJob, message: Message, permit: object) -> Outcome:
        if not job.email:
            return Outcome("failed", error="no e-mail address")
        accepted = Outcome("sent", provider_ref=self.message_id(job))
        send = functools.partial(
            self.mailer.send,
            job.email,
            message.subject,
            message.body,
            message_id=self.message_id(job),
            headers=HEADERS,
        )

        def send_and_note() -> None:
            send()
            if self._note_acceptance is not None:  # in this thread, right after the server's 250
                self._note_acceptance(job.delivery_id, accepted)

        try:
            await asyncio.to_thread(send_and_note)
        except MailError as exc:
            # 4xx and connection trouble: later; 5xx (address refused): never.
            return Outcome("failed", error=str(exc), retry=isinstance(exc, TransientMailError))
        return accepted

    async def reconcile(self, job: DeliveryJob, message: Message) -> Outcome | None:
        return None


async def create(settings: Settings, client: aioredis.Redis) -> SmtpEmailSender:
    mailer = Mailer(settings.smtp)
    per_second = settings.broadcast.email_per_second
    return SmtpEmailSender(mailer, shared_rate(client, settings, RATE, per_second), domain=mailer.domain)

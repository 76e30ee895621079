"""One sender per channel: turns a claimed delivery into a provider call and an :class:`Outcome`.

Senders are adapters (Twilio, SMTP, AMI); the worker around them owns the queue, the
database and the retry policy. Each has two entry points:

* ``send(job, text)`` — the attempt the worker just claimed;
* ``reconcile(job, text)`` — a delivery a dead worker left *in doubt* (``sending``): find out
  from the provider whether it went out; ``None`` means it surely did not, send it now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from broadcasting.errors import PermanentProviderError, ProviderError, TransientProviderError
from broadcasting.ratelimit import SharedRate, SharedSlots
from broadcasting.store import DeliveryJob
from burgernet import channel_vars as cv
from burgernet.domain import Channel
from burgernet.mailer import MailError, TransientMailError
from burgernet.phone import e164_to_national
from burgernet.settings import Settings

log = logging.getLogger(__name__)

# AMI OriginateResponse "Reason" codes (Asterisk's enum ast_control_frame_type). PJSIP often
# reports a failed call with reason 0; then the Hangup cause (Q.850) of our channel decides.
_REASON_STATUS = {"4": "answered", "5": "busy", "3": "no_answer", "8": "failed"}
_CAUSE_STATUS = {17: "busy", 18: "no_answer", 19: "no_answer", 20: "no_answer"}
# Numbers that cannot be called at all: trying again cannot help.
_CAUSES_FINAL = {1, 3, 22, 28}


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


def _from_error(exc: ProviderError) -> Outcome:
    if isinstance(exc, TransientProviderError):
        return Outcome("failed", error=str(exc), retry=True, retry_after=exc.retry_after)
    return Outcome("failed", error=str(exc))


class _RateLimited:
    """A sender whose only shared limit is a rate: the permit is just a booked slot."""

    rate: SharedRate

    async def acquire(self) -> object:
        await self.rate.wait_turn()
        return None

    async def release(self, permit: object) -> None:
        return None

    async def close(self) -> None:
        return None


class SmsSender(_RateLimited):
    """Twilio SMS; status callbacks later move ``sent`` to ``delivered`` / ``undelivered``."""

    channel = Channel.SMS

    def __init__(self, provider: Any, rate: SharedRate) -> None:
        self.provider = provider  # broadcasting.twilio_sms.TwilioSms
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
            return _from_error(exc)
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


class EmailSender(_RateLimited):
    """SMTP. An e-mail cannot be looked up after the fact, so an in-doubt one is sent again
    with the same Message-ID: mail systems that deduplicate by Message-ID drop the copy."""

    channel = Channel.EMAIL

    def __init__(self, mailer: Any, rate: SharedRate, domain: str = "burgernet.local") -> None:
        self.mailer = mailer  # burgernet.mailer.Mailer
        self.rate = rate
        self.domain = domain

    def message_id(self, job: DeliveryJob) -> str:
        return f"<delivery-{job.delivery_id}@{self.domain}>"

    async def send(self, job: DeliveryJob, message: Message, permit: object) -> Outcome:
        if not job.email:
            return Outcome("failed", error="no e-mail address")
        try:
            await asyncio.to_thread(
                self.mailer.send, job.email, message.subject, message.body, message_id=self.message_id(job)
            )
        except MailError as exc:
            # 4xx and connection trouble: later; 5xx (address refused): never.
            return Outcome("failed", error=str(exc), retry=isinstance(exc, TransientMailError))
        return Outcome("sent", provider_ref=self.message_id(job))

    async def reconcile(self, job: DeliveryJob, message: Message) -> Outcome | None:
        return None


class AsteriskVoiceSender:
    """An alert call through our own trunk: AMI Originate into ``[burgernet-alert]``.

    The call's unique id is chosen by us (``ChannelId``) so that any worker can recognise it:
    the outcome arrives as an ``OriginateResponse`` event, the end as a ``Hangup``. A trunk
    channel (a :class:`SharedSlots` lease) is held from dialling until the hang-up.
    """

    channel = Channel.VOICE

    def __init__(
        self,
        settings: Settings,
        ami: Any,  # ivr.ami.AmiClient
        slots: SharedSlots,
        rate: SharedRate,
        sound_for: Any,  # (job, message) -> Asterisk sound name (sync; run in a thread)
        on_alerted: Any = None,
    ) -> None:
        self.settings = settings
        self.ami = ami
        self.slots = slots
        self.rate = rate
        self.sound_for = sound_for
        self._originated: dict[str, asyncio.Future[Mapping[str, Any]]] = {}
        self._hung_up: dict[str, asyncio.Future[int | None]] = {}
        self._releases: set[asyncio.Task[None]] = set()
        ami.on("OriginateResponse", self._on_originate_response)
        ami.on("Hangup", self._on_hangup)

    @staticmethod
    def channel_id(job: DeliveryJob) -> str:
        return f"bn-d{job.delivery_id}-a{job.attempt}"

    async def _on_originate_response(self, event: Mapping[str, Any]) -> None:
        future = self._originated.get(str(event.get("ActionID", "")))
        if future is not None and not future.done():
            future.set_result(dict(event))

    async def _on_hangup(self, event: Mapping[str, Any]) -> None:
        future = self._hung_up.get(str(event.get("Uniqueid", "")))
        if future is not None and not future.done():
            cause = str(event.get("Cause", ""))
            future.set_result(int(cause) if cause.isdigit() else None)

    async def acquire(self) -> object:
        holder = await self.slots.acquire()
        await self.rate.wait_turn()
        return holder

    async def release(self, permit: object) -> None:
        await self.slots.release(str(permit))

    async def send(self, job: DeliveryJob, message: Message, permit: object) -> Outcome:
        a = self.settings.asterisk
        holder = str(permit)
        try:
            sound = await asyncio.to_thread(self.sound_for, job, message)
        except Exception as exc:  # TTS or file trouble: worth another try later
            log.exception("delivery %s: no sound to play", job.delivery_id)
            await self.slots.release(holder)
            return Outcome("failed", error=f"message audio: {exc}", retry=True)
        unique_id = self.channel_id(job)
        loop = asyncio.get_running_loop()
        originated: asyncio.Future[Mapping[str, Any]] = loop.create_future()
        hung_up: asyncio.Future[int | None] = loop.create_future()
        self._originated[unique_id] = originated
        self._hung_up[unique_id] = hung_up
        keep_slot = False
        try:
            try:
                response = await self.ami.send_action(
                    {
                        "Action": "Originate",
                        # The trunk expects national numbers (06...), as the free number sees them.
                        "Channel": f"PJSIP/{e164_to_national(job.phone_e164)}@trunk",
                        "Context": cv.CTX_ALERT,
                        "Exten": "s",
                        "Priority": "1",
                        "CallerID": f'"{a.alert_caller_name}" <{a.alert_caller_id}>',
                        "Timeout": str(self.settings.broadcast.voice_ring_seconds * 1000),
                        "Async": "true",
                        "ChannelId": unique_id,
                        "ActionID": unique_id,
                        "Variable": [
                            # The menu after the message is spoken in the participant's language.
                            f"CHANNEL(language)={job.language}",
                            f"{cv.VAR_ALERT_SOUND}={sound}",
                            f"{cv.VAR_ACTION_ID}={job.action_id}",
                            f"{cv.VAR_PARTICIPANT_ID}={job.participant_id}",
                            f"{cv.VAR_DELIVERY_ID}={job.delivery_id}",
                            f"{cv.VAR_CALL_KIND}={cv.CALL_KIND_ALERT}",
                        ],
                    },
                    timeout=10.0,
                    as_list=False,
                )
            except Exception as exc:  # AMI down or refused: the call was not placed
                return Outcome("failed", error=f"originate not accepted: {exc}", retry=True)
            if str(response.get("Response", "")).lower() != "success":
                return Outcome("failed", error=f"originate refused: {response.get('Message')}", retry=True)
            try:
                event = await asyncio.wait_for(originated, self.settings.broadcast.voice_ring_seconds + 20)
            except TimeoutError:
                keep_slot = True  # the call may still be up: hold the channel until it ends
                return Outcome("sent", provider_ref=unique_id, error="no originate outcome from Asterisk")
            reason = str(event.get("Reason", ""))
            status = _REASON_STATUS.get(reason)
            if status == "answered":
                keep_slot = True
                return Outcome("answered", provider_ref=unique_id)
            cause: int | None = None
            with contextlib.suppress(TimeoutError):
                # The Hangup of the failed channel usually came first; allow it a moment.
                cause = await asyncio.wait_for(asyncio.shield(hung_up), 2.0)
            if status is None:
                status = _CAUSE_STATUS.get(cause or -1, "failed")
            log.info(
                "delivery %s: originate reason %s, hang-up cause %s → %s",
                job.delivery_id,
                reason,
                cause,
                status,
            )
            return Outcome(
                status,
                provider_ref=unique_id,
                error=f"originate reason {reason}, hang-up cause {cause}",
                retry=cause not in _CAUSES_FINAL,
            )
        finally:
            self._originated.pop(unique_id, None)
            if keep_slot:
                task = asyncio.create_task(self._release_after_hangup(unique_id, holder, hung_up))
                self._releases.add(task)
                task.add_done_callback(self._releases.discard)
            else:
                self._hung_up.pop(unique_id, None)
                await self.slots.release(holder)

    async def _release_after_hangup(
        self, unique_id: str, holder: str, hung_up: asyncio.Future[int | None]
    ) -> None:
        renew_every = max(5.0, self.slots.lease_ms / 3000)
        try:
            while True:
                try:
                    await asyncio.wait_for(asyncio.shield(hung_up), renew_every)
                    return
                except TimeoutError:
                    if not await self.slots.renew(holder):
                        return
        finally:
            self._hung_up.pop(unique_id, None)
            await self.slots.release(holder)

    async def reconcile(self, job: DeliveryJob, message: Message) -> Outcome | None:
        """A dead worker's call: never dial again; say what Asterisk still knows of it."""
        unique_id = self.channel_id(job)
        try:
            events = await self.ami.send_action({"Action": "CoreShowChannels"}, timeout=10.0, as_list=True)
        except Exception as exc:
            return Outcome("sent", provider_ref=unique_id, error=f"outcome unknown (AMI: {exc})")
        for event in events or []:
            if str(event.get("UniqueID", event.get("Uniqueid", ""))) == unique_id:
                state = str(event.get("ChannelStateDesc", ""))
                return Outcome("answered" if state == "Up" else "sent", provider_ref=unique_id)
        return Outcome(
            "sent", provider_ref=unique_id, error="outcome unknown: the worker stopped during the call"
        )

    async def close(self) -> None:
        """Stop following calls and log off AMI (the sender owns its AMI connection)."""
        for task in list(self._releases):
            task.cancel()
        await asyncio.gather(*self._releases, return_exceptions=True)
        await self.ami.close()


class TwilioVoiceSender(_RateLimited):
    """Twilio Programmable Voice: Twilio fetches TwiML from callback_api and reports by callback."""

    channel = Channel.VOICE

    def __init__(self, provider: Any, rate: SharedRate) -> None:
        # Our trunk's channels do not limit calls Twilio places: only the call set-up rate does.
        self.provider = provider  # broadcasting.twilio_voice.TwilioVoice
        self.rate = rate

    async def send(self, job: DeliveryJob, message: Message, permit: object) -> Outcome:
        try:
            sid = await asyncio.to_thread(
                self.provider.call, to=job.phone_e164, delivery_id=job.delivery_id, attempt=job.attempt
            )
        except (TransientProviderError, PermanentProviderError) as exc:
            return _from_error(exc)
        # The answered / busy / no-answer outcome arrives as a status callback.
        return Outcome("sent", provider_ref=sid)

    async def reconcile(self, job: DeliveryJob, message: Message) -> Outcome | None:
        return Outcome("sent", error="outcome unknown: the worker stopped during the call")

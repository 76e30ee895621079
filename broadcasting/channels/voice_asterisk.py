"""Alert calls through our own trunk: AMI Originate into ``[burgernet-alert]``.

The call's unique id is chosen by us (``ChannelId``) so that any worker can recognise it: the
outcome arrives as an ``OriginateResponse`` event, the end as a ``Hangup``. A trunk channel
(a :class:`SharedSlots` lease) is held from dialling until the hang-up.

A Hangup sent while the AMI connection was down never arrives, and the lease would be renewed
for ever. So after every AMI (re)connection, and every :data:`LEASE_RECONCILE_SECONDS` while
calls are held, the channels that really exist are asked for (AMI ``Status``, write privilege
``reporting``), and every lease whose channel is gone is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import redis.asyncio as aioredis

from broadcasting.channels.base import VOICE_CALL_RATE, Message, Outcome, shared_rate
from broadcasting.ratelimit import SharedRate, SharedSlots
from broadcasting.store import DeliveryJob
from burgernet import channel_vars as cv
from burgernet.domain import Channel
from burgernet.phone import NotDialable, dialable_national
from burgernet.settings import Settings
from ivr.ami import AmiClient
from recordings.catalogue import alert_message_sound
from recordings.messages import resolve_alert_sound

log = logging.getLogger(__name__)

TRUNK_SLOTS = "slots:voice:trunk"
# How often held trunk channels are checked against the channels Asterisk really has.
LEASE_RECONCILE_SECONDS = 30.0

# AMI OriginateResponse "Reason" codes (Asterisk's enum ast_control_frame_type). PJSIP often
# reports a failed call with reason 0; then the Hangup cause (Q.850) of our channel decides.
_REASON_STATUS = {"4": "answered", "5": "busy", "3": "no_answer", "8": "failed"}
_CAUSE_STATUS = {17: "busy", 18: "no_answer", 19: "no_answer", 20: "no_answer"}
# Numbers that cannot be called at all: trying again cannot help.
_CAUSES_FINAL = {1, 3, 22, 28}

AmiEvent = Mapping[str, object]
SoundFor = Callable[[DeliveryJob, Message], str]  # the Asterisk sound to play (sync; run in a thread)


class AmiConnection(Protocol):
    """What the sender needs of AMI (:class:`ivr.ami.AmiClient`): events by name, actions whose
    answer is one event (a mapping) or, with ``as_list``, a list of them."""

    def on(self, pattern: str, callback: Callable[[AmiEvent], Awaitable[None]]) -> None: ...

    async def send_action(
        self, action: Mapping[str, object], timeout: float = 10.0, as_list: bool | None = None
    ) -> object: ...

    async def close(self) -> None: ...


def _fields(answer: object) -> AmiEvent:
    return answer if isinstance(answer, Mapping) else {}


async def channel_status(ami: AmiConnection) -> dict[str, AmiEvent]:
    """Every channel Asterisk has now, by unique id: AMI ``Status`` (write ``reporting``)."""
    answer = await ami.send_action({"Action": "Status"}, timeout=10.0, as_list=None)
    if not isinstance(answer, list):  # a refusal is one message, not a list
        raise RuntimeError(f"AMI Status refused: {_fields(answer).get('Message', answer)}")
    channels: dict[str, AmiEvent] = {}
    for item in answer:
        fields = _fields(item)
        unique_id = str(fields.get("Uniqueid", fields.get("UniqueID", "")))
        if str(fields.get("Event", "")) == "Status" and unique_id:
            channels[unique_id] = fields
    return channels


class AsteriskVoiceSender:
    channel = Channel.VOICE

    def __init__(
        self,
        settings: Settings,
        ami: AmiConnection,
        slots: SharedSlots,
        rate: SharedRate,
        sound_for: SoundFor,
    ) -> None:
        self.settings = settings
        self.ami = ami
        self.slots = slots
        self.rate = rate
        self.sound_for = sound_for
        self._originated: dict[str, asyncio.Future[AmiEvent]] = {}
        self._hung_up: dict[str, asyncio.Future[int | None]] = {}
        self._releases: set[asyncio.Task[None]] = set()
        # Calls whose lease waits for their Hangup: unique id → when the wait began (loop time).
        self._held_since: dict[str, float] = {}
        self._reconciler: asyncio.Task[None] | None = None
        self.leases_reconciled = 0  # leases released because their channel was gone
        ami.on("OriginateResponse", self._on_originate_response)
        ami.on("Hangup", self._on_hangup)
        # Optional: a stand-in without reconnections has nothing to catch up on.
        on_connect = getattr(ami, "on_connect", None)
        if on_connect is not None:
            on_connect(self._reconcile_after_connect)

    @staticmethod
    def channel_id(job: DeliveryJob) -> str:
        return f"bn-d{job.delivery_id}-a{job.attempt}"

    async def _on_originate_response(self, event: AmiEvent) -> None:
        future = self._originated.get(str(event.get("ActionID", "")))
        if future is not None and not future.done():
            future.set_result(dict(event))

    async def _on_hangup(self, event: AmiEvent) -> None:
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
        try:  # only Dutch fixed and mobile numbers: never a premium, foreign or short number
            national = dialable_national(job.phone_e164)
        except NotDialable as exc:
            await self.slots.release(holder)
            return Outcome("failed", error=str(exc), retry=False)
        try:
            sound = await asyncio.to_thread(self.sound_for, job, message)
        except Exception as exc:  # TTS or file trouble: worth another try later
            log.exception("delivery %s: no sound to play", job.delivery_id)
            await self.slots.release(holder)
            return Outcome("failed", error=f"message audio: {exc}", retry=True)
        unique_id = self.channel_id(job)
        loop = asyncio.get_running_loop()
        originated: asyncio.Future[AmiEvent] = loop.create_future()
        hung_up: asyncio.Future[int | None] = loop.create_future()
        self._originated[unique_id] = originated
        self._hung_up[unique_id] = hung_up
        keep_slot = False
        try:
            try:
                response = _fields(
                    await self.ami.send_action(
                        {
                            "Action": "Originate",
                            # The trunk expects national numbers (06...), as the free number sees them.
                            "Channel": f"PJSIP/{national}@trunk",
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
        self._held_since[unique_id] = asyncio.get_running_loop().time()
        if self._reconciler is None or self._reconciler.done():
            self._reconciler = asyncio.create_task(self._reconcile_loop(), name="voice-lease-reconcile")
        try:
            while True:
                try:
                    await asyncio.wait_for(asyncio.shield(hung_up), renew_every)
                    return
                except TimeoutError:
                    if not await self.slots.renew(holder):
                        # Redis lost the lease (restarted empty): the call is still up, so
                        # the channel is still taken; a missed hang-up is the reconcile's job.
                        await self.slots.reinstate(holder)
        finally:
            self._held_since.pop(unique_id, None)
            self._hung_up.pop(unique_id, None)
            await self.slots.release(holder)

    async def reconcile_leases(self) -> list[str]:
        """Release the leases of calls whose channel Asterisk no longer has; their unique ids.

        Only calls held since before the question are judged: a channel that came up after
        it could not be in the answer. The lease itself is released by the waiting task,
        exactly as on a Hangup event (cause unknown).
        """
        asked_at = asyncio.get_running_loop().time()
        if not self._held_since:
            return []
        alive = await channel_status(self.ami)
        gone = []
        for unique_id, since in list(self._held_since.items()):
            hung_up = self._hung_up.get(unique_id)
            if since < asked_at and unique_id not in alive and hung_up is not None and not hung_up.done():
                hung_up.set_result(None)
                gone.append(unique_id)
        if gone:
            self.leases_reconciled += len(gone)
            log.warning("trunk channels released, their hang-up was missed: %s", ", ".join(gone))
        return gone

    async def _reconcile_after_connect(self) -> None:
        await self.reconcile_leases()

    async def _reconcile_loop(self) -> None:
        while self._held_since:
            await asyncio.sleep(LEASE_RECONCILE_SECONDS)
            try:
                await self.reconcile_leases()
            except Exception as exc:  # AMI down: the next connection reconciles
                log.info("trunk lease check skipped: %s", exc)

    async def reconcile(self, job: DeliveryJob, message: Message) -> Outcome | None:
        """A dead worker's call: never dial again; say what Asterisk still knows of it."""
        unique_id = self.channel_id(job)
        try:
            channels = await channel_status(self.ami)
        except Exception as exc:
            return Outcome("sent", provider_ref=unique_id, error=f"outcome unknown (AMI: {exc})")
        if unique_id in channels:
            state = str(channels[unique_id].get("ChannelStateDesc", ""))
            return Outcome("answered" if state == "Up" else "sent", provider_ref=unique_id)
        return Outcome(
            "sent", provider_ref=unique_id, error="outcome unknown: the worker stopped during the call"
        )

    async def close(self) -> None:
        """Stop following calls and log off AMI (the sender owns its AMI connection)."""
        tasks = [*self._releases, *([self._reconciler] if self._reconciler else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.ami.close()


def alert_sound(settings: Settings) -> SoundFor:
    """(job, message) → the Asterisk sound to play: the action's recording, else TTS of the text."""

    def sound_for(job: DeliveryJob, message: Message) -> str:
        if job.kind == "alert":
            return resolve_alert_sound(job.action_id, job.language, message.body, settings=settings)
        # An update or result says something new: never the alert's recording.
        return alert_message_sound(job.action_id, job.language, message.body, settings=settings)

    return sound_for


async def create(settings: Settings, client: aioredis.Redis) -> AsteriskVoiceSender:
    b = settings.broadcast
    slots = SharedSlots(
        client,
        f"{settings.redis.key_prefix}{TRUNK_SLOTS}",
        settings.voice_channels(),
        lease_seconds=b.voice_ring_seconds + 120,
    )
    calls = shared_rate(client, settings, VOICE_CALL_RATE, b.voice_calls_per_second)
    a = settings.asterisk
    ami = AmiClient(host=a.ami_host, port=a.ami_port, username=a.ami_username, secret=a.ami_secret)
    sender = AsteriskVoiceSender(settings, ami, slots, calls, alert_sound(settings))
    await ami.connect()  # keeps retrying in the background when Asterisk is not up yet
    return sender

"""Alert calls through our own trunk: AMI Originate into ``[burgernet-alert]``.

The call's unique id is chosen by us (``ChannelId``) so that any worker can recognise it: the
outcome arrives as an ``OriginateResponse`` event, the end as a ``Hangup``. A trunk channel
(a :class:`SharedSlots` lease) is held from dialling until the hang-up.

More than one Asterisk node (``asterisk.alert_nodes``): the sender keeps one AMI connection per
node and each node's trunk channels are leases of their own in Redis, so every worker sees the
same free channels. A call goes to the node with the most free channels; a node whose AMI is
disconnected, or whose last Originate failed for connection reasons, gets none. An Originate
that fails because its node went away is sent to another node with the same unique id. Each
call's Hangup and lease check come from the node it was placed on.

A Hangup sent while the AMI connection was down never arrives, and the lease would be renewed
for ever. So after every AMI (re)connection, and every :data:`LEASE_RECONCILE_SECONDS` while
calls are held, the channels that really exist are asked for (AMI ``Status``, write privilege
``reporting``), and every lease whose channel is gone is released.

Answering machines (settings ``[amd]``): the dialplan runs AMD() right after the answer and
sends its verdict as a ``UserEvent`` (``channel_vars.AMD_EVENT``) on the call's channel. An
answered call is therefore only reported once that verdict is in: ``machine`` (the short
machine message, ``BN_MACHINE_SOUND``, was left after the beep; never retried) or
``answered`` (a person, or AMD was not sure: they got the message and the key menu).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis

from broadcasting.channels.base import VOICE_CALL_RATE, Message, Outcome, shared_rate
from broadcasting.ratelimit import SharedRate, SharedSlots
from broadcasting.store import DeliveryJob
from burgernet import channel_vars as cv
from burgernet.action_codes import message_code
from burgernet.db import make_engine, make_session_factory, session_scope
from burgernet.domain import Channel
from burgernet.phone import NotDialable, dialable_national, free_number_display
from burgernet.settings import AlertNodeSettings, Settings
from ivr.ami import AmiClient, AmiConnectionLost, AmiNotConnected
from recordings.catalogue import alert_message_sound
from recordings.messages import resolve_alert_sound

log = logging.getLogger(__name__)

TRUNK_SLOTS = "slots:voice:trunk"
# How often held trunk channels are checked against the channels Asterisk really has.
LEASE_RECONCILE_SECONDS = 30.0
# A node whose Originate failed for connection reasons gets no call for this long, unless its
# AMI logs in again first (a half-open connection is dropped by the AMI client's ping by then).
NODE_RETRY_SECONDS = 15.0
# How often a worker looks again when every usable node's trunk channels are taken.
SLOT_POLL_SECONDS = 0.2
# The node did not take the action: not sent (not connected), fate unknown (connection lost,
# no answer). Another node may place the call; the unique id stays ours.
NODE_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    AmiNotConnected,
    AmiConnectionLost,
    TimeoutError,
    ConnectionError,
)

# AMI OriginateResponse "Reason" codes (Asterisk's enum ast_control_frame_type). PJSIP often
# reports a failed call with reason 0; then the Hangup cause (Q.850) of our channel decides.
_REASON_STATUS = {"4": "answered", "5": "busy", "3": "no_answer", "8": "failed"}
_CAUSE_STATUS = {17: "busy", 18: "no_answer", 19: "no_answer", 20: "no_answer"}
# Numbers that cannot be called at all: trying again cannot help.
_CAUSES_FINAL = {1, 3, 22, 28}

AmiEvent = Mapping[str, object]
SoundFor = Callable[[DeliveryJob, Message], str]  # the Asterisk sound to play (sync; run in a thread)
MachineSoundFor = Callable[[DeliveryJob], str]  # the machine message's sound (sync; run in a thread)
# Beyond AMD's own analysis time: the answer → dialplan → AMI event path, on a busy machine.
AMD_VERDICT_MARGIN_SECONDS = 5.0


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


@dataclass(eq=False)
class TrunkNode:
    """One Asterisk node alert calls go through: its AMI connection and its trunk channel leases."""

    name: str
    ami: AmiConnection
    slots: SharedSlots
    # Loop time of the last Originate that failed for connection reasons; None since the last login.
    connection_failed_at: float | None = None

    @property
    def connected(self) -> bool:
        # A stand-in without a connection state counts as connected.
        return bool(getattr(self.ami, "connected", True))

    def usable(self, now: float) -> bool:
        failed = self.connection_failed_at
        return self.connected and (failed is None or now - failed >= NODE_RETRY_SECONDS)

    async def free_channels(self) -> int:
        return self.slots.limit - await self.slots.in_use()


@dataclass(frozen=True)
class TrunkLease:
    """A permit: one trunk channel held on one node."""

    node: TrunkNode
    holder: str


def choose_order(nodes: Sequence[TrunkNode], free: Sequence[int], turn: int) -> list[TrunkNode]:
    """The nodes with a free channel, most free first; ties in turn from ``turn`` (so that one
    worker does not fill the first node's channels before the others', and workers spread)."""
    count = len(nodes)
    ranked = sorted(range(count), key=lambda i: (-free[i], (i - turn) % count))
    return [nodes[i] for i in ranked if free[i] > 0]


class AsteriskVoiceSender:
    """Alert calls over one node (``ami``, ``slots``) or more (``more_nodes``)."""

    channel = Channel.VOICE

    def __init__(
        self,
        settings: Settings,
        ami: AmiConnection,
        slots: SharedSlots,
        rate: SharedRate,
        sound_for: SoundFor,
        *,
        node_name: str = "local",
        more_nodes: Sequence[TrunkNode] = (),
        machine_sound_for: MachineSoundFor | None = None,
        await_amd: bool = False,
    ) -> None:
        self.settings = settings
        self.nodes = [TrunkNode(node_name, ami, slots), *more_nodes]
        self.rate = rate
        self.sound_for = sound_for
        # None: no machine message; the dialplan then plays a machine the whole alert.
        self.machine_sound_for = machine_sound_for
        # Report an answered call only with AMD's verdict (:func:`create` follows amd.enabled,
        # as the rendered dialplan does). Off: "answered" at the answer, as before AMD.
        self.await_amd = await_amd
        self._originated: dict[str, asyncio.Future[AmiEvent]] = {}
        # AMD's verdict (the dialplan's UserEvent) on each answered call, by unique id.
        self._amd_verdicts: dict[str, asyncio.Future[AmiEvent]] = {}
        self._hung_up: dict[str, asyncio.Future[int | None]] = {}
        # The node each followed call was placed on: its events count, the other nodes' do not.
        self._placed_on: dict[str, TrunkNode] = {}
        self._releases: set[asyncio.Task[None]] = set()
        # Calls whose lease waits for their Hangup: unique id → when the wait began (loop time).
        self._held_since: dict[str, float] = {}
        self._reconciler: asyncio.Task[None] | None = None
        self._turn = 0
        self.leases_reconciled = 0  # leases released because their channel was gone
        for node in self.nodes:
            self._follow(node)

    @property
    def ami(self) -> AmiConnection:
        """The first node's AMI (with one node, the only one)."""
        return self.nodes[0].ami

    @property
    def slots(self) -> SharedSlots:
        """The first node's trunk channel leases (with one node, the only ones)."""
        return self.nodes[0].slots

    def _follow(self, node: TrunkNode) -> None:
        async def on_originate_response(event: AmiEvent) -> None:
            await self._on_originate_response(node, event)

        async def on_hangup(event: AmiEvent) -> None:
            await self._on_hangup(node, event)

        async def on_user_event(event: AmiEvent) -> None:
            await self._on_amd_verdict(node, event)

        async def after_connect() -> None:
            node.connection_failed_at = None  # logged in again: it may take calls
            await self.reconcile_leases(node)

        node.ami.on("OriginateResponse", on_originate_response)
        node.ami.on("Hangup", on_hangup)
        node.ami.on("UserEvent", on_user_event)
        # Optional: a stand-in without reconnections has nothing to catch up on.
        on_connect = getattr(node.ami, "on_connect", None)
        if on_connect is not None:
            on_connect(after_connect)

    @staticmethod
    def channel_id(job: DeliveryJob) -> str:
        return f"bn-d{job.delivery_id}-a{job.attempt}"

    def _from_its_node(self, node: TrunkNode, unique_id: str) -> bool:
        return self._placed_on.get(unique_id) is node

    async def _on_originate_response(self, node: TrunkNode, event: AmiEvent) -> None:
        unique_id = str(event.get("ActionID", ""))
        future = self._originated.get(unique_id)
        if future is not None and not future.done() and self._from_its_node(node, unique_id):
            future.set_result(dict(event))

    async def _on_hangup(self, node: TrunkNode, event: AmiEvent) -> None:
        unique_id = str(event.get("Uniqueid", ""))
        future = self._hung_up.get(unique_id)
        if future is not None and not future.done() and self._from_its_node(node, unique_id):
            cause = str(event.get("Cause", ""))
            future.set_result(int(cause) if cause.isdigit() else None)

    async def _on_amd_verdict(self, node: TrunkNode, event: AmiEvent) -> None:
        if str(event.get("UserEvent", "")) != cv.AMD_EVENT:
            return  # an admin's own UserEvent
        unique_id = str(event.get("Uniqueid", ""))
        future = self._amd_verdicts.get(unique_id)
        if future is not None and not future.done() and self._from_its_node(node, unique_id):
            future.set_result(dict(event))

    def usable_nodes(self, exclude: Collection[TrunkNode] = ()) -> list[TrunkNode]:
        """The nodes a call may go to now. With one node there is nowhere else to go: it is
        always tried, and an Originate it cannot take fails as a retryable attempt."""
        if len(self.nodes) == 1:
            return [node for node in self.nodes if node not in exclude]
        now = asyncio.get_running_loop().time()
        return [node for node in self.nodes if node not in exclude and node.usable(now)]

    async def try_lease(self, exclude: Collection[TrunkNode] = ()) -> TrunkLease | None:
        """A trunk channel on the usable node with the most free channels, or None."""
        candidates = self.usable_nodes(exclude)
        if not candidates:
            return None
        free = await asyncio.gather(*(node.free_channels() for node in candidates))
        turn, self._turn = self._turn, self._turn + 1
        for node in choose_order(candidates, free, turn):
            holder = await node.slots.try_acquire()  # another worker may have been quicker
            if holder is not None:
                return TrunkLease(node, holder)
        return None

    async def acquire(self) -> object:
        while (lease := await self.try_lease()) is None:
            await asyncio.sleep(SLOT_POLL_SECONDS)
        await self.rate.wait_turn()
        return lease

    def _lease(self, permit: object) -> TrunkLease:
        # A bare holder (a caller that leased itself) is one of the first node's channels.
        return permit if isinstance(permit, TrunkLease) else TrunkLease(self.nodes[0], str(permit))

    async def release(self, permit: object) -> None:
        lease = self._lease(permit)
        await lease.node.slots.release(lease.holder)

    def _originate_action(
        self, job: DeliveryJob, national: str, sound: str, unique_id: str, machine_sound: str = ""
    ) -> dict[str, object]:
        a = self.settings.asterisk
        return {
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
                # "" for a caller told the closing word: key 9 then opts nobody out.
                f"{cv.VAR_PARTICIPANT_ID}={'' if job.participant_id is None else job.participant_id}",
                f"{cv.VAR_DELIVERY_ID}={job.delivery_id}",
                f"{cv.VAR_CALL_KIND}={cv.CALL_KIND_ALERT}",
                # Empty when there is none: the dialplan then plays a machine the whole alert.
                f"{cv.VAR_MACHINE_SOUND}={machine_sound}",
                # Shadows the rendered global of that name: the dialplan runs AMD() exactly when
                # this sender waits for its verdict, whatever the node's configuration says.
                f"{cv.GLOBAL_AMD}={'yes' if self.await_amd else 'no'}",
            ],
        }

    async def send(self, job: DeliveryJob, message: Message, permit: object) -> Outcome:
        lease = self._lease(permit)
        try:  # only Dutch fixed and mobile numbers: never a premium, foreign or short number
            national = dialable_national(job.phone_e164)
        except NotDialable as exc:
            await self.release(lease)
            return Outcome("failed", error=str(exc), retry=False)
        try:
            sound = await asyncio.to_thread(self.sound_for, job, message)
        except Exception as exc:  # TTS or file trouble: worth another try later
            log.exception("delivery %s: no sound to play", job.delivery_id)
            await self.release(lease)
            return Outcome("failed", error=f"message audio: {exc}", retry=True)
        machine_sound = ""
        if self.machine_sound_for is not None:
            try:
                machine_sound = await asyncio.to_thread(self.machine_sound_for, job)
            except Exception:  # a machine then hears the whole alert: no reason not to call
                log.exception("delivery %s: no machine message; a machine gets the alert", job.delivery_id)
        unique_id = self.channel_id(job)
        loop = asyncio.get_running_loop()
        originated: asyncio.Future[AmiEvent] = loop.create_future()
        hung_up: asyncio.Future[int | None] = loop.create_future()
        self._originated[unique_id] = originated
        self._hung_up[unique_id] = hung_up
        amd_verdict: asyncio.Future[AmiEvent] = loop.create_future()
        self._amd_verdicts[unique_id] = amd_verdict
        keep_slot = False
        tried: list[TrunkNode] = []
        try:
            while True:
                node = lease.node
                tried.append(node)
                self._placed_on[unique_id] = node
                try:
                    response = _fields(
                        await node.ami.send_action(
                            self._originate_action(job, national, sound, unique_id, machine_sound),
                            timeout=10.0,
                            as_list=False,
                        )
                    )
                except NODE_CONNECTION_ERRORS as exc:  # the node went away: another may place it
                    node.connection_failed_at = loop.time()
                    try:
                        other = await self.try_lease(exclude=tried)
                    except Exception:  # Redis unreachable too: this attempt fails, retried later
                        log.exception("delivery %s: no other node's trunk channel", job.delivery_id)
                        other = None
                    if other is None:
                        return Outcome("failed", error=f"originate not accepted: {exc}", retry=True)
                    log.warning(
                        "delivery %s: node %s did not take the call (%s); placing it on node %s",
                        job.delivery_id,
                        node.name,
                        exc or type(exc).__name__,
                        other.node.name,
                    )
                    await self.release(lease)
                    lease = other
                    continue
                except Exception as exc:  # refused before Asterisk saw it: the call was not placed
                    return Outcome("failed", error=f"originate not accepted: {exc}", retry=True)
                break
            if str(response.get("Response", "")).lower() != "success":
                return Outcome("failed", error=f"originate refused: {response.get('Message')}", retry=True)
            log.info("delivery %s: alert call %s through node %s", job.delivery_id, unique_id, node.name)
            try:
                event = await asyncio.wait_for(originated, self.settings.broadcast.voice_ring_seconds + 20)
            except TimeoutError:
                keep_slot = True  # the call may still be up: hold the channel until it ends
                return Outcome("sent", provider_ref=unique_id, error="no originate outcome from Asterisk")
            reason = str(event.get("Reason", ""))
            status = _REASON_STATUS.get(reason)
            if status == "answered":
                keep_slot = True
                return await self._after_amd(job, unique_id, amd_verdict, hung_up)
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
            self._amd_verdicts.pop(unique_id, None)
            if keep_slot:
                task = asyncio.create_task(self._release_after_hangup(unique_id, lease, hung_up))
                self._releases.add(task)
                task.add_done_callback(self._releases.discard)
            else:
                self._hung_up.pop(unique_id, None)
                self._placed_on.pop(unique_id, None)
                await self.release(lease)

    async def _after_amd(
        self,
        job: DeliveryJob,
        unique_id: str,
        verdict: asyncio.Future[AmiEvent],
        hung_up: asyncio.Future[int | None],
    ) -> Outcome:
        """An answered call's outcome once the dialplan's AMD() has spoken (see the module
        docstring). Anything short of a sure MACHINE is a person: they were given the menu."""
        if not self.await_amd:
            return Outcome("answered", provider_ref=unique_id)
        wait = self.settings.amd.total_analysis_ms / 1000 + AMD_VERDICT_MARGIN_SECONDS
        hang_up: asyncio.Future[object] = asyncio.ensure_future(asyncio.shield(hung_up))
        verdict_or_hang_up: set[asyncio.Future[object]] = {verdict, hang_up}  # type: ignore[arg-type]
        try:
            await asyncio.wait(verdict_or_hang_up, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hang_up.cancel()
        if not verdict.done():
            why = "hung up during" if hung_up.done() else f"no verdict within {wait:.0f} s of"
            log.info("delivery %s: %s answering-machine detection → answered", job.delivery_id, why)
            return Outcome("answered", provider_ref=unique_id)
        event = verdict.result()
        amd_status = str(event.get(cv.AMD_FIELD_STATUS, ""))
        cause = str(event.get(cv.AMD_FIELD_CAUSE, ""))
        analysis_ms = str(event.get(cv.AMD_FIELD_MS, ""))
        status = "machine" if amd_status == cv.AMD_MACHINE else "answered"
        # One line per call with the verdict, its cause and the delay AMD added: the figures
        # (how many machines, how long people waited) are computed from these.
        log.info(
            "delivery %s: AMD %s (%s) in %s ms → %s", job.delivery_id, amd_status, cause, analysis_ms, status
        )
        if status == "machine":
            # The message was left after the beep: calling again would leave it twice.
            detail = f"answering machine: AMD {cause} in {analysis_ms} ms"
            return Outcome("machine", provider_ref=unique_id, error=detail, retry=False)
        return Outcome("answered", provider_ref=unique_id)

    async def _release_after_hangup(
        self, unique_id: str, lease: TrunkLease, hung_up: asyncio.Future[int | None]
    ) -> None:
        slots = lease.node.slots
        renew_every = max(5.0, slots.lease_ms / 3000)
        self._held_since[unique_id] = asyncio.get_running_loop().time()
        if self._reconciler is None or self._reconciler.done():
            self._reconciler = asyncio.create_task(self._reconcile_loop(), name="voice-lease-reconcile")
        try:
            while True:
                try:
                    await asyncio.wait_for(asyncio.shield(hung_up), renew_every)
                    return
                except TimeoutError:
                    if not await slots.renew(lease.holder):
                        # Redis lost the lease (restarted empty): the call is still up, so
                        # the channel is still taken; a missed hang-up is the reconcile's job.
                        await slots.reinstate(lease.holder)
        finally:
            self._held_since.pop(unique_id, None)
            self._hung_up.pop(unique_id, None)
            self._placed_on.pop(unique_id, None)
            await slots.release(lease.holder)

    async def reconcile_leases(self, node: TrunkNode | None = None) -> list[str]:
        """Release the leases of calls whose channel their node no longer has; their unique ids.

        ``node``: only the calls on that node (after its reconnection); None: every node.
        Only calls held since before the question are judged: a channel that came up after
        it could not be in the answer. The lease itself is released by the waiting task,
        exactly as on a Hangup event (cause unknown).
        """
        gone: list[str] = []
        for each in [node] if node is not None else self.nodes:
            gone += await self._reconcile_node(each)
        return gone

    async def _reconcile_node(self, node: TrunkNode) -> list[str]:
        asked_at = asyncio.get_running_loop().time()
        held = {uid: since for uid, since in self._held_since.items() if self._placed_on.get(uid) is node}
        if not held:
            return []
        alive = await channel_status(node.ami)
        gone = []
        for unique_id, since in held.items():
            hung_up = self._hung_up.get(unique_id)
            if since < asked_at and unique_id not in alive and hung_up is not None and not hung_up.done():
                hung_up.set_result(None)
                gone.append(unique_id)
        if gone:
            self.leases_reconciled += len(gone)
            log.warning(
                "trunk channels on node %s released, their hang-up was missed: %s", node.name, ", ".join(gone)
            )
        return gone

    async def _reconcile_loop(self) -> None:
        while self._held_since:
            await asyncio.sleep(LEASE_RECONCILE_SECONDS)
            for node in self.nodes:
                try:
                    await self._reconcile_node(node)
                except Exception as exc:  # AMI down: that node's next connection reconciles
                    log.info("trunk lease check on node %s skipped: %s", node.name, exc)

    async def reconcile(self, job: DeliveryJob, message: Message) -> Outcome | None:
        """A dead worker's call: never dial again; say what the nodes still know of it."""
        unique_id = self.channel_id(job)
        unreachable: list[str] = []
        for node in self.nodes:
            try:
                channels = await channel_status(node.ami)
            except Exception as exc:
                unreachable.append(f"{node.name}: {exc}" if len(self.nodes) > 1 else str(exc))
                continue
            if unique_id in channels:
                state = str(channels[unique_id].get("ChannelStateDesc", ""))
                return Outcome("answered" if state == "Up" else "sent", provider_ref=unique_id)
        if unreachable:
            return Outcome(
                "sent", provider_ref=unique_id, error=f"outcome unknown (AMI: {'; '.join(unreachable)})"
            )
        return Outcome(
            "sent", provider_ref=unique_id, error="outcome unknown: the worker stopped during the call"
        )

    async def close(self) -> None:
        """Stop following calls and log off AMI (the sender owns its AMI connections)."""
        tasks = [*self._releases, *([self._reconciler] if self._reconciler else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for node in self.nodes:
            await node.ami.close()


def alert_sound(settings: Settings) -> SoundFor:
    """(job, message) → the Asterisk sound to play: the action's recording, else TTS of the text."""

    def sound_for(job: DeliveryJob, message: Message) -> str:
        if job.kind == "alert":
            return resolve_alert_sound(job.action_id, job.language, message.body, settings=settings)
        # An update or result says something new: never the alert's recording.
        return alert_message_sound(job.action_id, job.language, message.body, settings=settings)

    return sound_for


# The machine message: short, so that it fits a voicemail, and whole without the menu.
MACHINE_TEXTS = {
    "nl": "Dit is Burgernet, namens de politie. {title}. "
    "Heeft u iets gezien? Bel dan gratis {free_number}{code}.",
    "en": "This is Burgernet, on behalf of the police. {title}. Have you seen anything? "
    "Then call {free_number}, free of charge{code}.",
}
MACHINE_CODE_TEXTS = {"nl": ", en toets de actiecode {digits}", "en": ", and key the action code {digits}"}


def machine_text(lang: str, title: str, action_code: str | None, free_number: str) -> str:
    """The words left on an answering machine: the action's title, its code (digit by digit,
    so TTS does not read "4821" as a number) and the free number."""
    lang = lang if lang in MACHINE_TEXTS else "nl"
    code = MACHINE_CODE_TEXTS[lang].format(digits=" ".join(action_code)) if action_code else ""
    return MACHINE_TEXTS[lang].format(
        title=title.strip().rstrip("."), free_number=free_number_display(free_number), code=code
    )


def machine_sound(settings: Settings) -> MachineSoundFor:
    """job → the machine message's Asterisk sound: :func:`machine_text` spoken by the same TTS
    as the alert text (kept with the action, made once). The action code is read from the
    database once per action (``message_code`` caches it)."""
    sessions = make_session_factory(make_engine(settings.database_url))

    def sound_for(job: DeliveryJob) -> str:
        with session_scope(sessions) as session:
            code = message_code(session, job.for_action)
        text = machine_text(job.language, job.action_title, code, settings.asterisk.free_number)
        return alert_message_sound(job.action_id, job.language, text, settings=settings)

    return sound_for


def trunk_slots_key(settings: Settings, node: AlertNodeSettings) -> str:
    """One node alone keeps the key it always had; with ``alert_nodes`` each node has its own."""
    if not settings.asterisk.alert_nodes:
        return f"{settings.redis.key_prefix}{TRUNK_SLOTS}"
    return f"{settings.redis.key_prefix}{TRUNK_SLOTS}:{node.name}"


async def create(settings: Settings, client: aioredis.Redis) -> AsteriskVoiceSender:
    b, a = settings.broadcast, settings.asterisk
    clients: list[AmiClient] = []
    nodes: list[TrunkNode] = []
    for node in a.alert_call_nodes():
        slots = SharedSlots(
            client,
            trunk_slots_key(settings, node),
            settings.voice_channels_of(node),
            lease_seconds=b.voice_ring_seconds + 120,
        )
        ami = AmiClient(host=node.ami_host, port=node.ami_port, username=a.ami_username, secret=a.ami_secret)
        clients.append(ami)
        nodes.append(TrunkNode(node.name, ami, slots))
    calls = shared_rate(client, settings, VOICE_CALL_RATE, b.voice_calls_per_second)
    first, *others = nodes
    sender = AsteriskVoiceSender(
        settings,
        first.ami,
        first.slots,
        calls,
        alert_sound(settings),
        node_name=first.name,
        more_nodes=others,
        machine_sound_for=machine_sound(settings) if settings.amd.enabled else None,
        await_amd=settings.amd.enabled,
    )
    for ami in clients:
        await ami.connect()  # keeps retrying in the background when that Asterisk is not up yet
    return sender

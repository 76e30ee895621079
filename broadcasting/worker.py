"""``burgernet worker``: one asyncio process working the broadcast queue.

Run as many as needed, on as many machines as needed (all pointing at the same Redis and
database). Each process:

* fans out new broadcasts from the control stream (recipient selection → delivery rows →
  entries on the per-channel, per-priority streams): an action's alerts, updates and results,
  and a neighbourhood inquiry's e-mails (:mod:`broadcasting.inquiry_mail`);
* works each channel it was started for, up to ``broadcast.worker_concurrency`` deliveries at
  once, AMBER before urgent before information;
* takes over entries of dead workers (idle longer than ``broadcast.claim_idle_seconds``) and
  keeps its own long-running entries (alert calls) fresh so nobody takes them from it;
* moves due retries back onto their streams; what follows each outcome (retry when, done, or
  fall back from voice to SMS) is the outcome's policy (:mod:`burgernet.alert_policies`), the
  panel's over the settings', read at most every ``POLICY_CACHE_SECONDS``;
* beats (:mod:`burgernet.health`, component ``worker``) every ``BEAT_INTERVAL_SECONDS``, but
  only while every dispatching loop (fan-out, one per channel) went round within
  :data:`STUCK_SECONDS`: a stuck loop stops the beat, and the supervisor restarts the worker;
* after a Redis restart (the marker ``bq:built`` is gone) rebuilds the broadcast control from
  the database, once for all workers: consumer groups, progress counts, every delivery still
  queued (the fan-out of each running broadcast is asked for again; it queues only what is
  still ``queued``), and deliveries left ``sending`` longer than ``claim_idle_seconds`` (taken
  over and reconciled, never blindly sent again). The core's part (who was alerted, the
  actions version) is rebuilt too (:class:`burgernet.live.StateRebuild`).

Database work runs in a small thread pool (SQLAlchemy is synchronous); the event loop only
waits on Redis, AMI and the providers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import redis
from redis.exceptions import ResponseError
from sqlalchemy import func, select, update

from broadcasting import inquiry_mail, progress, store
from broadcasting.channels.base import Message, NotesAcceptance, Outcome, Sender
from broadcasting.channels.push_webpush import WebPushSender, urgency_for
from broadcasting.journal import SentJournal
from broadcasting.messages import compose, compose_inquiry_mail, compose_push
from broadcasting.queue import AsyncDeliveryQueue, DeliveryQueue, Entry, QueueKeys
from broadcasting.recipients import closing_word_recipients, select_recipients, with_closing_word
from burgernet import alert_policies, eta, health, night_rules
from burgernet.alert_policies import AlertPolicies, FallBack, Retry
from burgernet.alert_policy_records import current_policies
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.live import AsyncLiveState, LiveKeys, StateRebuild
from burgernet.models import Action, Broadcast, Delivery
from burgernet.push_subscriptions import select_for_area
from burgernet.redis_clients import async_redis_client, redis_client
from burgernet.repositories import action_area
from burgernet.services import Services

log = logging.getLogger(__name__)
T = TypeVar("T")

STALE_CHECK_SECONDS = 5.0
# A broadcast is written in the transaction that asks for it; the nudge to the workers comes
# after the commit and can be lost (Redis down, the process died). Pending broadcasts older
# than the grace period are asked for again this often, by one worker at a time; the same
# sweep closes running broadcasts whose last outcome was written while Redis was away.
PENDING_SWEEP_SECONDS = 10.0
PENDING_GRACE_SECONDS = 5.0
RETRY_CHECK_SECONDS = 1.0
# The outcome policies an admin sets in the panel reach every worker within this long: read
# once per period, not once per delivery.
POLICY_CACHE_SECONDS = 10.0
BLOCK_MS = 1000
# A dispatching loop that has not gone round for this long is stuck: the worker stops beating.
# A channel loop goes round at least every second; one fan-out of a national alert (hundreds
# of thousands of deliveries made in the database) may rightly take a minute or two.
STUCK_SECONDS = 10.0
STUCK_SECONDS_FAN_OUT = 180.0
CONTROL_BUILT = "bq:built"  # under the key prefix: the broadcast control in Redis is complete
_CONTROL_REBUILD_LOCK = "bq:rebuilding"


@dataclass(frozen=True)
class ControlPlan:
    """What an empty Redis needs back for the broadcasts still unfinished in the database."""

    running: list[tuple[int, int, int, int]]  # broadcast id, total, handled, started (epoch ms)
    fan_out: list[int]  # pending and running broadcasts: their fan-out queues what is still queued
    in_doubt: dict[tuple[Channel, int], list[int]]  # (channel, priority) → deliveries left sending


def backoff_seconds(base: float, attempt: int, retry_after: float | None = None) -> float:
    """Wait before attempt ``attempt + 1``: base, 2×base, 4×base… or what the provider asked."""
    wait = base * (2 ** max(0, attempt - 1))
    return max(wait, retry_after or 0.0)


class BroadcastWorker:
    def __init__(
        self,
        context: Services,
        senders: Mapping[Channel, Sender],
        *,
        fan_out: bool = True,
        name: str | None = None,
    ) -> None:
        self.context = context
        self.settings = context.settings
        self.senders = dict(senders)
        self.fan_out = fan_out
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        prefix = self.settings.redis.key_prefix
        self.keys = QueueKeys(prefix)
        self.redis = async_redis_client(self.settings.redis, timeout=10, parser="fast")
        self.queue = AsyncDeliveryQueue(self.redis, self.keys, self.name)
        self.sync_queue = DeliveryQueue(redis_client(self.settings.redis, timeout=10), self.keys)
        self.progress = progress.AsyncProgress(self.redis, prefix)
        self.live = AsyncLiveState(
            self.redis, LiveKeys(prefix), self.settings.redis.alerted_caller_ttl_seconds
        )
        # The words of a broadcast are the same for everyone with one channel and language:
        # rendered once per (broadcast, channel, language), not once per delivery.
        self._messages: dict[tuple[int, Channel, str], Message] = {}
        self._db = ThreadPoolExecutor(max_workers=4, thread_name_prefix="worker-db")
        # Accepted by a provider, written down before the database hears of it (see journal.py).
        self.journal = SentJournal(self.settings.data_dir / "broadcast")
        for sender in self.senders.values():
            if isinstance(sender, NotesAcceptance):
                sender.note_acceptance_with(self.journal.note)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._in_flight: dict[str, Entry] = {}
        self._stopping = asyncio.Event()
        self.sent = 0  # deliveries finished by this process, for logs and tests
        # Dispatching loop name → when it last went round (monotonic): the heartbeat's evidence.
        self._loop_ticks: dict[str, float] = {}
        self._redis_down = False  # a beat failed: logged once per outage
        self.beats = 0
        self.control_rebuilds = 0  # broadcast-control rebuilds this process did
        # Broadcasts just fanned out whose ETA is still to be written down (see _keep_estimate).
        self._estimates_due: dict[int, tuple[int, dict[str, int], night_rules.Hold | None]] = {}
        self.policy_cache_seconds = POLICY_CACHE_SECONDS
        self._policies: AlertPolicies | None = None
        self._policies_read_at = 0.0  # monotonic
        self.fallbacks = 0  # deliveries this process made to replace an alert that did not reach
        self.state_rebuild = StateRebuild(
            self.sync_queue.client,
            LiveKeys(prefix),
            context.sessions,
            self.settings.routing.alerted_window_seconds,
            self.settings.redis.alerted_caller_ttl_seconds,
        )

    # -- life cycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.queue.ensure_groups()
        if self.fan_out:
            # A broadcast whose control entry was lost (Redis restarted empty, the panel died
            # between the insert and the XADD) is asked for again: fan-out is idempotent and a
            # delivery queued twice is still sent once. One worker does this sweep per minute,
            # not every worker that starts.
            if await self.redis.set(f"{self.keys.prefix}bq:sweep", self.name, nx=True, ex=60):
                for broadcast_id in await self._db_call(self._unfinished_broadcasts):
                    await asyncio.to_thread(self.sync_queue.request_fan_out, broadcast_id)
            self._spawn(self._control_loop(), "fan-out")
            self._spawn(self._pending_sweep_loop(), "pending-sweep")
        for channel, sender in self.senders.items():
            if isinstance(sender, WebPushSender):  # pushes go in batches (see _push_loop)
                self._spawn(self._push_loop(sender), f"channel-{channel.value}")
            else:
                self._spawn(self._channel_loop(channel), f"channel-{channel.value}")
        self._spawn(self._retry_loop(), "retries")
        self._spawn(self._keep_alive_loop(), "keep-alive")
        self._spawn(self._pulse_loop(), "pulse")
        log.info("worker %s started: channels %s", self.name, ", ".join(c.value for c in self.senders))

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop taking work, let deliveries in progress finish (up to ``grace_seconds``)."""
        self._stopping.set()
        loops = [t for t in self._tasks if t.get_name().startswith("loop:")]
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for sender in self.senders.values():
            await sender.close()
        self.journal.close()
        await self.redis.aclose()
        self.sync_queue.client.close()
        self._db.shutdown(wait=False)

    def _spawn(self, coroutine: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coroutine)
        task.set_name(f"loop:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _db_call(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, work, *args)

    # -- fan-out -----------------------------------------------------------------------------------------
    def _unfinished_broadcasts(self) -> list[int]:
        with session_scope(self.context.sessions) as session:
            return list(
                session.scalars(select(Broadcast.id).where(Broadcast.status.in_(("pending", "running"))))
            )

    def _forgotten_broadcasts(self) -> list[int]:
        cutoff = datetime.now(UTC) - timedelta(seconds=PENDING_GRACE_SECONDS)
        with session_scope(self.context.sessions) as session:
            return list(
                session.scalars(
                    select(Broadcast.id).where(Broadcast.status == "pending", Broadcast.created_at < cutoff)
                )
            )

    def _finish_settled_broadcasts(self) -> list[int]:
        """Running broadcasts with nothing queued or sending left are done: mark them so."""
        with session_scope(self.context.sessions) as session:
            running = list(session.scalars(select(Broadcast.id).where(Broadcast.status == "running")))
            finished = [bid for bid in running if store.finish_broadcast_if_done(session, bid)]
        for broadcast_id in finished:
            self._refresh_facts(broadcast_id)
        return finished

    async def _pending_sweep_loop(self) -> None:
        """Repair what a lost Redis command left behind, from the database's truth.

        * A pending broadcast nobody asked a worker for (the nudge was lost) is asked for again.
          Asking twice is harmless: a fan-out of a broadcast already running adds nobody twice.
        * A running broadcast whose deliveries are all final is marked done (its last outcome
          was written, but the progress count in Redis never saw it).

        The lock only spares the database; it does not guard correctness.
        """
        lock = f"{self.keys.prefix}bq:pending-sweep"
        while not self._stopping.is_set():
            await asyncio.sleep(PENDING_SWEEP_SECONDS)
            try:
                expiry_ms = max(1, int(PENDING_SWEEP_SECONDS * 1000))
                if not await self.redis.set(lock, self.name, nx=True, px=expiry_ms):
                    continue
                for broadcast_id in await self._db_call(self._forgotten_broadcasts):
                    log.warning("broadcast %s was never handed to a worker: fanning out now", broadcast_id)
                    await asyncio.to_thread(self.sync_queue.request_fan_out, broadcast_id)
                for broadcast_id in await self._db_call(self._finish_settled_broadcasts):
                    log.warning("broadcast %s: every delivery final; marked done by the sweep", broadcast_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pending-broadcast sweep: will try again")

    async def _control_loop(self) -> None:
        streams = [self.keys.control]
        next_stale_check = 0.0
        while not self._stopping.is_set():
            self._loop_ticks["fan-out"] = time.monotonic()
            try:
                entries: list[Entry] = []
                if time.monotonic() >= next_stale_check:
                    next_stale_check = time.monotonic() + STALE_CHECK_SECONDS
                    entries = await self.queue.take_over_stale(streams, self._idle_ms(), 10)
                if not entries:
                    entries = await self.queue.take(streams, 1, BLOCK_MS)
                for entry in entries:
                    await self._fan_out(entry)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._after_loop_error("fan-out loop", exc)

    async def _fan_out(self, entry: Entry) -> None:
        self._in_flight[entry.entry_id] = entry
        try:
            planned = await self._db_call(self._plan_fan_out, entry.value)
            if planned is not None:
                priority, fan = planned
                for channel, ids in fan.queued.items():
                    await asyncio.to_thread(self.sync_queue.enqueue, channel, priority, ids)
                for channel, waiting in fan.held.items():
                    # Night rules: in the delayed set until the quiet window ends (any worker
                    # moves them onto their stream then, as it does with retries).
                    for not_before, ids in waiting:
                        await asyncio.to_thread(
                            self.sync_queue.enqueue_at, channel, priority, ids, not_before.timestamp()
                        )
                log.info(
                    "broadcast %s: %s deliveries (%s new) queued at priority %s, %s held for the night",
                    fan.broadcast_id,
                    sum(len(ids) for ids in fan.queued.values()),
                    fan.created,
                    priority,
                    sum(len(ids) for waiting in fan.held.values() for _due, ids in waiting),
                )
                due = self._estimates_due.pop(fan.broadcast_id, None)
                if due is not None:  # after the enqueue: the estimate never delays an alert
                    await self._db_call(self._keep_estimate, fan.broadcast_id, *due)
            await self.queue.ack(entry)
        finally:
            self._in_flight.pop(entry.entry_id, None)

    def _plan_fan_out(self, broadcast_id: int) -> tuple[int, store.FanOut] | None:
        with session_scope(self.context.sessions) as session:
            broadcast = store.start_fan_out(session, broadcast_id)
            if broadcast is None:
                return None
            action_id = broadcast.action_id
            recipients: dict[Channel, Any]
            held_channels: set[Channel] = set()  # besides the recipients' (the closing word's)
            if action_id is None:
                recipients = inquiry_mail.recipients(session, broadcast)
            else:
                action = session.get(Action, action_id)
                if action is None:
                    return None
                chosen = set(action.channels.split(","))
                if broadcast.kind == "reply":
                    recipients = {}  # its one push delivery was written with it (ask_back)
                elif broadcast.kind == "alert":
                    recipients = dict(select_recipients(session, action_area(action)).by_channel)
                    if Channel.PUSH.value in chosen:
                        # Push goes to app subscriptions, not participants: by coarse cell.
                        recipients[Channel.PUSH] = select_for_area(session, action_area(action))
                else:
                    recipients = dict(store.reached_participants(session, action.id))
                # Only the action's channels: someone who chose none of them is sent nothing
                # and is not counted in the broadcast's total.
                recipients = {channel: ids for channel, ids in recipients.items() if channel.value in chosen}
                if broadcast.kind == "result":
                    # And who phoned about it, once each, whatever the action's channels.
                    word = closing_word_recipients(session, action.id, recipients)
                    recipients = with_closing_word(recipients, word)
                    store.add_caller_deliveries(session, broadcast, word.callers)
                    # The callers' SMS and voice calls wait for the morning like the rest.
                    held_channels.update(word.callers)
            hold = self._night_hold(session, broadcast, [*recipients, *held_channels])
            fan = store.add_deliveries(session, broadcast, recipients, hold)
            priority = broadcast.priority
            total = broadcast.total
            if total == 0:
                store.finish_broadcast_if_done(session, broadcast_id)
            wants_estimate = (
                broadcast.kind in ("alert", "update", "result") and total > 0 and broadcast.estimate is None
            )
            counts = {channel.value: len(ids) for channel, ids in recipients.items() if len(ids)}
        if wants_estimate:  # made once the deliveries are on their way (see _fan_out)
            self._estimates_due[broadcast_id] = (priority, counts, hold)
        progress.start(self.sync_queue.client, self.keys.prefix, broadcast_id, total)
        if action_id is not None:  # the action's page and the dashboard follow its broadcasts
            self.context.live.publish(
                {
                    "type": "broadcast",
                    "broadcast_id": broadcast_id,
                    "action_id": action_id,
                    "total": total,
                    "handled": 0,
                }
            )
        return priority, fan

    def _night_hold(
        self,
        session: Any,
        broadcast: Broadcast | None,
        channels: Sequence[Channel],
        at: datetime | None = None,
    ) -> night_rules.Hold | None:
        """The night rules' hold on an action's broadcast sent ``at`` (default: now; None: all go)."""
        if broadcast is None or broadcast.action_id is None or self.settings.broadcast.quiet_window() is None:
            return None
        action = session.get(Action, broadcast.action_id)
        if action is None:
            return None
        return night_rules.hold_for(
            self.settings.broadcast.quiet_window(),
            action_type=action.action_type,
            urgency=action.urgency,
            kind=broadcast.kind,
            hold_sms=self.settings.broadcast.quiet_hold_sms,
            now=at or datetime.now(UTC),
            channels=channels,
        )

    def _keep_estimate(
        self, broadcast_id: int, priority: int, counts: dict[str, int], hold: night_rules.Hold | None
    ) -> None:
        """Write down the ETA as it stands at the fan-out, to show beside the real times later.
        In a transaction of its own, once the deliveries are queued: an estimate that cannot be
        made never holds up an alert."""
        try:
            held = {channel.value: hold.until for channel in hold.channels} if hold else {}
            with session_scope(self.context.sessions) as session:
                inputs = eta.gather_inputs(
                    session,
                    self.settings,
                    recipients=counts,
                    priority=priority,
                    held_until={c: t for c, t in held.items() if c in counts},
                    exclude_broadcast=broadcast_id,
                )
                session.execute(
                    update(Broadcast)
                    .where(Broadcast.id == broadcast_id, Broadcast.estimate.is_(None))
                    .values(estimate=eta.estimate(inputs).to_json())
                )
        except Exception:
            log.exception("broadcast %s: no estimate made", broadcast_id)

    # -- deliveries ----------------------------------------------------------------------------------------
    def _idle_ms(self) -> int:
        return int(self.settings.broadcast.claim_idle_seconds * 1000)

    async def _channel_loop(self, channel: Channel) -> None:
        streams = self.keys.streams(channel)
        concurrency = self.settings.broadcast.worker_concurrency
        working: set[asyncio.Task[None]] = set()
        next_stale_check = 0.0
        while not self._stopping.is_set():
            self._loop_ticks[f"channel-{channel.value}"] = time.monotonic()
            try:
                if len(working) >= concurrency:
                    # Bounded, so that the loop goes round (and the worker beats) while every
                    # slot holds a long alert call.
                    await asyncio.wait(working, timeout=BLOCK_MS / 1000, return_when=asyncio.FIRST_COMPLETED)
                    continue
                free = concurrency - len(working)
                entries: list[Entry] = []
                if time.monotonic() >= next_stale_check:
                    next_stale_check = time.monotonic() + STALE_CHECK_SECONDS
                    entries = await self.queue.take_over_stale(streams, self._idle_ms(), free)
                if not entries:
                    entries = await self.queue.take(streams, free, BLOCK_MS)
                for entry in entries:
                    self._in_flight[entry.entry_id] = entry
                    task = asyncio.create_task(self._deliver(channel, entry))
                    working.add(task)
                    self._tasks.add(task)
                    task.add_done_callback(working.discard)
                    task.add_done_callback(self._tasks.discard)
                    task.add_done_callback(functools.partial(self._forget, entry.entry_id))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._after_loop_error(f"{channel.value} loop", exc)

    async def _after_loop_error(self, where: str, exc: Exception) -> None:
        if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
            # Redis restarted empty: the streams are gone. The groups come back at once; the
            # entries with the next beat's rebuild.
            log.warning("%s: Redis lost the queues; making the consumer groups again", where)
            with contextlib.suppress(redis.RedisError, OSError):
                await self.queue.ensure_groups()
        elif isinstance(exc, redis.RedisError | OSError):
            log.warning("%s: Redis: %s; will try again", where, exc)
        else:
            log.exception("%s: will try again", where)
        await asyncio.sleep(1)

    # -- push: in batches ---------------------------------------------------------------------------------
    async def _push_loop(self, sender: WebPushSender) -> None:
        """Take up to ``push.batch_size`` push entries at once and work them as one batch.

        One claim, one payload per broadcast and language, one write of the outcomes and one
        acknowledgement per batch: the database and Redis see a few statements per hundreds of
        pushes, so the HTTP round trips (concurrent, over kept-alive connections) set the pace.
        Several batches are in flight, so the next one is claimed while the others are sent.
        """
        channel = Channel.PUSH
        streams = self.keys.streams(channel)
        batch_size = self.settings.push.batch_size
        # Enough batches in flight to keep push.concurrency requests going, plus one being claimed.
        in_flight = max(2, -(-self.settings.push.concurrency // batch_size) + 1)
        working: set[asyncio.Task[None]] = set()
        next_stale_check = 0.0
        while not self._stopping.is_set():
            self._loop_ticks[f"channel-{channel.value}"] = time.monotonic()
            try:
                if len(working) >= in_flight:
                    await asyncio.wait(working, timeout=BLOCK_MS / 1000, return_when=asyncio.FIRST_COMPLETED)
                    continue
                entries: list[Entry] = []
                if time.monotonic() >= next_stale_check:
                    next_stale_check = time.monotonic() + STALE_CHECK_SECONDS
                    entries = await self.queue.take_over_stale(streams, self._idle_ms(), batch_size)
                if not entries:
                    entries = await self.queue.take(streams, batch_size, BLOCK_MS)
                if not entries:
                    continue
                for entry in entries:
                    self._in_flight[entry.entry_id] = entry
                task = asyncio.create_task(self._push_batch(sender, entries))
                working.add(task)
                self._tasks.add(task)
                task.add_done_callback(working.discard)
                task.add_done_callback(self._tasks.discard)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._after_loop_error(f"{channel.value} loop", exc)

    async def _push_batch(self, sender: WebPushSender, entries: list[Entry]) -> None:
        try:
            await self._push_batch_once(sender, entries)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Left unacknowledged: taken over after claim_idle_seconds, like any delivery.
            log.exception("push batch of %s: unexpected error; it will be taken over", len(entries))
        finally:
            for entry in entries:
                self._in_flight.pop(entry.entry_id, None)

    async def _push_batch_once(self, sender: WebPushSender, entries: list[Entry]) -> None:
        # Capacity first, claim second (as for the other channels): waiting deliveries stay queued.
        await sender.acquire_many(len(entries))
        by_delivery = {entry.value: entry for entry in entries}
        targets, skipped, payloads, urgency = await self._db_call(self._claim_push, list(by_delivery))
        done = [by_delivery[i] for i in skipped]
        # In doubt and in the journal: the push service took it before its worker died.
        accepted = {t.delivery_id for t in targets if t.resent and self.journal.find(t.delivery_id)}
        to_send = [t for t in targets if t.delivery_id not in accepted]
        records = [store.PushRecord(t, "sent") for t in targets if t.delivery_id in accepted]
        if to_send:
            # Each accepted push is written down in the step of the event loop its answer arrived
            # in, not when the batch ends: a worker killed half-way through a batch leaves the
            # pushes it did in the journal.
            sent = Outcome("sent")
            records += await sender.send_batch(
                to_send, payloads, urgency, lambda delivery_id: self.journal.note_soon(delivery_id, sent)
            )
        max_attempts = self.settings.broadcast.max_attempts
        finished, retries = await self._db_call(self._record_push, records, max_attempts)
        due = [
            (
                by_delivery[r.target.delivery_id],
                time.time()
                + backoff_seconds(
                    self.settings.broadcast.retry_base_seconds, r.target.attempt, r.retry_after
                ),
            )
            for r in retries
        ]
        retried = {r.target.delivery_id for r in retries}
        done += [by_delivery[r.target.delivery_id] for r in records if r.target.delivery_id not in retried]
        await self.queue.retry_many_later(due)
        try:
            await self.queue.ack_many(done)
        except redis.RedisError:
            log.warning(
                "push batch: %s outcomes written, not acknowledged (Redis); left for takeover", len(done)
            )
        for broadcast_id, count in finished.items():
            self.sent += count
            handled, total = await self.progress.handled(broadcast_id, count)
            action_id = next(t.action_id for t in targets if t.broadcast_id == broadcast_id)
            if handled >= total:
                await self._db_call(self._finish_broadcast, broadcast_id)
            await self.live.publish(
                {
                    "type": "broadcast",
                    "broadcast_id": broadcast_id,
                    "action_id": action_id,
                    "total": total,
                    "handled": handled,
                }
            )

    def _claim_push(
        self, delivery_ids: list[int]
    ) -> tuple[list[store.PushTarget], list[int], dict[int, bytes], dict[int, str]]:
        in_doubt_before = datetime.now(UTC) - timedelta(
            seconds=self.settings.broadcast.claim_idle_seconds / 2
        )
        with session_scope(self.context.sessions) as session:
            targets, skipped = store.claim_push(session, delivery_ids, in_doubt_before)
            payloads: dict[int, bytes] = {}
            urgency: dict[int, str] = {}
            made: dict[tuple[int, str, int | None], tuple[bytes, str]] = {}
            for target in targets:
                key = (target.broadcast_id, target.lang, target.sighting_id)
                if key not in made:
                    action = session.get(Action, target.action_id)
                    kind = urgency_for(action.action_type if action else "", target.kind)
                    made[key] = (compose_push(session, target, self.settings), kind)
                payloads[target.delivery_id], urgency[target.delivery_id] = made[key]
            return targets, skipped, payloads, urgency

    def _record_push(
        self, records: list[store.PushRecord], max_attempts: int
    ) -> tuple[dict[int, int], list[store.PushRecord]]:
        with session_scope(self.context.sessions) as session:
            return store.record_push(session, records, max_attempts)

    def _forget(self, entry_id: str, _task: object) -> None:
        self._in_flight.pop(entry_id, None)

    async def _deliver(self, channel: Channel, entry: Entry) -> None:
        try:
            await self._deliver_once(channel, entry)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Left unacknowledged on purpose: after claim_idle_seconds a worker (maybe this
            # one) takes it over and reconciles it, instead of it being lost.
            log.exception("delivery %s: unexpected error; it will be taken over", entry.value)

    async def _deliver_once(self, channel: Channel, entry: Entry) -> None:
        sender = self.senders[channel]
        # Capacity first, claim second: while it waits for its turn the delivery stays
        # "queued", so closing the action still cancels it.
        permit = await sender.acquire()
        try:
            claim, job, message = await self._db_call(self._claim, entry.value)
        except BaseException:
            await sender.release(permit)
            raise
        if claim in (store.Claim.SKIP, store.Claim.BUSY) or job is None:
            # BUSY: a second entry for a delivery another worker is sending or reconciling
            # right now (a resumed fan-out or the start-up rebuild queued it again): that
            # worker finishes it.
            await sender.release(permit)
            if claim is store.Claim.SKIP and job is not None and job.status in store.NOT_REACHED_STATUSES:
                # Left unacknowledged by the worker that recorded it because the enqueue of its
                # fallback failed: queue that now (a second entry is harmless).
                await self._queue_fallbacks(await self._db_call(self._unqueued_fallbacks, job.delivery_id))
            await self.queue.ack(entry)
            return
        outcome: Outcome | None
        if message is None:
            # Nothing to say any more (an inquiry's link went out meanwhile, or the inquiry
            # closed): the delivery ends as cancelled, and counts as handled.
            await sender.release(permit)
            await self._record(entry, job, Outcome("cancelled", error="nothing to send any more"))
            return
        if claim is store.Claim.IN_DOUBT:
            accepted = self.journal.find(job.delivery_id)
            if accepted is not None:
                outcome = Outcome(accepted.status, provider_ref=accepted.provider_ref)
            else:
                outcome = await sender.reconcile(job, message)
            log.warning(
                "delivery %s was in doubt (worker lost): %s",
                job.delivery_id,
                outcome.status if outcome else "not sent; sending now",
            )
            if outcome is None:
                outcome = await self._send(sender, job, message, permit)
            else:
                await sender.release(permit)
        else:
            outcome = await self._send(sender, job, message, permit)
        await self._record(entry, job, outcome)

    async def _send(
        self, sender: Sender, job: store.DeliveryJob, message: Message, permit: object
    ) -> Outcome:
        outcome = await sender.send(job, message, permit)
        if not isinstance(sender, NotesAcceptance):  # those wrote it down in their own thread already
            self.journal.note(job.delivery_id, outcome)  # no await since the provider's answer
        return outcome

    def _claim(self, delivery_id: int) -> tuple[store.Claim, store.DeliveryJob | None, Message | None]:
        with session_scope(self.context.sessions) as session:
            in_doubt_before = datetime.now(UTC) - timedelta(
                seconds=self.settings.broadcast.claim_idle_seconds / 2
            )
            claim, job = store.claim(session, delivery_id, in_doubt_before)
            if job is None or claim in (store.Claim.SKIP, store.Claim.BUSY):
                return claim, job, None
            if job.for_inquiry is not None:
                # Per delivery: an invitation carries the resident's own link.
                return claim, job, compose_inquiry_mail(session, job, self.settings)
            key = (job.broadcast_id, job.channel, job.language)
            message = self._messages.get(key)
            if message is None:
                if len(self._messages) > 1000:
                    self._messages.clear()
                message = self._messages[key] = compose(session, job, self.settings)
            return claim, job, message

    # -- outcome policies --------------------------------------------------------------------------------
    async def policies(self) -> AlertPolicies:
        """The effective outcome policies (the panel's over the settings'), cached briefly."""
        now = time.monotonic()
        if self._policies is None or now - self._policies_read_at >= self.policy_cache_seconds:
            self._policies_read_at = now  # one reader per period, not one per delivery recorded
            try:
                self._policies = await self._db_call(self._read_policies)
            except Exception:
                log.exception("outcome policies not read; using the last known (or the settings')")
                if self._policies is None:
                    self._policies = alert_policies.from_settings(self.settings.broadcast)
        return self._policies

    def _read_policies(self) -> AlertPolicies:
        with session_scope(self.context.sessions) as session:
            return current_policies(session, self.settings.broadcast)

    async def _queue_fallbacks(self, fallbacks: list[store.Fallback]) -> None:
        for fallback in fallbacks:
            if fallback.not_before is not None and fallback.not_before.timestamp() > time.time():
                # Made inside the quiet window: in the delayed set until it ends.
                await asyncio.to_thread(
                    self.sync_queue.enqueue_at,
                    fallback.channel,
                    fallback.priority,
                    [fallback.delivery_id],
                    fallback.not_before.timestamp(),
                )
            else:
                await asyncio.to_thread(
                    self.sync_queue.enqueue, fallback.channel, fallback.priority, [fallback.delivery_id]
                )

    def _unqueued_fallbacks(self, delivery_id: int) -> list[store.Fallback]:
        with session_scope(self.context.sessions) as session:
            return store.unqueued_fallbacks(session, delivery_id)

    async def _record(self, entry: Entry, job: store.DeliveryJob, outcome: Outcome) -> None:
        decision = alert_policies.decide(
            outcome.status,
            job.attempt,
            outcome.retry,
            await self.policies(),
            channel=job.channel,
            retry_after=outcome.retry_after,
        )
        if isinstance(decision, Retry):
            due = await self._db_call(
                self._requeue, job, outcome.error or outcome.status, decision.in_seconds
            )
            if due is not None:
                await self.queue.retry_later(entry, due)
                log.info(
                    "delivery %s: %s, attempt %s; again in %.0f s",
                    job.delivery_id,
                    outcome.status,
                    job.attempt,
                    due - time.time(),  # the policy's wait, or until the quiet window's end
                )
            else:
                await self.queue.ack(entry)
            return
        fall_back_to = decision.channel if isinstance(decision, FallBack) else None
        fallback: store.Fallback | None = None
        if fall_back_to is None:
            finished = await self._db_call(self._finish, job, outcome)
        else:
            finished, fallback = await self._db_call(self._finish_falling_back, job, outcome, fall_back_to)
        progress_now: tuple[int, int] | None = None
        if fallback is not None:
            self.fallbacks += 1
            log.info(
                "delivery %s: %s after %s attempt(s); falls back to %s delivery %s",
                job.delivery_id,
                outcome.status,
                job.attempt,
                fallback.channel.value,
                fallback.delivery_id,
            )
            # The total first (with this delivery's handled count, in one step), so the
            # broadcast is never seen complete while its fallback waits; then the queue. If
            # either fails the entry stays unacknowledged: its takeover finds this delivery
            # final and queues the fallback again (_deliver_once).
            progress_now = await self.progress.handled(job.broadcast_id, added=1)
            try:
                await self._queue_fallbacks([fallback])
            except redis.RedisError:
                log.warning(
                    "delivery %s: fallback %s not queued (Redis); left for takeover",
                    job.delivery_id,
                    fallback.delivery_id,
                )
                return
        try:
            await self.queue.ack(entry)
        except redis.RedisError:
            # The outcome is written: whoever takes the entry over finds it final and acks it.
            log.warning(
                "delivery %s: %s, not acknowledged (Redis); left for takeover",
                job.delivery_id,
                outcome.status,
            )
        if not finished:
            return
        self.sent += 1
        if outcome.status in store.REACHED_STATUSES and job.for_action is not None and job.participant_id:
            # A participant who calls the free number back now reaches this action first (a
            # caller's number told the closing word is kept for that delivery only).
            await self.live.mark_alerted(job.phone_e164, job.for_action, time.time())
        handled, total = progress_now or await self.progress.handled(job.broadcast_id)
        if handled >= total:
            await self._db_call(self._finish_broadcast, job.broadcast_id)
        if job.for_action is not None and (handled >= total or handled % max(1, total // 100) == 0):
            await self.live.publish(
                {
                    "type": "broadcast",
                    "broadcast_id": job.broadcast_id,
                    "action_id": job.for_action,
                    "total": total,
                    "handled": handled,
                }
            )

    def _requeue(self, job: store.DeliveryJob, error: str, in_seconds: float) -> float | None:
        """Back to queued for another try in ``in_seconds``; when that try may go (epoch
        seconds), or None when the delivery was not this worker's to requeue. A retry that would
        ring inside the night rules' quiet window waits for its end, as the broadcast would."""
        due = time.time() + in_seconds
        with session_scope(self.context.sessions) as session:
            if not store.requeue(session, job.delivery_id, error=error):
                return None
            if job.for_inquiry is not None:
                inquiry_mail.record_retry(session, job, error)
                return due
            broadcast = session.get(Broadcast, job.broadcast_id)
            hold = self._night_hold(session, broadcast, [job.channel], at=datetime.fromtimestamp(due, UTC))
            held_until = store.hold_one(session, job.broadcast_id, job.delivery_id, hold)
            return max(due, held_until.timestamp()) if held_until is not None else due

    def _finish(self, job: store.DeliveryJob, outcome: Outcome) -> bool:
        with session_scope(self.context.sessions) as session:
            return self._write_outcome(session, job, outcome)

    def _finish_falling_back(
        self, job: store.DeliveryJob, outcome: Outcome, channel: Channel
    ) -> tuple[bool, store.Fallback | None]:
        """Record the outcome and make the ``channel`` delivery that replaces this one, in one
        transaction (none when the participant cannot get it, see store.add_fallback)."""
        with session_scope(self.context.sessions) as session:
            finished = self._write_outcome(session, job, outcome)
            if not finished:
                return False, None
            hold = self._night_hold(session, session.get(Broadcast, job.broadcast_id), [channel])
            return True, store.add_fallback(session, job.delivery_id, channel, hold)

    def _write_outcome(self, session: Any, job: store.DeliveryJob, outcome: Outcome) -> bool:
        finished = store.finish(
            session,
            job.delivery_id,
            outcome.status,
            provider_ref=outcome.provider_ref,
            error=outcome.error,
        )
        if finished and job.for_inquiry is not None:
            # In the same transaction: the link (or the follow-up's figures) follows the e-mail.
            refused = outcome.status == "failed" and not outcome.retry
            inquiry_mail.record_outcome(session, job, outcome.status, outcome.error, refused=refused)
        return finished

    def _finish_broadcast(self, broadcast_id: int) -> bool:
        with session_scope(self.context.sessions) as session:
            done = store.finish_broadcast_if_done(session, broadcast_id)
        if done:
            self._refresh_facts(broadcast_id)
        return done

    def _refresh_facts(self, broadcast_id: int) -> None:
        """The moment its action's figures are final (best-effort: the periodic refresh catches up)."""
        try:
            self.context.facts.refresh_for_broadcast(broadcast_id)
        except Exception:
            log.exception("broadcast %s: action figures not refreshed now", broadcast_id)

    # -- heartbeat and rebuild -----------------------------------------------------------------------------
    def stuck_loops(self, now: float | None = None) -> list[str]:
        """Dispatching loops that have not gone round within STUCK_SECONDS."""
        now = time.monotonic() if now is None else now
        return sorted(
            name
            for name, at in self._loop_ticks.items()
            if now - at > (STUCK_SECONDS_FAN_OUT if name == "fan-out" else STUCK_SECONDS)
        )

    async def _pulse_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.pulse()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker pulse failed; next beat in %s s", health.BEAT_INTERVAL_SECONDS)
            await asyncio.sleep(health.BEAT_INTERVAL_SECONDS)

    async def pulse(self) -> None:
        """Beat if every dispatching loop is alive; rebuild Redis state it lost. Never raises on
        Redis trouble (logged once per outage)."""
        stuck = self.stuck_loops()
        if stuck:
            log.error("worker loops stuck (%s): not beating, so the supervisor restarts me", ", ".join(stuck))
            return
        details = {
            "channels": ",".join(sorted(c.value for c in self.senders)),
            "in_flight": str(len(self._in_flight)),
        }
        try:
            await asyncio.wait_for(
                health.beat_async(self.redis, self.keys.prefix, health.WORKER, details),
                health.BEAT_INTERVAL_SECONDS,
            )
            self.beats += 1
            if self._redis_down:
                log.info("heartbeat: Redis is back")
                self._redis_down = False
            if not await asyncio.to_thread(self.state_rebuild.built):
                await asyncio.to_thread(self.state_rebuild.ensure, self.name)
            if not await self.redis.exists(f"{self.keys.prefix}{CONTROL_BUILT}"):
                await self.rebuild_control()
        except (OSError, TimeoutError, redis.RedisError) as exc:
            if not self._redis_down:
                log.warning("Redis unreachable (%s): working on; beating again when it is back", exc)
            self._redis_down = True

    async def rebuild_control(self) -> bool:
        """Put the broadcast control back into an empty Redis from the database; False when
        another worker does it (or did it) already."""
        lock = f"{self.keys.prefix}{_CONTROL_REBUILD_LOCK}"
        if not await self.redis.set(lock, self.name, nx=True, ex=120):
            return False
        try:
            await self.queue.ensure_groups()
            plan = await self._db_call(self._control_from_database)
            for broadcast_id, total, handled, started_ms in plan.running:
                await asyncio.to_thread(
                    progress.restore,
                    self.sync_queue.client,
                    self.keys.prefix,
                    broadcast_id,
                    total,
                    handled,
                    started_ms,
                )
            for broadcast_id in plan.fan_out:
                await asyncio.to_thread(self.sync_queue.request_fan_out, broadcast_id)
            for (channel, priority), ids in plan.in_doubt.items():
                await asyncio.to_thread(self.sync_queue.enqueue, channel, priority, ids)
            await self.redis.set(f"{self.keys.prefix}{CONTROL_BUILT}", f"{time.time():.3f} {self.name}")
        finally:
            await self.redis.delete(lock)
        self.control_rebuilds += 1
        log.warning(
            "broadcast control rebuilt from the database: %s broadcasts fanned out again, %s in doubt",
            len(plan.fan_out),
            sum(len(ids) for ids in plan.in_doubt.values()),
        )
        return True

    def _control_from_database(self) -> ControlPlan:
        idle_cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.broadcast.claim_idle_seconds)
        with session_scope(self.context.sessions) as session:
            unfinished = session.execute(
                select(
                    Broadcast.id, Broadcast.status, Broadcast.total, Broadcast.started_at, Broadcast.priority
                )
                .where(Broadcast.status.in_(("pending", "running")))
                .order_by(Broadcast.priority, Broadcast.id)
            ).all()
            running = []
            for broadcast_id, status, total, started_at, _priority in unfinished:
                if status != "running":
                    continue
                handled = session.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(Delivery.broadcast_id == broadcast_id, Delivery.status.in_(store.FINAL_STATUSES))
                )
                started = started_at or datetime.now(UTC)
                if started.tzinfo is None:  # SQLite gives naive datetimes; they were stored as UTC
                    started = started.replace(tzinfo=UTC)
                running.append((broadcast_id, int(total), int(handled or 0), int(started.timestamp() * 1000)))
            in_doubt: dict[tuple[Channel, int], list[int]] = {}
            priorities = {row[0]: row[4] for row in unfinished}
            for delivery_id, broadcast_id, channel in session.execute(
                select(Delivery.id, Delivery.broadcast_id, Delivery.channel).where(
                    Delivery.broadcast_id.in_(list(priorities)),
                    Delivery.status == "sending",
                    Delivery.sending_at < idle_cutoff,
                )
            ):
                in_doubt.setdefault((Channel(channel), priorities[broadcast_id]), []).append(delivery_id)
        return ControlPlan(running, [row[0] for row in unfinished], in_doubt)

    # -- housekeeping ----------------------------------------------------------------------------------------
    async def _retry_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.queue.release_due(time.time())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retry loop: will try again")
            await asyncio.sleep(RETRY_CHECK_SECONDS)

    async def _keep_alive_loop(self) -> None:
        interval = max(0.5, self.settings.broadcast.claim_idle_seconds / 3)
        while not self._stopping.is_set():
            await asyncio.sleep(interval)
            try:
                await self.queue.keep_alive(list(self._in_flight.values()))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("keep-alive: will try again")

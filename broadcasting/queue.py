"""The delivery queue: Redis Streams with one consumer group, shared by every worker.

Why Streams: entries stay in the stream's pending list until a worker acknowledges them, so a
worker killed mid-send loses nothing — another worker takes its entries over with XAUTOCLAIM
once they have been idle ``claim_idle_seconds``. Entries carry only a delivery id; the database
(``broadcasting.store``) decides whether it still needs sending, so an entry seen twice never
becomes two messages.

Layout (prefix ``bn:``):

* ``bn:bq:<channel>:p<priority>`` — one stream per channel and priority (0 AMBER, 1 urgent,
  2 information); a worker reads the lower numbers first;
* ``bn:bq:control`` — broadcasts waiting for their fan-out (recipient selection);
* ``bn:bq:retry`` — a sorted set of deliveries waiting for their next attempt (score = due
  time); a Lua script moves due ones back into their stream atomically, so two workers never
  both move one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from burgernet.domain import Channel

GROUP = "workers"
PRIORITIES = (0, 1, 2)
CONTROL = "control"
# Ids per script call: big enough to save round trips, small enough that Redis is never busy
# with one for more than a few milliseconds (the free number reads Redis on every call).
_ENQUEUE_CHUNK = 500

# Move due retries back to their streams: ZRANGEBYSCORE + ZREM + XADD in one atomic step.
_RELEASE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local sep = string.find(member, '|', 1, true)
    local stream = string.sub(member, 1, sep - 1)
    local delivery = string.sub(member, sep + 1)
    redis.call('XADD', stream, '*', 'd', delivery)
  end
end
return #due
"""


_ADD_MANY = """
for _, delivery in ipairs(ARGV) do
  redis.call('XADD', KEYS[1], '*', 'd', delivery)
end
return #ARGV
"""


@dataclass(frozen=True)
class QueueKeys:
    prefix: str = "bn:"

    def stream(self, channel: Channel | str, priority: int) -> str:
        return f"{self.prefix}bq:{Channel(channel).value}:p{priority}"

    def streams(self, channel: Channel | str) -> list[str]:
        return [self.stream(channel, priority) for priority in PRIORITIES]

    @property
    def control(self) -> str:
        return f"{self.prefix}bq:{CONTROL}"

    @property
    def retry(self) -> str:
        return f"{self.prefix}bq:retry"

    def all_streams(self) -> list[str]:
        return [self.control] + [s for channel in Channel for s in self.streams(channel)]


@dataclass(frozen=True)
class Entry:
    """One queue entry taken by a worker: acknowledge it when the work is recorded."""

    stream: str
    entry_id: str
    value: int  # a delivery id, or a broadcast id on the control stream


def _ensure_group_sync(client: redis.Redis, stream: str) -> None:
    try:
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class DeliveryQueue:
    """The producer side (panel, CLI, the fan-out in a worker): synchronous redis-py."""

    def __init__(self, client: redis.Redis, keys: QueueKeys) -> None:
        self.client = client
        self.keys = keys
        self._add_many = client.register_script(_ADD_MANY)

    def ensure_groups(self) -> None:
        for stream in self.keys.all_streams():
            _ensure_group_sync(self.client, stream)

    def enqueue(self, channel: Channel, priority: int, delivery_ids: Iterable[int]) -> int:
        """Append delivery ids to their stream, one entry each; returns how many.

        A Lua script adds a chunk of ids per round trip: the client would otherwise spend
        most of a big fan-out encoding one XADD command per delivery.
        """
        stream = self.keys.stream(channel, priority)
        ids = [str(delivery_id) for delivery_id in delivery_ids]
        for start in range(0, len(ids), _ENQUEUE_CHUNK):
            self._add_many(keys=[stream], args=ids[start : start + _ENQUEUE_CHUNK])
        return len(ids)

    def request_fan_out(self, broadcast_id: int) -> None:
        self.client.xadd(self.keys.control, {"d": str(broadcast_id)})

    def enqueue_at(
        self, channel: Channel, priority: int, delivery_ids: Iterable[int], due_epoch: float
    ) -> int:
        """Put delivery ids in the delayed set (as a retry waits) to go onto their stream at
        ``due_epoch``: a delivery the night rules hold. Adding one again only sets its time."""
        stream = self.keys.stream(channel, priority)
        members = [f"{stream}|{delivery_id}" for delivery_id in delivery_ids]
        for start in range(0, len(members), _ENQUEUE_CHUNK):
            chunk = members[start : start + _ENQUEUE_CHUNK]
            self.client.zadd(self.keys.retry, dict.fromkeys(chunk, due_epoch))
        return len(members)


class AsyncDeliveryQueue:
    """The consumer side (``burgernet worker``): redis.asyncio, one consumer name per process."""

    def __init__(self, client: aioredis.Redis, keys: QueueKeys, consumer: str) -> None:
        self.client = client
        self.keys = keys
        self.consumer = consumer
        self._release_due = client.register_script(_RELEASE_DUE)

    async def ensure_groups(self) -> None:
        for stream in self.keys.all_streams():
            try:
                await self.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def take(self, streams: Sequence[str], count: int, block_ms: int) -> list[Entry]:
        """New entries from the first stream (in priority order) that has any.

        Without a waiting entry it blocks up to ``block_ms`` on all of them together.
        """
        for stream in streams:
            found = await self._read({stream: ">"}, count, None)
            if found:
                return found
        if block_ms <= 0:
            return []
        return await self._read(dict.fromkeys(streams, ">"), count, block_ms)

    async def _read(self, streams: dict[str, str], count: int, block_ms: int | None) -> list[Entry]:
        answer: Any = await self.client.xreadgroup(
            GROUP,
            self.consumer,
            streams,  # type: ignore[arg-type]
            count=count,
            block=block_ms,
        )
        entries: list[Entry] = []
        for stream, items in answer or []:
            name = stream.decode() if isinstance(stream, bytes) else stream
            for entry_id, fields in items:
                entries.append(_entry(name, entry_id, fields))
        return entries

    async def take_over_stale(self, streams: Sequence[str], min_idle_ms: int, count: int) -> list[Entry]:
        """Entries another consumer took but left unacknowledged for ``min_idle_ms``: ours now."""
        entries: list[Entry] = []
        for stream in streams:
            answer = await self.client.xautoclaim(
                stream, GROUP, self.consumer, min_idle_ms, "0-0", count=count
            )
            for entry_id, fields in answer[1]:
                if fields:  # an entry deleted meanwhile comes back without fields
                    entries.append(_entry(stream, entry_id, fields))
            if len(entries) >= count:
                break
        return entries

    async def keep_alive(self, entries: Sequence[Entry]) -> None:
        """Reset the idle time of entries still being worked on (a long alert call)."""
        by_stream: dict[str, list[Any]] = {}
        for entry in entries:
            by_stream.setdefault(entry.stream, []).append(entry.entry_id)
        for stream, ids in by_stream.items():
            await self.client.xclaim(stream, GROUP, self.consumer, 0, ids, justid=True)

    async def ack(self, entry: Entry) -> None:
        # Deleted as well: acknowledged entries would otherwise stay in the stream for ever.
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(entry.stream, GROUP, entry.entry_id)
            pipe.xdel(entry.stream, entry.entry_id)
            await pipe.execute()

    async def retry_later(self, entry: Entry, due_epoch: float) -> None:
        """Acknowledge now and put the delivery back on its stream at ``due_epoch``."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zadd(self.keys.retry, {f"{entry.stream}|{entry.value}": due_epoch})
            pipe.xack(entry.stream, GROUP, entry.entry_id)
            pipe.xdel(entry.stream, entry.entry_id)
            await pipe.execute()

    async def ack_many(self, entries: Sequence[Entry]) -> None:
        """Acknowledge (and delete) a batch of entries in one round trip."""
        if not entries:
            return
        by_stream: dict[str, list[str]] = {}
        for entry in entries:
            by_stream.setdefault(entry.stream, []).append(entry.entry_id)
        async with self.client.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():  # one XACK and one XDEL per stream
                pipe.xack(stream, GROUP, *ids)
                pipe.xdel(stream, *ids)
            await pipe.execute()

    async def retry_many_later(self, due: Sequence[tuple[Entry, float]]) -> None:
        """:meth:`retry_later` for a batch, in one round trip."""
        if not due:
            return
        async with self.client.pipeline(transaction=True) as pipe:
            for entry, due_epoch in due:
                pipe.zadd(self.keys.retry, {f"{entry.stream}|{entry.value}": due_epoch})
                pipe.xack(entry.stream, GROUP, entry.entry_id)
                pipe.xdel(entry.stream, entry.entry_id)
            await pipe.execute()

    async def release_due(self, now_epoch: float, limit: int = 1000) -> int:
        return int(await self._release_due(keys=[self.keys.retry], args=[now_epoch, limit]))


def _entry(stream: str, entry_id: bytes | str, fields: dict[bytes, bytes] | dict[str, str]) -> Entry:
    raw = fields.get(b"d") if b"d" in fields else fields.get("d")  # type: ignore[call-overload]
    value = raw.decode() if isinstance(raw, bytes) else str(raw)
    return Entry(stream, entry_id.decode() if isinstance(entry_id, bytes) else entry_id, int(value))

"""Rate limits shared by every worker on every machine, kept in Redis.

* :class:`SharedRate` — at most N sends per second for a provider (SMS, e-mail, call set-up),
  as a GCRA ("virtual scheduling") in one Lua script: each send books the next free slot, so
  ten workers together still send N per second, evenly spaced, not 10 × N.
* :class:`SharedSlots` — at most N things at once (voice: the trunk's concurrent channels).
  Each holder is a member of a sorted set scored by its lease expiry, so a worker that dies
  holding slots frees them when the lease runs out instead of blocking the trunk for ever.

Both use Redis' own clock (``TIME``) so that workers whose clocks differ agree.
"""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis

# Returns 0 when the caller may go now, else milliseconds to wait before asking again.
_BOOK_SLOT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + tonumber(now_parts[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - (burst - 1) * interval
if allow_at > now then return math.ceil(allow_at - now) end
local new_tat = tat + interval * tonumber(ARGV[3] or '1')
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return 0
"""

# KEYS[1] the holders' zset; ARGV: limit, holder id, lease ms. 1 = acquired, 0 = full.
_ACQUIRE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + tonumber(now_parts[2]) / 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
  return 1
end
return 0
"""

# Extend a lease still held; 0 when it had already expired (and may have been given away).
_RENEW = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + tonumber(now_parts[2]) / 1000
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  return 1
end
return 0
"""


class SharedRate:
    def __init__(self, client: aioredis.Redis, key: str, per_second: float, burst: int = 1) -> None:
        if per_second <= 0:
            raise ValueError("a rate must be above zero")
        self.key = key
        self.interval_ms = 1000.0 / per_second
        self.burst = max(1, burst)
        self._book = client.register_script(_BOOK_SLOT)

    async def wait_turn(self, count: int = 1) -> None:
        """Return when this caller may send ``count`` (one, or a batch of pushes); waits as long
        as the shared rate demands. A batch books its ``count`` slots at once: the next caller
        waits until they have passed, so the rate holds on average over a batch's length."""
        while True:
            wait_ms = int(
                await self._book(keys=[self.key], args=[self.interval_ms, self.burst, max(1, count)])
            )
            if wait_ms <= 0:
                return
            await asyncio.sleep(wait_ms / 1000)


class SharedSlots:
    def __init__(self, client: aioredis.Redis, key: str, limit: int, lease_seconds: float) -> None:
        if limit < 1:
            raise ValueError("at least one slot is needed")
        self.key = key
        self.limit = limit
        self.lease_ms = int(lease_seconds * 1000)
        self._client = client
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)

    async def try_acquire(self) -> str | None:
        holder = uuid.uuid4().hex
        got = await self._acquire(keys=[self.key], args=[self.limit, holder, self.lease_ms])
        return holder if int(got) == 1 else None

    async def acquire(self, poll_seconds: float = 0.2) -> str:
        while True:
            holder = await self.try_acquire()
            if holder is not None:
                return holder
            await asyncio.sleep(poll_seconds)

    async def renew(self, holder: str) -> bool:
        return int(await self._renew(keys=[self.key], args=[holder, self.lease_ms])) == 1

    async def reinstate(self, holder: str) -> None:
        """Hold again a lease Redis lost (restarted empty) while its channel is still in use.

        Over the limit if need be: the channel is taken for real, whatever Redis forgot.
        """
        seconds, micros = await self._client.time()
        await self._client.zadd(self.key, {holder: seconds * 1000 + micros / 1000 + self.lease_ms})

    async def release(self, holder: str) -> None:
        await self._client.zrem(self.key, holder)

    async def in_use(self) -> int:
        """Leases not yet expired (a dead worker's expired lease no longer counts)."""
        seconds, micros = await self._client.time()
        return int(await self._client.zcount(self.key, seconds * 1000 + micros / 1000, "+inf"))

"""Broadcast progress in Redis: how many deliveries are handled and when 50/90/100 % was reached.

The database holds the authoritative counts per status (``store.counts``); Redis holds what is
cheap to keep there and expensive to compute later — the moment each milestone was crossed —
and tells the panel through the live-feed channel. One hash per broadcast,
``bn:bp:<id>``: ``total``, ``started`` (epoch ms, Redis clock), ``handled``, ``t50``/``t90``/
``t100`` (ms after the start). A Lua script bumps the count and stamps milestones atomically,
so concurrent workers never stamp one twice or miss one.

The total is the broadcast's deliveries (``broadcasts.total``): set by the fan-out, and raised
by one for each fallback delivery (a voice alert that did not reach its participant goes out
by SMS, :func:`broadcasting.store.add_fallback`) in the same script call that counts the voice
delivery handled, so handled never reaches the total while a fallback is still to be sent.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
import redis.asyncio as aioredis

MILESTONES = (50, 90, 100)

_START = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
redis.call('HSETNX', KEYS[1], 'started', now)
redis.call('HSETNX', KEYS[1], 'handled', 0)
redis.call('HSET', KEYS[1], 'total', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return now
"""

_HANDLED = """
local added = tonumber(ARGV[2] or '0')
if added > 0 then
  redis.call('HINCRBY', KEYS[1], 'total', added)
end
local handled = redis.call('HINCRBY', KEYS[1], 'handled', tonumber(ARGV[1] or '1'))
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
local started = tonumber(redis.call('HGET', KEYS[1], 'started') or '0')
if total > 0 and started > 0 then
  local now_parts = redis.call('TIME')
  local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
  for _, pct in ipairs({50, 90, 100}) do
    if handled * 100 >= pct * total then
      redis.call('HSETNX', KEYS[1], 't' .. pct, now - started)
    end
  end
end
return {handled, total}
"""

_RETENTION_SECONDS = 30 * 86400


@dataclass(frozen=True)
class ProgressSnapshot:
    total: int
    handled: int
    # Milliseconds from the start of the fan-out to each milestone, when reached.
    milestones_ms: dict[int, int]


def progress_key(prefix: str, broadcast_id: int) -> str:
    return f"{prefix}bp:{broadcast_id}"


def start(client: redis.Redis, prefix: str, broadcast_id: int, total: int) -> None:
    client.eval(_START, 1, progress_key(prefix, broadcast_id), total, _RETENTION_SECONDS)


def read(client: redis.Redis, prefix: str, broadcast_id: int) -> ProgressSnapshot | None:
    raw = client.hgetall(progress_key(prefix, broadcast_id))
    if not raw:
        return None
    fields = {k.decode(): int(v) for k, v in raw.items()}  # type: ignore[union-attr]
    return ProgressSnapshot(
        total=fields.get("total", 0),
        handled=fields.get("handled", 0),
        milestones_ms={pct: fields[f"t{pct}"] for pct in MILESTONES if f"t{pct}" in fields},
    )


def restore(
    client: redis.Redis, prefix: str, broadcast_id: int, total: int, handled: int, started_ms: int
) -> None:
    """Put back a running broadcast's progress from the database (Redis restarted empty).

    The milestones already passed are lost; those still ahead are stamped as usual.
    """
    key = progress_key(prefix, broadcast_id)
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"total": total, "handled": handled, "started": started_ms})
        pipe.expire(key, _RETENTION_SECONDS)
        pipe.execute()


class AsyncProgress:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.prefix = prefix
        self._handled = client.register_script(_HANDLED)

    async def handled(self, broadcast_id: int, count: int = 1, *, added: int = 0) -> tuple[int, int]:
        """Count one more delivery handled (or ``count``: a batch of pushes); returns (handled, total).

        ``added``: deliveries made meanwhile for this broadcast (a voice alert's SMS fallback),
        counted into the total in the same step, *before* the handled count is compared with
        it: the 100 % (and the broadcast's end) is never announced while the fallback waits.
        """
        handled, total = await self._handled(
            keys=[progress_key(self.prefix, broadcast_id)], args=[count, added]
        )
        return int(handled), int(total)

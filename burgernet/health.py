"""Heartbeats and restarts in Redis: how the processes of one machine tell each other they live.

Contract between the long-running processes and the supervisor (``burgernet run``) and the
panel's system status:

* ``<prefix>health:<component>`` — a hash written by the component itself from its *main
  loop* (a beat from a side thread would prove nothing), at least every
  :data:`BEAT_INTERVAL_SECONDS`, expiring after :data:`BEAT_TTL_SECONDS`. Fields: ``at``
  (epoch seconds), ``pid`` and component-specific details (``ami``: connected|disconnected for
  serve). A missing or stale beat means the component is stuck or gone.
* ``<prefix>health:restarts`` — a capped list (newest first) of JSON lines the supervisor
  writes when it restarts a child: ``{"at", "component", "reason", "attempt", "backoff_s"}``.

The names of the components are constants here, so a typo cannot make a beat invisible.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Final

import redis
import redis.asyncio as aioredis

SERVE: Final = "serve"
WORKER: Final = "worker"
PANEL: Final = "panel"
SUPERVISOR: Final = "supervisor"
COMPONENTS: Final = (SERVE, WORKER, PANEL, SUPERVISOR)
# The second FastAGI server beside serve (`burgernet serve --standby`): probed, restarted and
# listed among the restarts like the others, but it has no heartbeat of its own.
SERVE_STANDBY: Final = "serve_standby"

BEAT_INTERVAL_SECONDS: Final = 2.0
BEAT_TTL_SECONDS: Final = 15
RESTARTS_KEPT: Final = 200


def beat_key(prefix: str, component: str) -> str:
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}")
    return f"{prefix}health:{component}"


def restarts_key(prefix: str) -> str:
    return f"{prefix}health:restarts"


def _beat_fields(details: dict[str, str] | None) -> dict[Any, Any]:
    fields: dict[Any, Any] = {"at": f"{time.time():.3f}", "pid": str(os.getpid())}
    fields.update(details or {})
    return fields


def beat(client: redis.Redis, prefix: str, component: str, details: dict[str, str] | None = None) -> None:
    key = beat_key(prefix, component)
    pipe = client.pipeline()
    pipe.delete(key)  # details that no longer apply do not linger
    pipe.hset(key, mapping=_beat_fields(details))
    pipe.expire(key, BEAT_TTL_SECONDS)
    pipe.execute()


async def beat_async(
    client: aioredis.Redis, prefix: str, component: str, details: dict[str, str] | None = None
) -> None:
    key = beat_key(prefix, component)
    async with client.pipeline() as pipe:
        pipe.delete(key)
        pipe.hset(key, mapping=_beat_fields(details))
        pipe.expire(key, BEAT_TTL_SECONDS)
        await pipe.execute()


@dataclass(frozen=True)
class Beat:
    component: str
    at: float
    pid: int
    details: dict[str, str]

    def age(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.at


def read_beat(client: redis.Redis, prefix: str, component: str) -> Beat | None:
    raw: dict[Any, Any] = client.hgetall(beat_key(prefix, component))
    if not raw:
        return None
    fields = {_text(k): _text(v) for k, v in raw.items()}
    try:
        at, pid = float(fields.pop("at")), int(fields.pop("pid"))
    except (KeyError, ValueError):
        return None
    return Beat(component, at, pid, fields)


def record_restart(
    client: redis.Redis, prefix: str, component: str, reason: str, attempt: int, backoff_s: float
) -> None:
    line = json.dumps(
        {
            "at": time.time(),
            "component": component,
            "reason": reason,
            "attempt": attempt,
            "backoff_s": backoff_s,
        }
    )
    pipe = client.pipeline()
    pipe.lpush(restarts_key(prefix), line)
    pipe.ltrim(restarts_key(prefix), 0, RESTARTS_KEPT - 1)
    pipe.execute()


def recent_restarts(client: redis.Redis, prefix: str, limit: int = 20) -> list[dict[str, Any]]:
    lines: list[Any] = client.lrange(restarts_key(prefix), 0, limit - 1)
    found = []
    for line in lines:
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

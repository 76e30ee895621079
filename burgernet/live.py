"""Live state in Redis: centralist presence, the active-action cache, who was alerted, counters.

Key layout (all under ``settings.redis.key_prefix``, default ``bn:``):

=============================  =====================================================================
``actions:version``            integer, bumped on every action change (start, close, area edit)
``actions:active``             JSON routing snapshot (active actions + centralists) tagged with
                               the version it was built from, so a stale fill is never trusted
``presence``                   hash endpoint → available | busy | offline (from AMI device state)
``alerted:<e164>``             sorted set action id → alert time (epoch s), expires after the window
``counter:<name>``             integers (calls per action, deliveries, ...)
``events``                     pub/sub channel for the panel's live feed (JSON messages)
=============================  =====================================================================

The routing core never sees Redis: these adapters hand it plain routing dataclasses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from shapely.geometry import mapping, shape

from routing import model as rm


@dataclass(frozen=True)
class LiveKeys:
    prefix: str = "bn:"

    @property
    def actions_version(self) -> str:
        return f"{self.prefix}actions:version"

    @property
    def actions_cache(self) -> str:
        return f"{self.prefix}actions:active"

    @property
    def presence(self) -> str:
        return f"{self.prefix}presence"

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    def alerted(self, phone_e164: str) -> str:
        return f"{self.prefix}alerted:{phone_e164}"

    def counter(self, name: str) -> str:
        return f"{self.prefix}counter:{name}"


# --- codec for the active-action cache -----------------------------------------------------------
def _area_to_json(area: rm.Area) -> dict[str, Any]:
    if isinstance(area, rm.CircleArea):
        return {"kind": "circle", "lon": area.centre.lon, "lat": area.centre.lat, "radius_m": area.radius_m}
    if isinstance(area, rm.PolygonArea):
        return {"kind": "polygon", "geometry": mapping(area.geometry)}
    if isinstance(area, rm.PostcodeArea):
        return {"kind": "postcodes", "postcodes": sorted(area.postcodes)}
    return {"kind": "national"}


def _area_from_json(data: dict[str, Any]) -> rm.Area:
    kind = data["kind"]
    if kind == "circle":
        return rm.CircleArea(rm.Location(data["lon"], data["lat"]), data["radius_m"])
    if kind == "polygon":
        return rm.PolygonArea(shape(data["geometry"]))
    if kind == "postcodes":
        return rm.PostcodeArea(frozenset(data["postcodes"]))
    return rm.NationalArea()


@dataclass(frozen=True)
class RoutingSnapshot:
    """Everything slow-changing a routing decision needs, tagged with the version it reflects."""

    version: int
    actions: tuple[rm.ActiveAction, ...]
    centralists: tuple[rm.Centralist, ...]


def encode_snapshot(snapshot: RoutingSnapshot) -> str:
    return json.dumps(
        {
            "version": snapshot.version,
            "centralists": [[c.endpoint, c.region_code, c.on_duty] for c in snapshot.centralists],
            "actions": [
                {
                    "id": a.action_id,
                    "title": a.title,
                    "type": a.action_type,
                    "priority": a.priority,
                    "region": a.region_code,
                    "area": _area_to_json(a.area),
                    "team": list(a.team),
                    "started_seq": a.started_seq,
                }
                for a in snapshot.actions
            ],
        },
        separators=(",", ":"),
    )


def decode_snapshot(payload: str | bytes) -> RoutingSnapshot:
    data = json.loads(payload)
    actions = tuple(
        rm.ActiveAction(
            action_id=item["id"],
            title=item["title"],
            action_type=item["type"],
            priority=item["priority"],
            region_code=item["region"],
            area=_area_from_json(item["area"]),
            team=tuple(item["team"]),
            started_seq=item["started_seq"],
        )
        for item in data["actions"]
    )
    centralists = tuple(
        rm.Centralist(endpoint, region, bool(on_duty)) for endpoint, region, on_duty in data["centralists"]
    )
    return RoutingSnapshot(int(data["version"]), actions, centralists)


def _presence(value: bytes | str) -> rm.Presence:
    text = value.decode() if isinstance(value, bytes) else value
    try:
        return rm.Presence(text)
    except ValueError:
        return rm.Presence.UNKNOWN


# --- synchronous side: CLI, Flask, workers ---------------------------------------------------------
class LiveState:
    def __init__(self, client: redis.Redis, keys: LiveKeys, alerted_ttl_seconds: int = 6 * 3600) -> None:
        self.client = client
        self.keys = keys
        self.alerted_ttl_seconds = alerted_ttl_seconds

    @classmethod
    def from_url(cls, url: str, prefix: str = "bn:", alerted_ttl_seconds: int = 6 * 3600) -> LiveState:
        return cls(redis.Redis.from_url(url, socket_timeout=5), LiveKeys(prefix), alerted_ttl_seconds)

    def invalidate_actions(self, action_id: int | None = None) -> int:
        """Bump the version (first) and drop the cache; readers rebuild from the database.

        Call after any change to actions or centralists (the snapshot holds both).
        """
        with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(self.keys.actions_version)
            pipe.delete(self.keys.actions_cache)
            pipe.publish(self.keys.events, json.dumps({"type": "actions_changed", "action_id": action_id}))
            version, _, _ = pipe.execute()
        return int(version)

    def set_presence(self, endpoint: str, presence: rm.Presence) -> None:
        self.client.hset(self.keys.presence, endpoint, presence.value)

    def presence(self) -> dict[str, rm.Presence]:
        raw: dict[bytes, bytes] = self.client.hgetall(self.keys.presence)  # type: ignore[assignment]
        return {key.decode(): _presence(value) for key, value in raw.items()}

    def mark_alerted(self, phone_e164: str, action_id: int, at_epoch: float) -> None:
        key = self.keys.alerted(phone_e164)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {str(action_id): at_epoch})
            pipe.expire(key, self.alerted_ttl_seconds)
            pipe.execute()

    def incr(self, name: str, amount: int = 1) -> int:
        return int(self.client.incrby(self.keys.counter(name), amount))

    def counter(self, name: str) -> int:
        value = self.client.get(self.keys.counter(name))
        return int(value) if value is not None else 0

    def publish(self, event: dict[str, Any]) -> None:
        self.client.publish(self.keys.events, json.dumps(event, default=str))


# --- asynchronous side: the FastAGI/AMI process ------------------------------------------------------
@dataclass(frozen=True)
class CallContext:
    """What one routing decision needs from Redis, fetched in a single round trip."""

    actions_version: int
    presence: dict[str, rm.Presence]
    alerted_by: tuple[int, ...]  # most recent first


class AsyncLiveState:
    def __init__(self, client: aioredis.Redis, keys: LiveKeys, alerted_ttl_seconds: int = 6 * 3600) -> None:
        self.client = client
        self.keys = keys
        self.alerted_ttl_seconds = alerted_ttl_seconds

    @classmethod
    def from_url(cls, url: str, prefix: str = "bn:", alerted_ttl_seconds: int = 6 * 3600) -> AsyncLiveState:
        return cls(aioredis.Redis.from_url(url, socket_timeout=2), LiveKeys(prefix), alerted_ttl_seconds)

    async def call_context(self, phone_e164: str | None, alerted_since_epoch: float) -> CallContext:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.get(self.keys.actions_version)
            pipe.hgetall(self.keys.presence)
            if phone_e164:
                pipe.zrevrangebyscore(self.keys.alerted(phone_e164), "+inf", alerted_since_epoch)
            results = await pipe.execute()
        version = int(results[0]) if results[0] is not None else 0
        presence = {key.decode(): _presence(value) for key, value in results[1].items()}
        alerted = tuple(int(member) for member in results[2]) if phone_e164 else ()
        return CallContext(version, presence, alerted)

    async def cached_snapshot(self) -> RoutingSnapshot | None:
        payload = await self.client.get(self.keys.actions_cache)
        return decode_snapshot(payload) if payload else None

    async def store_snapshot(self, snapshot: RoutingSnapshot, ttl_seconds: int) -> None:
        await self.client.set(self.keys.actions_cache, encode_snapshot(snapshot), ex=ttl_seconds)

    async def set_presence(self, endpoint: str, presence: rm.Presence) -> None:
        await self.client.hset(self.keys.presence, endpoint, presence.value)

    async def incr(self, name: str, amount: int = 1) -> int:
        return int(await self.client.incrby(self.keys.counter(name), amount))

    async def publish(self, event: dict[str, Any]) -> None:
        await self.client.publish(self.keys.events, json.dumps(event, default=str))

    async def mark_alerted(self, phone_e164: str, action_id: int, at_epoch: float) -> None:
        key = self.keys.alerted(phone_e164)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {str(action_id): at_epoch})
            pipe.expire(key, self.alerted_ttl_seconds)
            await pipe.execute()

    async def close(self) -> None:
        await self.client.aclose()

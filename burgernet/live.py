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
``state:built``                JSON {at, by, run_id}: this Redis holds the state rebuilt below; its
                               absence means Redis lost its data (restarted empty)
``state:presence``             epoch of serve's last presence resync from Asterisk (same idea)
=============================  =====================================================================

Redis holds nothing the database cannot give back. When ``state:built`` is missing,
:class:`StateRebuild` (run by ``burgernet serve`` and ``burgernet worker`` from their main loops)
restores it once: ``actions:version`` restarts at a number never used before (so no process
trusts a routing index it built before the restart; the snapshot refills from the database on
the next call), and the ``alerted:`` sets come back from the deliveries that reached someone
within ``routing.alerted_window_seconds``. Presence comes back from Asterisk (serve), the
broadcast queues from the database (worker).

The routing core never sees Redis: these adapters hand it plain routing dataclasses.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import redis.asyncio as aioredis
from shapely.geometry import mapping, shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from burgernet.db import session_scope
from burgernet.models import Broadcast, Delivery, Participant
from burgernet.redis_clients import async_redis_client, redis_client
from burgernet.settings import RedisSettings
from routing import model as rm

log = logging.getLogger(__name__)


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

    @property
    def state_built(self) -> str:
        return f"{self.prefix}state:built"

    @property
    def state_rebuilding(self) -> str:
        return f"{self.prefix}state:rebuilding"

    @property
    def presence_synced(self) -> str:
        """Set by serve after it read presence from Asterisk; gone with a Redis that lost its data."""
        return f"{self.prefix}state:presence"


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
                    # So a code keyed on the free number is looked up here, not in the database.
                    "code": a.code,
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
            code=item.get("code"),  # absent in a snapshot cached by an older version
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
        return cls(redis_client(RedisSettings(url=url), timeout=5), LiveKeys(prefix), alerted_ttl_seconds)

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> LiveState:
        """Through Redis Sentinel when it is configured (see :mod:`burgernet.redis_clients`)."""
        client = redis_client(settings, timeout=5)
        return cls(client, LiveKeys(settings.key_prefix), settings.alerted_caller_ttl_seconds)

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
        return cls(
            async_redis_client(RedisSettings(url=url), timeout=2), LiveKeys(prefix), alerted_ttl_seconds
        )

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> AsyncLiveState:
        client = async_redis_client(settings, timeout=2)
        return cls(client, LiveKeys(settings.key_prefix), settings.alerted_caller_ttl_seconds)

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

    async def presence_endpoints(self) -> set[str]:
        keys: list[bytes] = await self.client.hkeys(self.keys.presence)  # type: ignore[assignment]
        return {key.decode() for key in keys}

    async def presence(self) -> dict[str, rm.Presence]:
        raw: dict[bytes, bytes] = await self.client.hgetall(self.keys.presence)  # type: ignore[assignment]
        return {key.decode(): _presence(value) for key, value in raw.items()}

    async def forget_presence(self, endpoints: set[str]) -> None:
        """Endpoints Asterisk no longer has: no presence at all (routing never sees them)."""
        if endpoints:
            await self.client.hdel(self.keys.presence, *sorted(endpoints))

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


# --- after a Redis restart ---------------------------------------------------------------------------
# The delivery statuses after which the worker marks a participant as alerted (the worker's
# broadcasting.store.REACHED_STATUSES; the core may not import it).
ALERTED_STATUSES = ("sent", "delivered", "answered")
_REBUILD_LOCK_SECONDS = 60


def alerted_since(session: Session, since: datetime) -> list[tuple[str, int, float]]:
    """(phone, action id, epoch) of everyone an action's broadcast reached since ``since``: the
    latest delivery per person and action, as the worker marked them when it happened."""
    rows = session.execute(
        select(Participant.phone_e164, Broadcast.action_id, func.max(Delivery.finished_at))
        .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
        .join(Participant, Participant.id == Delivery.participant_id)
        .where(
            Broadcast.action_id.is_not(None),
            Delivery.status.in_(ALERTED_STATUSES),
            Delivery.finished_at >= since,
        )
        .group_by(Participant.phone_e164, Broadcast.action_id)
    ).all()
    found = []
    for phone, action_id, finished in rows:
        if finished is None or action_id is None:
            continue
        if finished.tzinfo is None:  # SQLite gives naive datetimes; they were stored as UTC
            finished = finished.replace(tzinfo=UTC)
        found.append((str(phone), int(action_id), finished.timestamp()))
    return found


@dataclass(frozen=True)
class RebuildReport:
    alerted: int  # (phone, action) pairs restored
    actions_version: int


class StateRebuild:
    """Finds a Redis that lost its data and puts back what the core keeps there, once.

    Any number of processes may call :meth:`ensure` as often as they like (each beat): a lock
    lets one of them rebuild; the others see the marker afterwards.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: LiveKeys,
        sessions: sessionmaker[Session],
        alerted_window_seconds: int,
        alerted_ttl_seconds: int,
    ) -> None:
        self.client = client
        self.keys = keys
        self.sessions = sessions
        self.alerted_window_seconds = alerted_window_seconds
        self.alerted_ttl_seconds = alerted_ttl_seconds

    def built(self) -> bool:
        return bool(self.client.exists(self.keys.state_built))

    def ensure(self, by: str) -> RebuildReport | None:
        """Rebuild when the marker is missing and nobody else is at it; None when not needed."""
        if self.built():
            return None
        if not self.client.set(self.keys.state_rebuilding, by, nx=True, ex=_REBUILD_LOCK_SECONDS):
            return None
        try:
            report = self._rebuild()
            run_id = str(self.client.info("server").get("run_id", ""))
            self.client.set(
                self.keys.state_built, json.dumps({"at": time.time(), "by": by, "run_id": run_id})
            )
        finally:
            self.client.delete(self.keys.state_rebuilding)
        log.warning(
            "Redis state rebuilt from the database by %s: %s alerted callers, actions version %s",
            by,
            report.alerted,
            report.actions_version,
        )
        return report

    def _rebuild(self) -> RebuildReport:
        # A version never used before: versions restarting at 1 could match a routing index a
        # process built before the restart, and it would keep routing on stale actions.
        self.client.set(self.keys.actions_version, int(time.time() * 1000), nx=True)
        version = int(self.client.get(self.keys.actions_version) or 0)
        self.client.delete(self.keys.actions_cache)
        since = datetime.now(UTC) - timedelta(seconds=self.alerted_window_seconds)
        with session_scope(self.sessions) as session:
            alerted = alerted_since(session, since)
        with self.client.pipeline(transaction=False) as pipe:
            for phone, action_id, at_epoch in alerted:
                key = self.keys.alerted(phone)
                # GT: a mark the worker made since the restart is newer; it stays.
                pipe.zadd(key, {str(action_id): at_epoch}, gt=True)
                pipe.expire(key, self.alerted_ttl_seconds)
            pipe.execute()
        return RebuildReport(len(alerted), version)

"""The Redis adapter against a real redis-server."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis
from shapely.geometry import box

from burgernet.live import (
    AsyncLiveState,
    LiveKeys,
    LiveState,
    RoutingSnapshot,
    decode_snapshot,
    encode_snapshot,
)
from burgernet.settings import Settings
from routing import (
    ActiveAction,
    Centralist,
    CircleArea,
    Location,
    NationalArea,
    PolygonArea,
    PostcodeArea,
    Presence,
)


def _live(settings: Settings) -> LiveState:
    return LiveState.from_url(settings.redis.url, settings.redis.key_prefix, alerted_ttl_seconds=120)


def _async_live(settings: Settings) -> AsyncLiveState:
    return AsyncLiveState(aioredis.Redis.from_url(settings.redis.url), LiveKeys(settings.redis.key_prefix))


SNAPSHOT = RoutingSnapshot(
    7,
    (
        ActiveAction(
            1, "a", "missing_child", 90, "MN", CircleArea(Location(5.1, 52.1), 2500.0), ("c-mn-1",), 3
        ),
        ActiveAction(2, "b", "vehicle", 50, "AM", PolygonArea(box(4.8, 52.3, 4.9, 52.4)), (), 4),
        ActiveAction(
            3, "c", "suspect", 60, "RO", PostcodeArea(frozenset({"3011", "3012AB"})), ("c-ro-1",), 5
        ),
        ActiveAction(4, "d", "amber_alert", 100, "ON", NationalArea(), (), 6),
    ),
    (Centralist("c-mn-1", "MN"), Centralist("c-mn-4", "MN", on_duty=False)),
)


def test_snapshot_codec_round_trip() -> None:
    decoded = decode_snapshot(encode_snapshot(SNAPSHOT))
    assert decoded.version == 7 and decoded.centralists == SNAPSHOT.centralists
    for before, after in zip(SNAPSHOT.actions, decoded.actions, strict=True):
        if isinstance(before.area, PolygonArea):
            assert isinstance(after.area, PolygonArea) and after.area.geometry.equals(before.area.geometry)
            assert (before.action_id, before.team) == (after.action_id, after.team)
        else:
            assert before == after


def test_invalidation_bumps_the_version_and_drops_the_cache(bn_settings: Settings) -> None:
    live = _live(bn_settings)

    async def scenario() -> None:
        reader = _async_live(bn_settings)
        await reader.store_snapshot(SNAPSHOT, ttl_seconds=60)
        assert (await reader.cached_snapshot()) is not None
        first = (await reader.call_context(None, 0)).actions_version
        live.invalidate_actions(1)
        assert (await reader.call_context(None, 0)).actions_version == first + 1
        assert (await reader.cached_snapshot()) is None
        await reader.close()

    asyncio.run(scenario())


def test_presence_and_alerts_in_one_round_trip(bn_settings: Settings) -> None:
    live = _live(bn_settings)
    now = time.time()
    live.set_presence("c-mn-1", Presence.BUSY)
    live.client.hset(live.keys.presence, "c-mn-2", "garbage-state")
    live.mark_alerted("+31612345678", 11, now - 7200)  # outside a one-hour window
    live.mark_alerted("+31612345678", 12, now - 60)
    live.mark_alerted("+31612345678", 13, now - 10)

    async def scenario() -> None:
        reader = _async_live(bn_settings)
        context = await reader.call_context("+31612345678", now - 3600)
        assert context.alerted_by == (13, 12)  # most recent first, old alert left out
        assert context.presence == {"c-mn-1": Presence.BUSY, "c-mn-2": Presence.UNKNOWN}
        assert (await reader.call_context("+31699999999", now - 3600)).alerted_by == ()
        await reader.close()

    asyncio.run(scenario())
    assert 0 < live.client.ttl(live.keys.alerted("+31612345678")) <= 120  # personal data expires


def test_counters_and_events(bn_settings: Settings) -> None:
    live = _live(bn_settings)
    pubsub = live.client.pubsub()
    pubsub.subscribe(live.keys.events)
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"
    assert live.incr("calls:1") == 1 and live.incr("calls:1", 2) == 3 and live.counter("calls:1") == 3
    live.invalidate_actions(5)
    message = pubsub.get_message(timeout=2)
    assert message is not None and b'"action_id": 5' in message["data"]
    pubsub.close()

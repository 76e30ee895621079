"""Dashboard live data: the SSE feed from Redis pub/sub, presence, active actions."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask.testing import FlaskClient

from composition.context import Context
from routing.model import Presence
from tests.panel.conftest import World


def _next_event(chunks: object) -> str:
    for chunk in chunks:  # type: ignore[attr-defined]
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if text.startswith("event:"):
            return str(text)
    raise AssertionError("stream ended")


def test_live_feed_streams_published_events(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    response = client_for("operator").get("/live/events", buffered=False)
    assert response.mimetype == "text/event-stream"
    chunks = response.iter_encoded()
    assert b"subscribed" in next(chunks)  # subscribed: nothing published from here on is lost
    bn_context.live.publish(
        {"type": "call_answered", "call": "1.1", "centralist": "c-mn-1", "caller": "+31612345678"}
    )
    event = _next_event(chunks)
    response.close()
    assert event.startswith("event: call_answered\n")
    data = json.loads(event.split("data: ", 1)[1])
    assert data["centralist"] == "c-mn-1" and data["caller"] == "+31612345678"


def test_viewers_get_events_without_numbers(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    response = client_for("viewer").get("/live/events", buffered=False)
    chunks = response.iter_encoded()
    next(chunks)
    bn_context.live.publish({"type": "call_routed", "caller": "+31612345678", "action_id": 2})
    event = _next_event(chunks)
    response.close()
    assert "+31612345678" not in event and '"action_id": 2' in event


def test_presence_and_active_actions(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    bn_context.live.set_presence("c-mn-1", Presence.BUSY)
    client = client_for("viewer")
    rows = {row["endpoint"]: row for row in client.get("/dashboard/presence.json").get_json()}
    assert len(rows) == 30
    assert rows["c-mn-1"]["presence"] == "busy" and rows["c-mn-2"]["presence"] == "unknown"
    features = client.get("/dashboard/actions.geojson").get_json()["features"]
    assert [f["properties"]["id"] for f in features] == [world.active_id]
    assert features[0]["geometry"]["type"] == "Point" and features[0]["properties"]["radius_m"] == 3000
    assert len(client.get("/dashboard/regions.geojson").get_json()["features"]) == 10

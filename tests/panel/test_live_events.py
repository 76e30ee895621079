"""The panel's one live stream (callback_api/live_events.py): per-reader filtering, bounded life,
and the cap on streams holding a worker thread."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient

from burgernet.ports import LiveEventKind, live_event
from callback_api import live_events
from composition.context import Context
from tests.panel.conftest import World


def _events(chunks: Iterator[bytes], count: int) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for chunk in chunks:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if text.startswith("event:"):
            found.append(json.loads(text.split("data: ", 1)[1]))
            if len(found) == count:
                return found
    raise AssertionError(f"stream ended after {found}")


def test_one_action_stream_carries_that_actions_events_and_the_readers_own(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    response = client_for("centralist").get(f"/live/events?action={world.active_id}", buffered=False)
    assert response.mimetype == "text/event-stream"
    chunks = response.iter_encoded()
    first = next(chunks)
    assert b"retry: " in first and b"subscribed" in first
    live = bn_context.live
    live.publish(live_event(LiveEventKind.SIGHTING_ADDED, world.draft_id, sighting_id=1))  # another action
    live.publish(live_event(LiveEventKind.CALL_ROUTED, None, for_endpoint="c-mn-2", call="x"))  # not theirs
    live.publish(live_event(LiveEventKind.CALL_ROUTED, None, for_endpoint="c-mn-1", call="mine"))
    live.publish(
        live_event(LiveEventKind.SIGHTING_ADDED, world.active_id, sighting_id=2, caller="+31612345678")
    )
    got = _events(chunks, 2)
    response.close()
    assert got[0]["call"] == "mine" and got[0]["type"] == "call_routed"
    # Their region's action: the number is theirs to read.
    assert got[1]["sighting_id"] == 2 and got[1]["caller"] == "+31612345678"


def test_numbers_of_an_action_without_need_to_know_are_masked(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    response = client_for("centralist").get("/live/events", buffered=False)
    chunks = response.iter_encoded()
    next(chunks)
    bn_context.live.publish(live_event(LiveEventKind.TIP_RECORDED, world.draft_id, caller="+31612345678"))
    (event,) = _events(chunks, 1)
    response.close()
    assert event["caller"] == "****" and event["action_id"] == world.draft_id


def test_a_stream_ends_after_its_lifetime_and_tells_the_browser_when_to_come_back(
    world: World, client_for: Callable[[str | None], FlaskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_events, "LIFETIME_SECONDS", 0.5)
    monkeypatch.setattr(live_events, "HEARTBEAT_SECONDS", 0.1)
    body = client_for("viewer").get("/live/events").get_data(as_text=True)  # returns: the stream ended
    assert body.startswith("retry: 3000\n") and ": keepalive" in body and "reconnect" in body


def test_streams_beyond_the_slots_are_sent_back_to_retry_later(
    world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("viewer")
    client.application.config["LIVE_STREAM_SLOTS"] = 1
    held = client.get("/live/events", buffered=False)
    next(held.iter_encoded())  # holds the only slot
    refused = client_for("operator").get("/live/events").get_data(as_text=True)
    assert refused.startswith("retry: ") and "busy" in refused
    held.close()  # gives the slot back
    again = client_for("operator").get("/live/events", buffered=False)
    assert b"subscribed" in next(again.iter_encoded())
    again.close()


def test_anonymous_visitors_get_no_stream(
    world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    response = client_for(None).get("/live/events", headers={"Accept": "text/event-stream"})
    assert response.status_code == 401

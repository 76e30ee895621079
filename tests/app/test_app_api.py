"""The participant app's server side through Flask's test client, on the real SQLite and Redis.

What the app may do without an account: read an active action, look a postcode up, send a
sighting (with or without a place, with a photo whose metadata the server strips, with its
push subscription as the reply channel), limited per device and per address. What the panel
does with it: the sighting on the action (list, map, live event), its photo for the action's
users only, and asking the participant a question back.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from burgernet.app_alerts import action_document
from burgernet.db import session_scope
from burgernet.live import LiveState
from burgernet.models import Action, AuditEvent, Broadcast, Delivery, Sighting
from callback_api.participant_app.services import SightingThrottle, TooManySightings
from callback_api.participant_app.views import MAX_SIGHTING_BYTES, throttle
from callback_api.photos import MAX_PHOTO_BYTES, has_metadata
from composition.context import Context
from testbed.ports import free_port
from tests.app.conftest import World, fake_device, jpeg_with_gps, register_device
from tests.panel.conftest import csrf_token

UTRECHT_CENTRE = (52.0907, 5.1214)


def post_sighting(
    client: FlaskClient, action_id: int, photo: bytes | None = None, **fields: Any
) -> tuple[int, dict[str, Any]]:
    data: dict[str, Any] = {"description": "Meisje met rode jas bij het station", **fields}
    if photo is not None:
        data["photo"] = (io.BytesIO(photo), "photo.jpg", "image/jpeg")
    response = client.post(
        f"/app/api/actions/{action_id}/sightings", data=data, content_type="multipart/form-data"
    )
    return response.status_code, response.get_json(silent=True) or {}


def sighting_row(context: Context, sighting_id: int) -> Sighting:
    with session_scope(context.sessions) as session:
        row = session.get(Sighting, sighting_id)
        assert row is not None
        session.expunge(row)
        return row


# --- the page, its manifest and service worker ---------------------------------------------------
@pytest.mark.parametrize(
    ("accept", "lang", "words"),
    [("nl-NL,nl;q=0.9", "nl", "Meldingen aanzetten"), ("en-GB", "en", "Turn on alerts")],
)
def test_the_app_page_speaks_the_browser_language_and_sets_no_cookie(
    client: FlaskClient, accept: str, lang: str, words: str
) -> None:
    response = client.get("/app/", headers={"Accept-Language": accept})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'<html lang="{lang}">' in html and words in html
    assert 'rel="manifest" href="/app/manifest.webmanifest"' in html
    assert "Set-Cookie" not in response.headers  # no account, no session: nothing to remember
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_manifest_icons_and_service_worker(client: FlaskClient) -> None:
    manifest = client.get("/app/manifest.webmanifest")
    assert manifest.mimetype == "application/manifest+json"
    body = manifest.get_json(force=True)
    assert (body["name"], body["start_url"], body["scope"], body["display"]) == (
        "Burgernet",
        "/app/",
        "/app/",
        "standalone",
    )
    for icon in body["icons"]:
        png = client.get(icon["src"])
        assert png.mimetype == "image/png"
        with Image.open(io.BytesIO(png.data)) as image:
            assert f"{image.width}x{image.height}" == icon["sizes"]
    assert {icon["sizes"] for icon in body["icons"]} == {"192x192", "512x512"}
    assert client.get("/app/icons/64.png").status_code == 404

    worker = client.get("/app/sw.js")
    assert worker.status_code == 200 and worker.mimetype == "text/javascript"
    assert worker.headers["Service-Worker-Allowed"] == "/app/"
    assert "no-cache" in worker.headers["Cache-Control"]
    assert (
        'importScripts("/app/words.js", "/app/static/match.js", "/app/static/store.js")'
        in worker.get_data(as_text=True)
    )
    words = client.get("/app/words.js").get_data(as_text=True)
    assert words.startswith("/*") and '"Ik zag iets"' in words
    # Everything the worker caches for offline use is there.
    for path in (
        "/app/static/app.js",
        "/app/static/app.css",
        "/app/static/match.js",
        "/app/static/store.js",
        "/vendor/leaflet/leaflet.js",
    ):
        assert client.get(path).status_code == 200, path


# --- the public action --------------------------------------------------------------------------
def test_an_active_action_is_public_a_draft_or_closed_one_is_not(
    client: FlaskClient, bn_context: Context, world: World
) -> None:
    answer = client.get(f"/app/api/actions/{world.active_id}")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    with session_scope(bn_context.sessions) as session:
        action = session.get(Action, world.active_id)
        assert action is not None
        assert answer.get_json() == json.loads(json.dumps(action_document(action, session)))
    assert answer.get_json()["area"] == {"kind": "circle", "lat": 52.0907, "lon": 5.1214, "radius_m": 3000}
    for action_id in (world.draft_id, 999_999):
        refused = client.get(f"/app/api/actions/{action_id}")
        assert refused.status_code == 404
        assert refused.get_json()["error"]["code"] == "app.action_not_found"
    assert client.get(f"/app/actions/{world.active_id}/photo").status_code == 404  # it has none


def test_a_postcode_is_looked_up_and_nothing_is_stored(
    client: FlaskClient, bn_context: Context, world: World
) -> None:
    with session_scope(bn_context.sessions) as session:
        audit_before = len(session.scalars(select(AuditEvent.id)).all())
    found = client.get("/app/api/postcodes/3511 ah")
    assert found.status_code == 200 and found.headers["Cache-Control"] == "no-store"
    body = found.get_json()
    assert body["postcode"] == "3511 AH"
    assert abs(body["lat"] - 52.09) < 0.05 and abs(body["lon"] - 5.12) < 0.05
    assert client.get("/app/api/postcodes/3511").get_json()["postcode"] == "3511"
    assert client.get("/app/api/postcodes/0123").get_json()["error"]["code"] == "app.postcode_invalid"
    assert client.get("/app/api/postcodes/hallo").status_code == 400
    with session_scope(bn_context.sessions) as session:
        assert len(session.scalars(select(AuditEvent.id)).all()) == audit_before


# --- sightings from the app ----------------------------------------------------------------------
def test_a_sighting_without_a_place_is_recorded_as_possible_from_the_app(
    client: FlaskClient, bn_context: Context, world: World
) -> None:
    feed = bn_context.live.client.pubsub(ignore_subscribe_messages=True)
    feed.subscribe(bn_context.live.keys.events)
    feed.get_message(timeout=1)
    status, body = post_sighting(client, world.active_id)
    assert status == 201, body
    row = sighting_row(bn_context, body["id"])
    assert (row.source, row.created_by, row.reliability) == ("app", "app", "possible")
    # No place given: none stored (not the action's centre, not the phone's places).
    assert (row.lat, row.lon, row.photo_path, row.push_subscription_id) == (None, None, None, None)
    event = None
    for _ in range(5):
        message = feed.get_message(timeout=1)
        if message and json.loads(message["data"]).get("type") == "sighting_added":
            event = json.loads(message["data"])
            break
    feed.close()
    assert event == {"type": "sighting_added", "action_id": world.active_id, "sighting_id": body["id"]}
    with session_scope(bn_context.sessions) as session:
        audit = session.scalar(
            select(AuditEvent).where(AuditEvent.entity == "sighting", AuditEvent.entity_id == str(body["id"]))
        )
        assert audit is not None and (audit.actor, audit.verb, audit.source) == ("app", "record", "app")
        detail = json.loads(audit.detail or "{}")
        assert detail["has_place"] is False and "lat" not in detail


def test_a_sighting_with_a_place_and_a_reply_channel(
    client: FlaskClient, bn_context: Context, world: World
) -> None:
    device = fake_device()
    subscription_id = register_device(bn_context, device, cell="u178")
    seen = (datetime.now(UTC) - timedelta(minutes=15)).isoformat()
    status, body = post_sighting(
        client, world.active_id, lat="52.0931", lon="5.1180", seen_at=seen, endpoint=device.endpoint
    )
    assert status == 201, body
    row = sighting_row(bn_context, body["id"])
    assert (row.lat, row.lon, row.push_subscription_id) == (52.0931, 5.118, subscription_id)
    assert abs(row.seen_at.replace(tzinfo=UTC) - datetime.fromisoformat(seen)) < timedelta(seconds=1)
    # An endpoint the server does not know is no reply channel, and no reason to refuse.
    status, body = post_sighting(client, world.active_id, endpoint=fake_device().endpoint)
    assert status == 201 and sighting_row(bn_context, body["id"]).push_subscription_id is None


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"description": "  "}, "describe what you saw"),
        ({"lat": "52.09"}, "both lat and lon"),
        ({"lat": "48.85", "lon": "2.35"}, "outside the Netherlands"),
        ({"lat": "noord", "lon": "5.1"}, "not a number"),
        ({"lat": "nan", "lon": "5.1"}, "not a number"),
        ({"seen_at": "gisteren"}, "not ISO 8601"),
        ({"seen_at": "2026-12-01T10:00:00"}, "needs an offset"),
        ({"seen_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()}, "in the future"),
        ({"description": "x" * 2001}, "longer than 2000"),
    ],
)
def test_a_refused_sighting_says_why_and_stores_nothing(
    client: FlaskClient, bn_context: Context, world: World, fields: dict[str, Any], words: str
) -> None:
    status, body = post_sighting(client, world.active_id, **fields)
    assert status == 400
    assert body["error"]["code"] == "sighting.invalid" and words in body["error"]["message"]
    with session_scope(bn_context.sessions) as session:
        assert session.scalars(select(Sighting.id)).all() == []


def test_the_photo_is_stored_without_its_exif_and_shown_to_the_actions_users_only(
    client: FlaskClient, bn_context: Context, world: World, panel_client: Callable[[str], FlaskClient]
) -> None:
    original = jpeg_with_gps()
    with Image.open(io.BytesIO(original)) as sent:
        assert sent.getexif().get(0x8825)  # the test photo really carries a GPS position
    status, body = post_sighting(client, world.active_id, photo=original)
    assert status == 201, body
    row = sighting_row(bn_context, body["id"])
    assert row.photo_path is not None
    stored = bn_context.settings.data_dir / "photos" / "sightings" / str(world.active_id)
    assert str(stored) in row.photo_path
    assert not has_metadata(Path(row.photo_path))
    stored_bytes = Path(row.photo_path).read_bytes()
    assert b"Phone 12 Secret" not in stored_bytes and b"PhoneMaker" not in stored_bytes

    url = f"/actions/{world.active_id}/sightings/{body['id']}/photo"
    operator = panel_client("operator")
    shown = operator.get(url)
    assert shown.status_code == 200 and shown.data == stored_bytes
    with session_scope(bn_context.sessions) as session:
        read = session.scalar(
            select(AuditEvent).where(AuditEvent.entity == "sighting_photo", AuditEvent.verb == "read")
        )
        assert read is not None and read.actor == "operator"
    assert panel_client("viewer").get(url).status_code == 403
    anonymous = client.get(url)
    assert anonymous.status_code in (302, 401) and anonymous.data != stored_bytes
    listing = operator.get(f"/actions/{world.active_id}/sightings/list").get_data(as_text=True)
    assert 'data-source="app"' in listing and "uit de app" in listing and url in listing


def test_a_file_that_is_not_a_photo_is_refused(client: FlaskClient, world: World) -> None:
    status, body = post_sighting(client, world.active_id, photo=b"GIF89a" + b"\x00" * 100)
    assert status == 400 and body["error"]["code"] == "photo.invalid"


def test_too_large_is_413_before_and_after_reading(
    client: FlaskClient, bn_context: Context, world: World
) -> None:
    # A body over the route's limit: refused before anything reads it.
    too_big = b"\xff" * (MAX_SIGHTING_BYTES + 1)
    status, body = post_sighting(client, world.active_id, photo=too_big)
    assert status == 413 and body["error"]["code"] == "request.too_large"
    # Inside the body limit, but a photo over 8 MB.
    status, body = post_sighting(client, world.active_id, photo=b"\xff" * (MAX_PHOTO_BYTES + 1))
    assert status == 413 and body["error"]["code"] == "photo.too_large"
    with session_scope(bn_context.sessions) as session:
        assert session.scalars(select(Sighting.id)).all() == []
    assert not (bn_context.settings.data_dir / "photos" / "sightings").exists() or not any(
        (bn_context.settings.data_dir / "photos" / "sightings").rglob("*.*")
    )


def test_sightings_are_limited_per_device_and_per_address(
    app: Flask, client: FlaskClient, world: World
) -> None:
    device = fake_device()
    limit = throttle_of(app).per_device
    for _ in range(limit):
        assert post_sighting(client, world.active_id, endpoint=device.endpoint)[0] == 201
    status, body = post_sighting(client, world.active_id, endpoint=device.endpoint)
    assert status == 429 and body["error"]["code"] == "app.too_many_sightings"
    # Another device at the same address still gets through, until the address's limit.
    throttle_of(app).per_address = limit + 2
    assert post_sighting(client, world.active_id, endpoint=fake_device().endpoint)[0] == 201
    status, body = post_sighting(client, world.active_id, endpoint=fake_device().endpoint)
    assert status == 429
    # Another address is its own count.
    other = client.post(
        f"/app/api/actions/{world.active_id}/sightings",
        data={"description": "van een ander adres"},
        environ_base={"REMOTE_ADDR": "2001:db8:1:2::7"},
    )
    assert other.status_code == 201


def throttle_of(app: Flask) -> Any:
    with app.app_context():
        return throttle()


def test_an_action_that_is_not_active_takes_no_sightings(
    client: FlaskClient, bn_context: Context, world: World
) -> None:
    status, body = post_sighting(client, world.draft_id)
    assert status == 404 and body["error"]["code"] == "sighting.action_not_found"
    assert post_sighting(client, 999_999)[0] == 404
    bn_context.actions.close(
        world.active_id, result_message="Gevonden, dank u", outcome_kind="found_otherwise", actor="test"
    )
    status, body = post_sighting(client, world.active_id, photo=jpeg_with_gps())
    assert status == 409 and body["error"]["code"] == "sighting.action_closed"
    with session_scope(bn_context.sessions) as session:
        assert session.scalars(select(Sighting.id)).all() == []
    assert not any((bn_context.settings.data_dir / "photos").rglob("sightings/**/*.jpg"))


# --- in the panel ---------------------------------------------------------------------------------
def test_the_map_gets_only_located_sightings_and_the_list_all(
    client: FlaskClient, world: World, panel_client: Callable[[str], FlaskClient]
) -> None:
    placed = post_sighting(client, world.active_id, lat="52.0931", lon="5.1180")[1]["id"]
    unplaced = post_sighting(client, world.active_id)[1]["id"]
    operator = panel_client("operator")
    markers = operator.get(f"/actions/{world.active_id}/sightings.json").get_json()["sightings"]
    assert [m["id"] for m in markers] == [placed]
    assert markers[0]["source"] == "app"
    listing = operator.get(f"/actions/{world.active_id}/sightings/list").get_data(as_text=True)
    assert f'data-sighting-id="{placed}"' in listing and f'data-sighting-id="{unplaced}"' in listing
    assert "geen plaats opgegeven" in listing  # the panel speaks Dutch first
    api = operator.get(
        f"/api/v1/actions/{world.active_id}/sightings",
        headers={"Authorization": f"Bearer {world.tokens['operator']}"},
    ).get_json()
    assert {s["id"]: s["lat"] for s in api["sightings"]} == {placed: 52.0931, unplaced: None}


def test_ask_back_sends_one_reply_push_to_the_phone_of_the_sighting(
    client: FlaskClient, bn_context: Context, world: World, panel_client: Callable[[str], FlaskClient]
) -> None:
    device = fake_device()
    subscription_id = register_device(bn_context, device)
    with_channel = post_sighting(client, world.active_id, endpoint=device.endpoint)[1]["id"]
    without = post_sighting(client, world.active_id)[1]["id"]
    operator = panel_client("operator")
    page = operator.get(f"/actions/{world.active_id}").get_data(as_text=True)
    assert f"/sightings/{with_channel}/ask" in page and f"/sightings/{without}/ask" not in page
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]

    sent = operator.post(
        f"/actions/{world.active_id}/sightings/{with_channel}/ask",
        data={"question": "Welke kant liep ze op?", "csrf_token": token},
    )
    assert sent.status_code == 302 and sent.headers["Location"].endswith("#sightings-title")
    with session_scope(bn_context.sessions) as session:
        replies = session.scalars(select(Broadcast).where(Broadcast.kind == "reply")).all()
        assert len(replies) == 1 and replies[0].action_id == world.active_id
        deliveries = session.scalars(select(Delivery).where(Delivery.broadcast_id == replies[0].id)).all()
        assert [(d.channel, d.push_subscription_id, d.sighting_id) for d in deliveries] == [
            ("push", subscription_id, with_channel)
        ]
        audit = session.scalar(select(AuditEvent).where(AuditEvent.verb == "ask_back"))
        assert audit is not None and audit.actor == "operator"

    # A sighting without a phone to ask, and an empty question: said, nothing sent.
    for sighting_id, question in ((without, "Nog iets?"), (with_channel, "  ")):
        refused = operator.post(
            f"/actions/{world.active_id}/sightings/{sighting_id}/ask",
            data={"question": question, "csrf_token": token},
            headers={"Accept": "application/json"},
        )
        assert refused.status_code in (409, 422), refused.get_data(as_text=True)
        assert refused.get_json()["error_id"] in ("push.no_reply_channel", "push.question_invalid")
    # Someone who may not work the action cannot ask.
    viewer = panel_client("viewer")
    viewer_token = csrf_token(viewer, "/")
    asked = viewer.post(
        f"/actions/{world.active_id}/sightings/{with_channel}/ask",
        data={"question": "x", "csrf_token": viewer_token},
    )
    assert asked.status_code == 403
    with session_scope(bn_context.sessions) as session:
        assert len(session.scalars(select(Broadcast).where(Broadcast.kind == "reply")).all()) == 1


def test_the_limits_hold_while_redis_is_down(bn_context: Context) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    dead = LiveState.from_settings(bn_context.settings.redis.model_copy(update={"url": url}))
    limited = SightingThrottle(dead, per_device=2, per_address=4)
    device = fake_device().endpoint
    limited.take("192.0.2.10", device)
    limited.take("192.0.2.10", device)
    with pytest.raises(TooManySightings):
        limited.take("192.0.2.10", device)
    limited.take("192.0.2.10", None)  # the address's fourth attempt (a refused one counts too)
    with pytest.raises(TooManySightings):
        limited.take("192.0.2.10", None)
    # An IPv6 customer's whole /64 is one address.
    limited.take("2001:db8:5:6::1", None)
    limited.take("2001:db8:5:6::ffff", None)
    limited.take("2001:db8:5:6:1::2", None)
    limited.take("2001:db8:5:6:abcd::3", None)
    with pytest.raises(TooManySightings):
        limited.take("2001:db8:5:6::9", None)

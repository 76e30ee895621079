"""Actions through the panel: create (circle, polygon, postcodes, photo), start, close, counts."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select

from burgernet.db import session_scope
from burgernet.models import Action, AuditEvent
from callback_api.photos import check_photo
from composition.context import Context
from tests.panel.conftest import UTRECHT, World, audit_count, csrf_token

POLYGON = {"type": "Polygon", "coordinates": [[[5.10, 52.08], [5.14, 52.08], [5.14, 52.10], [5.10, 52.08]]]}


def _png(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "action_type": "missing_person",
        "title": "Vermiste man, 80 jaar",
        "description": "Blauwe jas",
        "region": "MN",
        "area_kind": "circle",
        "lon": str(UTRECHT[0]),
        "lat": str(UTRECHT[1]),
        "radius_m": "2500",
        "team": "c-mn-2, c-mn-1",
    }
    data.update(overrides)
    return data


def _action_count(context: Context) -> int:
    with session_scope(context.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(Action)) or 0)


def _post_new(client: FlaskClient, **overrides: Any) -> Any:
    token = csrf_token(client, "/actions/new")
    return client.post(
        "/actions/new", data={**_form(**overrides), "csrf_token": token}, content_type="multipart/form-data"
    )


def test_create_circle_action_and_start_it(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    response = _post_new(client, start_now="y")
    assert response.status_code == 302
    action_id = int(response.headers["Location"].rsplit("/", 1)[1])
    view = bn_context.actions.get(action_id)
    assert (view.status, view.team, view.region_code) == ("active", ("c-mn-2", "c-mn-1"), "MN")
    assert (
        audit_count(
            bn_context, verb="create", entity_id=str(action_id), source="web 127.0.0.1", actor="operator"
        )
        == 1
    )
    assert audit_count(bn_context, verb="active", entity_id=str(action_id), source="web 127.0.0.1") == 1
    page = client.get(f"/actions/{action_id}").get_data(as_text=True)
    assert "Vermiste man, 80 jaar" in page and "c-mn-2" in page
    # The participant at Utrecht's centre lies inside 2.5 km.
    assert client.get(f"/actions/{action_id}/recipients.json").get_json() == {
        "action_id": action_id,
        "recipients": 1,
    }


def test_polygon_and_postcode_actions(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("centralist")
    polygon = _post_new(client, area_kind="polygon", geojson=json.dumps(POLYGON))
    assert polygon.status_code == 302
    postcodes = _post_new(client, area_kind="postcodes", postcodes="3511, 3512 CD", region="MN")
    assert postcodes.status_code == 302
    action_id = int(postcodes.headers["Location"].rsplit("/", 1)[1])
    feature = client.get(f"/actions/{action_id}/area.json").get_json()
    assert feature["properties"]["area_kind"] == "postcodes"
    assert feature["geometry"]["type"] == "MultiPoint"


def test_invalid_geojson_is_rejected_with_a_clear_message(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    before = _action_count(bn_context)
    cases = {
        "{not json": "not JSON",
        json.dumps({"type": "Point", "coordinates": [5.1, 52.1]}): "must be Polygon or MultiPolygon",
        json.dumps(
            {"type": "Polygon", "coordinates": [[[52.08, 5.10], [52.08, 5.14], [52.10, 5.14], [52.08, 5.10]]]}
        ): "outside the Netherlands",
        json.dumps(
            {
                "type": "Polygon",
                "coordinates": [[[5.1, 52.0], [5.2, 52.1], [5.2, 52.0], [5.1, 52.1], [5.1, 52.0]]],
            }
        ): "not a valid polygon",
        "": "a polygon needs GeoJSON",
    }
    for text, message in cases.items():
        response = _post_new(client, area_kind="polygon", geojson=text)
        assert response.status_code == 400, text
        assert message in response.get_data(as_text=True), text
    assert _action_count(bn_context) == before


def test_bad_photo_is_rejected_and_nothing_is_created(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    before = _action_count(bn_context)
    bad = {
        "photo.jpg": (b"this is not a picture at all", "not a readable image"),
        "tiny.png": (_png((8, 8)), "too small"),
        "empty.png": (b"", None),  # an empty upload is "no photo" for the browser; skip below
    }
    for name, (data, message) in bad.items():
        if message is None:
            continue
        token = csrf_token(client, "/actions/new")
        response = client.post(
            "/actions/new",
            data={**_form(), "csrf_token": token, "photo": (io.BytesIO(data), name)},
            content_type="multipart/form-data",
        )
        assert response.status_code == 400, name
        assert message in response.get_data(as_text=True), name
    assert _action_count(bn_context) == before
    assert not (bn_context.settings.data_dir / "photos").exists()


def test_good_photo_is_stored_and_served(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    token = csrf_token(client, "/actions/new")
    response = client.post(
        "/actions/new",
        data={**_form(), "csrf_token": token, "photo": (io.BytesIO(_png()), "kind.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    action_id = int(response.headers["Location"].rsplit("/", 1)[1])
    served = client.get(f"/actions/{action_id}/photo")
    # What is stored and served is the photo re-encoded without metadata (callback_api.photos).
    assert served.status_code == 200 and served.data == check_photo(_png()).data
    assert audit_count(bn_context, verb="photo", entity_id=str(action_id)) == 1


def test_close_needs_an_outcome_and_is_audited(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("centralist")
    token = csrf_token(client, "/")
    empty = client.post(
        f"/actions/{world.active_id}/close", data={"csrf_token": token, "outcome": ""}, follow_redirects=True
    )
    assert bn_context.actions.get(world.active_id).status == "active"
    assert "Outcome" in empty.get_data(as_text=True) or "Afloop" in empty.get_data(as_text=True)
    done = client.post(
        f"/actions/{world.active_id}/close",
        data={
            "csrf_token": token,
            "outcome_kind": "found_otherwise",
            "outcome": "gevonden",
            "result_message": "Dank u!",
        },
    )
    assert done.status_code == 302
    view = bn_context.actions.get(world.active_id)
    assert (view.status, view.outcome_kind, view.outcome, view.result_message) == (
        "closed",
        "found_otherwise",
        "gevonden",
        "Dank u!",
    )
    page = client.get(f"/actions/{world.active_id}").get_data(as_text=True)
    assert "gevonden" in page  # on the timeline and in the details
    again = client.post(
        f"/actions/{world.active_id}/close",
        data={"csrf_token": token, "outcome_kind": "other", "outcome": "x"},
        follow_redirects=True,
    )
    assert "cannot go from closed to closed" in again.get_data(as_text=True)


def test_recipient_preview_counts_inside_the_drawn_area(
    world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    token = csrf_token(client, "/actions/new")
    headers = {"X-CSRFToken": token}
    near = client.post(
        "/actions/recipients-preview",
        headers=headers,
        data={"area_kind": "circle", "lon": str(UTRECHT[0]), "lat": str(UTRECHT[1]), "radius_m": "500"},
    )
    far = client.post(
        "/actions/recipients-preview",
        headers=headers,
        data={"area_kind": "circle", "lon": "6.5", "lat": "53.2", "radius_m": "500"},
    )
    polygon = client.post(
        "/actions/recipients-preview",
        headers=headers,
        data={"area_kind": "polygon", "geojson": json.dumps(POLYGON)},
    )
    bad = client.post(
        "/actions/recipients-preview",
        headers=headers,
        data={"area_kind": "circle", "lon": "east", "lat": "52", "radius_m": "5"},
    )
    assert near.get_json() == {"recipients": 1}
    assert far.get_json() == {"recipients": 0}
    assert polygon.get_json() == {"recipients": 1}
    assert bad.status_code == 400 and "lon" in bad.get_json()["error"]


def test_viewer_sees_masked_callers_and_no_tips(
    world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    viewer = client_for("viewer").get(f"/actions/{world.active_id}").get_data(as_text=True)
    operator = client_for("operator").get(f"/actions/{world.active_id}").get_data(as_text=True)
    assert "+31612345678" not in viewer and "+3161234****" in viewer
    assert "+31612345678" in operator
    assert f"/tips/{world.tip_id}/audio" in operator and f"/tips/{world.tip_id}/audio" not in viewer


def test_tip_audio_streams_the_wav_with_ranges(
    world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("centralist")
    whole = client.get(f"/tips/{world.tip_id}/audio")
    assert whole.status_code == 200 and whole.mimetype == "audio/wav" and whole.data[:4] == b"RIFF"
    part = client.get(f"/tips/{world.tip_id}/audio", headers={"Range": "bytes=0-3"})
    assert part.status_code == 206 and part.data == b"RIFF"


def test_tip_outside_the_recordings_folder_is_not_served(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient], tmp_path: Any
) -> None:
    from burgernet.models import Tip

    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"RIFF-secret")
    with session_scope(bn_context.sessions) as session:
        tip = session.get(Tip, world.tip_id)
        assert tip is not None
        tip.recording_path = str(outside)
    assert client_for("admin").get(f"/tips/{world.tip_id}/audio").status_code == 404


def test_timeline_lists_the_audit_events(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    page = client_for("viewer").get(f"/actions/{world.active_id}").get_data(as_text=True)
    with session_scope(bn_context.sessions) as session:
        verbs = list(
            session.scalars(
                select(AuditEvent.verb).where(
                    AuditEvent.entity == "action", AuditEvent.entity_id == str(world.active_id)
                )
            )
        )
    # Starting the action also asked for its alert broadcast.
    assert verbs == ["create", "active", "broadcast-alert"]
    assert "<strong>create</strong>" in page and "<strong>active</strong>" in page
    assert "<strong>broadcast-alert</strong>" in page

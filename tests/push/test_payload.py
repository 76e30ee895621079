"""The push payload (burgernet.app_alerts): every kind of area, the size limit, the document."""

from __future__ import annotations

import json
import math
from typing import Any

import shapely
from shapely.geometry import mapping, shape
from sqlalchemy import select

from burgernet.app_alerts import MAX_PAYLOAD_BYTES, action_document, action_payload
from burgernet.db import session_scope
from burgernet.models import Action, PostcodeArea, Region
from composition.context import Context


def action(**area: object) -> Action:
    return Action(id=12, action_type="missing_child", title="Vermist kind, 8 jaar", photo_path=None, **area)


def decode(raw: bytes) -> dict[str, Any]:
    assert len(raw) <= MAX_PAYLOAD_BYTES
    document: dict[str, Any] = json.loads(raw.decode("utf-8"))
    return document


def ring(lon: float, lat: float, radius_deg: float, points: int) -> list[list[float]]:
    coords = [
        [
            lon + radius_deg * math.cos(2 * math.pi * i / points),
            lat + radius_deg * 0.6 * math.sin(2 * math.pi * i / points),
        ]
        for i in range(points)
    ]
    return [*coords, coords[0]]


def test_a_circle_travels_as_centre_and_radius() -> None:
    circle = action(area_kind="circle", center_lat=52.09, center_lon=5.12, radius_m=3000.0)
    payload = decode(
        action_payload(circle, kind="alert", message="Gezien? Bel 0800-0011", free_number="08000011")
    )
    assert payload == {
        "v": 1,
        "kind": "alert",
        "action": {
            "id": 12,
            "code": None,
            "type": "missing_child",
            "title": "Vermist kind, 8 jaar",
            "photo_url": None,
            "area": {"kind": "circle", "lat": 52.09, "lon": 5.12, "radius_m": 3000},
        },
        "message": "Gezien? Bel 0800-0011",
        "free_number": "08000011",
    }


def test_national_and_reply() -> None:
    national = action(area_kind="national")
    national.photo_path = "actions/12.jpg"
    national.action_code = "4821"
    payload = decode(
        action_payload(
            national, kind="reply", message="Welke kant op?", free_number="08000011", sighting_id=7
        )
    )
    assert payload["kind"] == "reply" and payload["sighting_id"] == 7
    assert payload["action"] == {
        "id": 12,
        "code": "4821",
        "type": "missing_child",
        "title": "Vermist kind, 8 jaar",
        "photo_url": "/app/actions/12/photo",
        "area": {"kind": "national"},
    }


def test_a_small_polygon_travels_whole_and_a_detailed_one_simplified_but_never_smaller() -> None:
    small = {"type": "Polygon", "coordinates": [ring(5.12, 52.09, 0.02, 12)]}
    payload = decode(
        action_payload(
            action(area_kind="polygon", area_geojson=json.dumps(small)),
            kind="alert",
            message="m",
            free_number="08000011",
        )
    )
    area = payload["action"]["area"]
    assert area["kind"] == "polygon"
    assert shape(area["geojson"]).equals_exact(shape(small), 1e-5)

    outline = ring(5.12, 52.09, 0.05, 3000)
    detailed = {"type": "Polygon", "coordinates": [outline]}
    assert len(json.dumps(detailed)) > 10 * MAX_PAYLOAD_BYTES
    polygon = action(area_kind="polygon", area_geojson=json.dumps(detailed))
    payload = decode(action_payload(polygon, kind="alert", message="m", free_number="08000011"))
    area = payload["action"]["area"]
    assert area["kind"] == "polygon"
    simplified = shape(area["geojson"])
    assert simplified.covers(shape(detailed))  # a device on the border is still told
    assert simplified.area < shape(detailed).area * 1.1
    # The document the app fetches has the full area.
    assert action_document(polygon)["area"]["geojson"]["coordinates"][0][:3] == [
        [round(x, 5) for x in point] for point in outline[:3]
    ]


def test_an_area_that_cannot_fit_says_fetch() -> None:
    squares = shapely.MultiPolygon(
        [
            shapely.box(
                4 + (i % 40) * 0.05, 51 + (i // 40) * 0.05, 4.01 + (i % 40) * 0.05, 51.01 + (i // 40) * 0.05
            )
            for i in range(400)
        ]
    )
    scattered = action(area_kind="polygon", area_geojson=json.dumps(mapping(squares)))
    payload = decode(action_payload(scattered, kind="update", message="m", free_number="08000011"))
    assert payload["action"]["area"] == {"kind": "fetch"}
    assert action_document(scattered)["area"]["kind"] == "polygon"


def test_postcodes_carry_their_centres_and_boundaries(bn_context: Context) -> None:
    boundary = {"type": "Polygon", "coordinates": [ring(5.12, 52.09, 0.01, 8)]}
    with session_scope(bn_context.sessions) as session:
        region_id = session.scalar(select(Region.id).order_by(Region.id).limit(1))
        session.merge(
            PostcodeArea(
                pc4="3511", region_id=region_id, lat=52.09, lon=5.12, boundary_geojson=json.dumps(boundary)
            )
        )
        session.merge(
            PostcodeArea(pc4="3512", region_id=region_id, lat=52.1, lon=5.13, boundary_geojson=None)
        )
        session.flush()
        postcodes = action(area_kind="postcodes", postcodes="3511AB,3511,3512")
        payload = decode(
            action_payload(postcodes, kind="alert", message="m", free_number="08000011", session=session)
        )
    area = payload["action"]["area"]
    assert area["kind"] == "postcodes"
    first, second = area["pc4"]
    assert (first["code"], first["lat"], first["lon"]) == ("3511", 52.09, 5.12)
    assert shape(first["geojson"]).equals_exact(shape(boundary), 1e-5)
    assert second == {"code": "3512", "lat": 52.1, "lon": 5.13, "geojson": None}


def test_a_long_message_is_cut_to_fit() -> None:
    circle = action(area_kind="circle", center_lat=52.09, center_lon=5.12, radius_m=3000.0)
    raw = action_payload(circle, kind="alert", message="é" * 5000, free_number="08000011")
    payload = decode(raw)
    assert payload["message"].endswith("…")
    assert len(raw) > MAX_PAYLOAD_BYTES - 10

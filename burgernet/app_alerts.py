"""What a push to the participant app says: the one builder of its JSON payload.

The service worker on the device reads this (``v`` 1, see the app contract): the kind (alert,
update, result, reply), the action with its area, the text, the free number. The device
matches its own stored places against the area and shows a notification only when one is
inside, so the area must never be *smaller* than the action's:

* a circle travels as centre and radius;
* a polygon as GeoJSON, simplified until the payload fits, then grown by the same tolerance
  (a Douglas-Peucker simplification stays within the tolerance of the original, so the grown
  shape covers it): a device near the border is rather told once too often than missed;
* postcodes as PC4 centres with their boundaries, simplified the same way (a PC4 without a
  boundary: the device uses a 2.5 km circle around the centre);
* national: every device;
* anything that still does not fit: ``{"kind": "fetch"}``, and the device asks
  ``GET /app/api/actions/<id>`` (:func:`action_document`, always the full area).

The plaintext stays within :data:`MAX_PAYLOAD_BYTES` (3,800): after RFC 8291 encryption (86
bytes of header, 17 of padding delimiter and tag) it is under the 4,096 bytes every push service
accepts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import shapely
from shapely.geometry import mapping, shape
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from burgernet.domain import AreaKind
from burgernet.models import Action, PostcodeArea

__all__ = ["MAX_PAYLOAD_BYTES", "PAYLOAD_VERSION", "action_document", "action_payload", "encode"]

PAYLOAD_VERSION = 1
MAX_PAYLOAD_BYTES = 3_800
# Tried in order (degrees; 0.0001° ≈ 10 m, 0.01° ≈ 1 km) until the payload fits.
_TOLERANCES = (0.0, 0.0001, 0.0003, 0.001, 0.003, 0.01)
_DECIMALS = 5  # about 1 m
PUSH_KINDS = ("alert", "update", "result", "reply")


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, _DECIMALS)
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _geometry_json(geometry: shapely.Geometry, tolerance: float) -> dict[str, Any]:
    if tolerance > 0:
        # Simplified, then grown by the tolerance (mitred: no new vertices at the corners).
        # The margin on top covers the rounding of the coordinates below.
        geometry = geometry.simplify(tolerance, preserve_topology=True).buffer(
            tolerance + 2 * 10**-_DECIMALS, join_style="mitre", mitre_limit=2.0
        )
    return dict(_rounded(mapping(geometry)))


def _pc4_rows(session: Session, postcodes: Iterable[str]) -> list[tuple[str, float, float, str | None]]:
    codes = sorted({code[:4] for code in postcodes if code})
    rows = session.execute(
        select(PostcodeArea.pc4, PostcodeArea.lat, PostcodeArea.lon, PostcodeArea.boundary_geojson)
        .where(PostcodeArea.pc4.in_(codes))
        .order_by(PostcodeArea.pc4)
    ).all()
    return [(row[0], float(row[1]), float(row[2]), row[3]) for row in rows]


def _areas(action: Action, session: Session | None) -> Iterable[dict[str, Any]]:
    """The action's area, from exact to coarser; the first that fits is used."""
    kind = AreaKind(action.area_kind)
    if kind is AreaKind.NATIONAL:
        yield {"kind": "national"}
    elif kind is AreaKind.CIRCLE:
        yield {
            "kind": "circle",
            "lat": round(float(action.center_lat or 0), 6),
            "lon": round(float(action.center_lon or 0), 6),
            "radius_m": round(float(action.radius_m or 0)),
        }
    elif kind is AreaKind.POLYGON:
        geometry = shape(json.loads(action.area_geojson or "{}"))
        for tolerance in _TOLERANCES:
            yield {"kind": "polygon", "geojson": _geometry_json(geometry, tolerance)}
    else:
        if session is None:
            raise ValueError(f"action {action.id}: postcodes need a database session")
        rows = _pc4_rows(session, (action.postcodes or "").split(","))
        shapes = {code: shape(json.loads(boundary)) for code, _la, _lo, boundary in rows if boundary}
        for tolerance in _TOLERANCES:
            yield {
                "kind": "postcodes",
                "pc4": [
                    {
                        "code": code,
                        "lat": round(lat, _DECIMALS),
                        "lon": round(lon, _DECIMALS),
                        "geojson": _geometry_json(shapes[code], tolerance) if code in shapes else None,
                    }
                    for code, lat, lon, _boundary in rows
                ],
            }


def _action_object(action: Action, area: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": action.id,
        # The short code a caller keys in on the free number (assigned when the action starts).
        "code": getattr(action, "action_code", None),
        "type": action.action_type,
        "title": action.title,
        "photo_url": f"/app/actions/{action.id}/photo" if action.photo_path else None,
        "area": area,
    }


def action_document(action: Action, session: Session | None = None) -> dict[str, Any]:
    """The public "action" object with the full area (never "fetch"): what the app fetches."""
    session = session or object_session(action)
    area = next(iter(_areas(action, session)))
    return _action_object(action, area)


def action_payload(
    action: Action,
    *,
    kind: str,
    message: str,
    free_number: str,
    sighting_id: int | None = None,
    session: Session | None = None,
) -> bytes:
    """The push payload (UTF-8 JSON, at most MAX_PAYLOAD_BYTES) for one kind of message."""
    if kind not in PUSH_KINDS:
        raise ValueError(f"unknown push kind {kind!r}")
    session = session or object_session(action)
    payload: dict[str, Any] = {
        "v": PAYLOAD_VERSION,
        "kind": kind,
        "action": None,
        "message": message,
        "free_number": free_number,
    }
    if sighting_id is not None:
        payload["sighting_id"] = sighting_id
    for area in _areas(action, session):
        payload["action"] = _action_object(action, area)
        encoded = encode(payload)
        if len(encoded) <= MAX_PAYLOAD_BYTES:
            return encoded
    payload["action"] = _action_object(action, {"kind": "fetch"})
    encoded = encode(payload)
    if len(encoded) > MAX_PAYLOAD_BYTES:
        # Only an absurdly long text gets here: cut it (by bytes, on a character boundary);
        # the app links to the full action.
        text = str(payload["message"]).encode("utf-8")
        keep = max(0, len(text) - (len(encoded) - MAX_PAYLOAD_BYTES) - len("…".encode()))
        payload["message"] = text[:keep].decode("utf-8", errors="ignore").rstrip() + "…"
        encoded = encode(payload)
    return encoded

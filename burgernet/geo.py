"""GeoJSON in, shapely geometries and routing areas out (validation with clear messages)."""

from __future__ import annotations

import json
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from burgernet.models import NL_BOUNDS

_AREA_TYPES = frozenset({"Polygon", "MultiPolygon"})


class InvalidGeometry(ValueError):
    pass


def parse_area_geometry(geometry: Any) -> BaseGeometry:
    """A GeoJSON Polygon/MultiPolygon (dict or JSON text) → a valid shapely geometry inside NL."""
    if isinstance(geometry, str):
        try:
            geometry = json.loads(geometry)
        except json.JSONDecodeError as exc:
            raise InvalidGeometry(f"not JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(geometry, dict):
        raise InvalidGeometry("a GeoJSON geometry must be an object")
    if geometry.get("type") == "Feature":
        geometry = geometry.get("geometry") or {}
    kind = geometry.get("type")
    if kind not in _AREA_TYPES:
        raise InvalidGeometry(f"geometry type must be Polygon or MultiPolygon, not {kind!r}")
    try:
        parsed = shape(geometry)
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise InvalidGeometry(f"malformed {kind} coordinates: {exc}") from None
    if parsed.is_empty:
        raise InvalidGeometry("the area is empty")
    if not parsed.is_valid:
        raise InvalidGeometry(f"the area is not a valid polygon: {shapely.is_valid_reason(parsed)}")
    min_lon, min_lat, max_lon, max_lat = parsed.bounds
    lo_lon, lo_lat, hi_lon, hi_lat = NL_BOUNDS
    if min_lon < lo_lon or max_lon > hi_lon or min_lat < lo_lat or max_lat > hi_lat:
        raise InvalidGeometry(
            "the area lies (partly) outside the Netherlands; coordinates must be [longitude, latitude]"
        )
    return parsed


def to_geojson(geometry: BaseGeometry) -> str:
    return json.dumps(shapely.geometry.mapping(geometry), separators=(",", ":"))

"""Areas of actions and inquiries: checked once, from what a user gave to what is stored.

An area arrives as an :class:`AreaSpec` (the command line, the panel's forms, the API). Actions
and inquiries store it in the same columns (``area_kind``, centre and radius, GeoJSON, or a
normalised postcode list); :func:`area_columns` checks a spec and gives those columns, with a
message that says what is wrong. What each may cover differs only in its :class:`AreaLimits`:
an action's circle may reach 300 km and an AMBER Alert may be national; an inquiry asks one
neighbourhood. :func:`stored_spec` and :func:`stored_area` read stored columns back, as a spec
(an inquiry "in the same area as its action") or as the routing view that recipient selection
and call routing match people against.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from shapely.geometry import shape

from burgernet.domain import AreaKind
from burgernet.errors import DomainError
from burgernet.geo import InvalidGeometry, parse_area_geometry, to_geojson
from burgernet.models import NL_BOUNDS
from burgernet.postcode import InvalidPostcode, normalise_postcode
from routing import model as rm

AREA_COLUMNS = ("area_kind", "center_lon", "center_lat", "radius_m", "area_geojson", "postcodes")


@dataclass(frozen=True)
class AreaSpec:
    kind: AreaKind
    centre: tuple[float, float] | None = None  # lon, lat
    radius_m: float | None = None
    geojson: str | None = None
    postcodes: tuple[str, ...] = ()


class InvalidArea(DomainError):
    """The area cannot be stored; the message says what to change."""

    code: ClassVar[str] = "area.refused"


@dataclass(frozen=True)
class AreaLimits:
    """What one kind of request may cover."""

    max_radius_m: float
    too_wide: str  # the message for a larger circle
    national_refused: str | None = None  # None: a national area is allowed; else why not


class StoredArea(Protocol):
    """A row with the area columns (an Action or an Inquiry)."""

    @property
    def area_kind(self) -> str: ...
    @property
    def center_lon(self) -> float | None: ...
    @property
    def center_lat(self) -> float | None: ...
    @property
    def radius_m(self) -> float | None: ...
    @property
    def area_geojson(self) -> str | None: ...
    @property
    def postcodes(self) -> str | None: ...


def area_columns(area: AreaSpec, limits: AreaLimits) -> dict[str, Any]:
    """A checked spec → the stored area columns, ``area_kind`` included (InvalidArea if not)."""
    if area.kind is AreaKind.CIRCLE:
        if area.centre is None or not area.radius_m or area.radius_m <= 0:
            raise InvalidArea("a circle needs a centre (lon, lat) and a radius above 0 metres")
        lon, lat = area.centre
        lo_lon, lo_lat, hi_lon, hi_lat = NL_BOUNDS
        if not (lo_lon <= lon <= hi_lon and lo_lat <= lat <= hi_lat):
            raise InvalidArea("the circle's centre lies outside the Netherlands (give lon, lat)")
        if area.radius_m > limits.max_radius_m:
            raise InvalidArea(limits.too_wide)
        return {
            "area_kind": area.kind.value,
            "center_lon": lon,
            "center_lat": lat,
            "radius_m": float(area.radius_m),
        }
    if area.kind is AreaKind.POLYGON:
        try:
            return {
                "area_kind": area.kind.value,
                "area_geojson": to_geojson(parse_area_geometry(area.geojson or "")),
            }
        except InvalidGeometry as exc:
            raise InvalidArea(f"area: {exc}") from None
    if area.kind is AreaKind.POSTCODES:
        if not area.postcodes:
            raise InvalidArea("a postcode area needs at least one postcode")
        try:
            codes = sorted({normalise_postcode(code) for code in area.postcodes})
        except InvalidPostcode as exc:
            raise InvalidArea(str(exc)) from None
        return {"area_kind": area.kind.value, "postcodes": ",".join(codes)}
    if limits.national_refused is not None:
        raise InvalidArea(limits.national_refused)
    return {"area_kind": AreaKind.NATIONAL.value}


def _columns_of(stored: StoredArea | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(stored, Mapping):
        return stored
    return {name: getattr(stored, name) for name in AREA_COLUMNS}


def stored_spec(stored: StoredArea | Mapping[str, Any]) -> AreaSpec:
    """Stored area columns (a row, or the columns :func:`area_columns` gave) → a spec."""
    columns = _columns_of(stored)
    kind = AreaKind(columns["area_kind"])
    if kind is AreaKind.CIRCLE:
        return AreaSpec(
            kind, centre=(columns["center_lon"], columns["center_lat"]), radius_m=columns["radius_m"]
        )
    if kind is AreaKind.POLYGON:
        return AreaSpec(kind, geojson=columns["area_geojson"])
    if kind is AreaKind.POSTCODES:
        return AreaSpec(
            kind, postcodes=tuple(code for code in (columns.get("postcodes") or "").split(",") if code)
        )
    return AreaSpec(kind)


def stored_area(stored: StoredArea | Mapping[str, Any]) -> rm.Area:
    """Stored area columns → the routing view that recipient selection and call routing use."""
    columns = _columns_of(stored)
    kind = AreaKind(columns["area_kind"])
    if kind is AreaKind.CIRCLE:
        lon, lat, radius = columns["center_lon"], columns["center_lat"], columns["radius_m"]
        assert lon is not None and lat is not None and radius
        return rm.CircleArea(rm.Location(float(lon), float(lat)), float(radius))
    if kind is AreaKind.POLYGON:
        assert columns["area_geojson"] is not None
        return rm.PolygonArea(shape(json.loads(columns["area_geojson"])))
    if kind is AreaKind.POSTCODES:
        assert columns.get("postcodes") is not None
        return rm.PostcodeArea(frozenset(code for code in columns["postcodes"].split(",") if code))
    return rm.NationalArea()


__all__ = [
    "AREA_COLUMNS",
    "AreaLimits",
    "AreaSpec",
    "InvalidArea",
    "StoredArea",
    "area_columns",
    "stored_area",
    "stored_spec",
]

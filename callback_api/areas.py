"""Action areas as the panel and the API receive them, and as the maps draw them.

Input arrives as loose strings (form fields) or JSON (API); both become the core's
:class:`burgernet.actions.AreaSpec`, validated by the same rules as the command line
(``ActionService`` re-checks everything; here we only turn text into numbers with a
message that names the field). For the live recipient count the spec also becomes a
routing area, so the count uses exactly the matching the broadcast will use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import shapely
from shapely.geometry import mapping
from sqlalchemy import select
from sqlalchemy.orm import Session

from burgernet.actions import AreaSpec
from burgernet.domain import AreaKind
from burgernet.geo import InvalidGeometry, parse_area_geometry
from burgernet.models import Action, PostcodeArea
from burgernet.postcode import InvalidPostcode, normalise_postcode
from callback_api.errors import InputInvalid
from routing import model as rm

_SPLIT = re.compile(r"[\s,;]+")
# Postcodes may contain a space ("3512 CD"): only commas, semicolons and new lines separate them.
_POSTCODE_SPLIT = re.compile(r"[,;\n]+")


class AreaInputError(InputInvalid):
    """The area as given cannot be understood; the message names the field."""

    code: ClassVar[str] = "area.invalid"


def _number(value: object, name: str) -> float:
    try:
        number = float(str(value).strip().replace(",", ".")) if not isinstance(value, int | float) else value
    except ValueError:
        raise AreaInputError(f"{name}: {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise AreaInputError(f"{name}: not a finite number")
    return float(number)


def split_list(text: str) -> tuple[str, ...]:
    """``"c-mn-1, c-mn-2"`` → ``("c-mn-1", "c-mn-2")``; order kept (it is the ringing order)."""
    return tuple(part for part in _SPLIT.split(text.strip()) if part)


def area_from_fields(kind: str, fields: Mapping[str, Any]) -> AreaSpec:
    """Form or API fields → an area spec: lon/lat/radius_m, geojson, or postcodes."""
    try:
        area_kind = AreaKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in AreaKind)
        raise AreaInputError(f"area kind must be one of {allowed}, not {kind!r}") from None
    if area_kind is AreaKind.CIRCLE:
        for name in ("lon", "lat", "radius_m"):
            if fields.get(name) in (None, ""):
                raise AreaInputError(f"a circle needs {name}")
        return AreaSpec(
            area_kind,
            centre=(_number(fields["lon"], "lon"), _number(fields["lat"], "lat")),
            radius_m=_number(fields["radius_m"], "radius_m"),
        )
    if area_kind is AreaKind.POLYGON:
        geojson = fields.get("geojson")
        if geojson in (None, ""):
            raise AreaInputError("a polygon needs GeoJSON (paste it or draw it on the map)")
        text = geojson if isinstance(geojson, str) else json.dumps(geojson)
        try:
            parse_area_geometry(text)  # the clear message now, not a generic one later
        except InvalidGeometry as exc:
            raise AreaInputError(f"GeoJSON: {exc}") from None
        return AreaSpec(area_kind, geojson=text)
    if area_kind is AreaKind.POSTCODES:
        raw = fields.get("postcodes") or ""
        if isinstance(raw, list | tuple):
            codes = tuple(str(code) for code in raw)
        else:
            codes = tuple(part.strip() for part in _POSTCODE_SPLIT.split(str(raw)) if part.strip())
        if not codes:
            raise AreaInputError("a postcode area needs at least one postcode")
        try:
            return AreaSpec(area_kind, postcodes=tuple(normalise_postcode(str(code)) for code in codes))
        except InvalidPostcode as exc:
            raise AreaInputError(str(exc)) from None
    return AreaSpec(AreaKind.NATIONAL)


def routing_area(spec: AreaSpec) -> rm.Area:
    """The routing/broadcast view of a spec (for counting who an alert would reach)."""
    if spec.kind is AreaKind.CIRCLE:
        assert spec.centre is not None and spec.radius_m is not None
        return rm.CircleArea(rm.Location(spec.centre[0], spec.centre[1]), spec.radius_m)
    if spec.kind is AreaKind.POLYGON:
        try:
            return rm.PolygonArea(parse_area_geometry(spec.geojson or ""))
        except InvalidGeometry as exc:
            raise AreaInputError(f"GeoJSON: {exc}") from None
    if spec.kind is AreaKind.POSTCODES:
        return rm.PostcodeArea(frozenset(spec.postcodes))
    return rm.NationalArea()


def action_feature(session: Session, action: Action) -> dict[str, Any]:
    """A GeoJSON Feature to draw an action: circles as a point with ``radius_m`` (Leaflet
    draws real circles), polygons as they are, postcode lists as their PC4 outlines or
    centres; a national alert has no geometry."""
    properties: dict[str, Any] = {
        "id": action.id,
        "title": action.title,
        "type": action.action_type,
        "status": action.status,
        "area_kind": action.area_kind,
    }
    geometry: dict[str, Any] | None = None
    kind = AreaKind(action.area_kind)
    if kind is AreaKind.CIRCLE:
        geometry = {"type": "Point", "coordinates": [action.center_lon, action.center_lat]}
        properties["radius_m"] = action.radius_m
    elif kind is AreaKind.POLYGON and action.area_geojson:
        geometry = json.loads(action.area_geojson)
    elif kind is AreaKind.POSTCODES and action.postcodes:
        pc4s = sorted({code[:4] for code in action.postcodes.split(",") if code})
        places = session.execute(
            select(PostcodeArea.lon, PostcodeArea.lat, PostcodeArea.boundary_geojson).where(
                PostcodeArea.pc4.in_(pc4s)
            )
        ).all()
        outlines = [shapely.geometry.shape(json.loads(b)) for _lon, _lat, b in places if b]
        if outlines:
            geometry = mapping(shapely.union_all(outlines))
        elif places:
            geometry = {"type": "MultiPoint", "coordinates": [[lon, lat] for lon, lat, _b in places]}
            properties["radius_m"] = 1000.0  # PC4 centres only: drawn as 1 km markers
    return {"type": "Feature", "geometry": geometry, "properties": properties}

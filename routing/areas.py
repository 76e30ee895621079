"""Which active actions cover a caller: a spatial index over the actions' areas.

Built once per change of the active-action set (the adapters cache it by version), then
queried per call: an STRtree gives the few candidates whose bounding box holds the point,
an exact test decides (geodesic distance for circles, border-inclusive point-in-polygon).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Protocol

import shapely
from shapely import STRtree
from shapely.geometry import Point, box

from routing.model import (
    ActiveAction,
    Caller,
    CircleArea,
    Location,
    NationalArea,
    PolygonArea,
    PostcodeArea,
)

EARTH_RADIUS_M = 6_371_008.8
_METRES_PER_DEGREE_LAT = 111_320.0


def distance_m(a: Location, b: Location) -> float:
    """Great-circle (haversine) distance; well under 0.5 % off anywhere in the Netherlands."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi = phi2 - phi1
    dlmb = math.radians(b.lon - a.lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _circle_envelope(area: CircleArea) -> shapely.Geometry:
    # A little margin so the exact test, not the envelope, decides at the border.
    margin = area.radius_m * 1.01 + 1.0
    dlat = margin / _METRES_PER_DEGREE_LAT
    dlon = margin / (_METRES_PER_DEGREE_LAT * max(0.01, math.cos(math.radians(area.centre.lat))))
    return box(area.centre.lon - dlon, area.centre.lat - dlat, area.centre.lon + dlon, area.centre.lat + dlat)


class AreaIndex:
    """Immutable index of active actions by area."""

    def __init__(self, actions: Iterable[ActiveAction]) -> None:
        self.actions: dict[int, ActiveAction] = {}
        self._national: list[int] = []
        self._by_postcode: dict[str, list[int]] = {}
        geometric: list[ActiveAction] = []
        envelopes: list[shapely.Geometry] = []
        for action in actions:
            self.actions[action.action_id] = action
            area = action.area
            if isinstance(area, NationalArea):
                self._national.append(action.action_id)
            elif isinstance(area, PostcodeArea):
                for code in area.postcodes:
                    self._by_postcode.setdefault(code.upper(), []).append(action.action_id)
            elif isinstance(area, CircleArea):
                geometric.append(action)
                envelopes.append(_circle_envelope(area))
            elif isinstance(area, PolygonArea):
                shapely.prepare(area.geometry)
                geometric.append(action)
                envelopes.append(area.geometry)
            else:  # pragma: no cover - the Area union is closed
                raise TypeError(f"unknown area {area!r}")
        self._geometric = geometric
        self._tree = STRtree(envelopes) if envelopes else None

    def __len__(self) -> int:
        return len(self.actions)

    def covering(self, caller: Caller) -> list[ActiveAction]:
        """Every active action whose area holds the caller (location and/or postcode)."""
        found: dict[int, ActiveAction] = {}
        for action_id in self._national:
            found[action_id] = self.actions[action_id]
        if caller.postcode:
            code = caller.postcode.upper()
            for key in {code, code[:4]}:
                for action_id in self._by_postcode.get(key, ()):
                    found[action_id] = self.actions[action_id]
        if caller.location is not None and self._tree is not None:
            for action in self._at(caller.location):
                found[action.action_id] = action
        return list(found.values())

    def _at(self, where: Location) -> list[ActiveAction]:
        assert self._tree is not None
        point = Point(where.lon, where.lat)
        hits: list[ActiveAction] = []
        for position in self._tree.query(point):
            action = self._geometric[int(position)]
            area = action.area
            if isinstance(area, CircleArea):
                if distance_m(area.centre, where) <= area.radius_m:
                    hits.append(action)
            elif isinstance(area, PolygonArea) and shapely.intersects_xy(area.geometry, where.lon, where.lat):
                hits.append(action)
        return hits


class LinearScanIndex:
    """The same answers as :class:`AreaIndex` by testing every area: the naive baseline."""

    def __init__(self, actions: Iterable[ActiveAction]) -> None:
        self.actions = {action.action_id: action for action in actions}

    def __len__(self) -> int:
        return len(self.actions)

    def covering(self, caller: Caller) -> list[ActiveAction]:
        return covering_by_scan(self.actions.values(), caller)


class CoveringIndex(Protocol):
    """What the decision needs of an index: the active actions and those covering a caller."""

    actions: dict[int, ActiveAction]

    def covering(self, caller: Caller) -> list[ActiveAction]: ...


def covering_by_scan(actions: Iterable[ActiveAction], caller: Caller) -> list[ActiveAction]:
    hits = []
    for action in actions:
        area = action.area
        if isinstance(area, NationalArea):
            hits.append(action)
        elif isinstance(area, PostcodeArea):
            code = (caller.postcode or "").upper()
            if code and (code in area.postcodes or code[:4] in area.postcodes):
                hits.append(action)
        elif caller.location is None:
            continue
        elif isinstance(area, CircleArea):
            if distance_m(area.centre, caller.location) <= area.radius_m:
                hits.append(action)
        elif isinstance(area, PolygonArea) and shapely.intersects_xy(
            area.geometry, caller.location.lon, caller.location.lat
        ):
            hits.append(action)
    return hits

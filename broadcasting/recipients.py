"""Who receives an alert: every participant inside the action's area, per channel.

Two stages, so that big areas stay fast on SQLite and PostgreSQL alike: the database does a
range scan on the ``(lat, lon)`` index for the area's bounding box (or an indexed postcode
match), then an exact, vectorised test in NumPy/shapely keeps the points really inside.
Opted-out participants are never selected; a national AMBER Alert selects everyone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from burgernet.domain import Channel
from burgernet.models import Participant
from routing import Area, CircleArea, PolygonArea, PostcodeArea
from routing.areas import EARTH_RADIUS_M

_METRES_PER_DEGREE_LAT = 111_320.0


@dataclass(frozen=True)
class Recipients:
    """Participant ids per channel (one delivery per person per channel)."""

    by_channel: dict[Channel, np.ndarray]

    def count(self, channel: Channel | None = None) -> int:
        if channel is not None:
            return len(self.by_channel.get(channel, ()))
        return int(sum(len(ids) for ids in self.by_channel.values()))

    def people(self) -> int:
        if not self.by_channel:
            return 0
        return len(np.unique(np.concatenate(list(self.by_channel.values()))))


def _bounding_box(area: Area) -> tuple[float, float, float, float] | None:
    if isinstance(area, CircleArea):
        dlat = area.radius_m / _METRES_PER_DEGREE_LAT
        dlon = area.radius_m / (_METRES_PER_DEGREE_LAT * max(0.01, math.cos(math.radians(area.centre.lat))))
        return area.centre.lon - dlon, area.centre.lat - dlat, area.centre.lon + dlon, area.centre.lat + dlat
    if isinstance(area, PolygonArea):
        return tuple(area.geometry.bounds)
    return None


def _candidates(area: Area) -> Any:  # a Select of (id, lat, lon, voice, sms, email)
    query = select(
        Participant.id,
        Participant.lat,
        Participant.lon,
        Participant.channel_voice,
        Participant.channel_sms,
        Participant.channel_email,
    ).where(Participant.opted_out.is_(False))
    box = _bounding_box(area)
    if box is not None:
        min_lon, min_lat, max_lon, max_lat = box
        return query.where(
            and_(Participant.lat.between(min_lat, max_lat), Participant.lon.between(min_lon, max_lon))
        )
    if isinstance(area, PostcodeArea):
        pc4 = sorted(code for code in area.postcodes if len(code) == 4)
        pc6 = sorted(code for code in area.postcodes if len(code) == 6)
        conditions = [Participant.postcode.in_(pc6)] if pc6 else []
        conditions += [Participant.postcode.like(f"{code}%") for code in pc4]
        return query.where(or_(*conditions))
    return query  # national: everyone not opted out


def _inside(area: Area, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    if isinstance(area, CircleArea):
        phi1, phi2 = math.radians(area.centre.lat), np.radians(lat)
        dphi = phi2 - phi1
        dlmb = np.radians(lon - area.centre.lon)
        h = np.sin(dphi / 2) ** 2 + math.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2) ** 2
        return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h))) <= area.radius_m
    if isinstance(area, PolygonArea):
        shapely.prepare(area.geometry)
        return shapely.intersects_xy(area.geometry, lon, lat)
    return np.ones(len(lat), dtype=bool)  # postcodes and national: the query was exact


def select_recipients(session: Session, area: Area) -> Recipients:
    rows = session.execute(_candidates(area)).all()
    if not rows:
        return Recipients({})
    data = np.array(rows, dtype=np.float64)
    ids = data[:, 0].astype(np.int64)
    keep = _inside(area, data[:, 1], data[:, 2])
    by_channel = {
        Channel.VOICE: ids[keep & (data[:, 3] > 0)],
        Channel.SMS: ids[keep & (data[:, 4] > 0)],
        Channel.EMAIL: ids[keep & (data[:, 5] > 0)],
    }
    return Recipients({channel: found for channel, found in by_channel.items() if len(found)})


def count_inside(session: Session, area: Area) -> int:
    """How many people an alert for ``area`` would reach (the panel's live count)."""
    return select_recipients(session, area).people()


__all__ = ["Recipients", "count_inside", "select_recipients"]

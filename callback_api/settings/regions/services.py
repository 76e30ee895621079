"""Police regions in the panel: list, create, edit (code, name, boundary GeoJSON), audited.

A region's code is what settings (``default_region``, ``asterisk.fallback_region``), the
routing snapshot and the API use; the configured default and fallback regions keep theirs.
Every change invalidates the routing snapshot; a code change also asks Asterisk to reload
(the fallback pool is chosen by region code). The boundary is checked like an action area:
a valid Polygon or MultiPolygon inside the Netherlands. Participants keep the region they
were given at import; a new boundary applies to later imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from burgernet.db import session_scope
from burgernet.geo import InvalidGeometry, parse_area_geometry, to_geojson
from burgernet.models import Centralist, Region
from burgernet.repositories import record_audit
from burgernet.services import Services
from burgernet.settings import Settings
from callback_api.errors import InputInvalid, NotFound
from callback_api.settings.services import ReloadOutcome, reload_asterisk

_CODE = re.compile(r"[A-Z0-9]{1,8}")


class RegionError(InputInvalid):
    """The region cannot be saved; the message says why (nothing was changed)."""

    code: ClassVar[str] = "region.invalid"


class RegionNotFound(RegionError, NotFound):
    code: ClassVar[str] = "region.not_found"
    status: ClassVar[int] = 404


@dataclass(frozen=True)
class RegionRow:
    id: int
    code: str
    name: str
    boundary_geojson: str | None
    centralists: int  # active ones


@dataclass(frozen=True)
class RegionInput:
    code: str
    name: str
    boundary_geojson: str  # "" for none


def _clean(data: RegionInput) -> tuple[str, str, str | None]:
    code = data.code.strip().upper()
    if not _CODE.fullmatch(code):
        raise RegionError("code: 1 to 8 capital letters or digits, e.g. MN")
    name = " ".join(data.name.split())
    if not name or len(name) > 80:
        raise RegionError("name: 1 to 80 characters")
    boundary: str | None = None
    if data.boundary_geojson.strip():
        try:
            boundary = to_geojson(parse_area_geometry(data.boundary_geojson))
        except InvalidGeometry as exc:
            raise RegionError(f"boundary GeoJSON: {exc}") from None
    return code, name, boundary


def _unique(session: Session, code: str, name: str, region_id: int | None) -> None:
    for column, value, label in ((Region.code, code, "code"), (Region.name, name, "name")):
        other = session.scalar(select(Region.id).where(column == value))
        if other is not None and other != region_id:
            raise RegionError(f"{label}: another region already has {value!r}")


def _row(session: Session, region: Region) -> RegionRow:
    count = session.scalar(
        select(func.count())
        .select_from(Centralist)
        .where(Centralist.region_id == region.id, Centralist.active)
    )
    return RegionRow(region.id, region.code, region.name, region.boundary_geojson, int(count or 0))


class RegionService:
    def __init__(self, services: Services, settings: Settings) -> None:
        self._services = services
        self._sessions = services.sessions
        # Settings name these regions by code: renaming them would break the configuration.
        self._protected_codes = frozenset({settings.default_region, settings.asterisk.fallback_region})

    def list_all(self) -> list[RegionRow]:
        with session_scope(self._sessions) as session:
            counts = dict(
                session.execute(
                    select(Centralist.region_id, func.count())
                    .where(Centralist.active)
                    .group_by(Centralist.region_id)
                ).all()
            )
            rows = session.execute(
                select(Region.id, Region.code, Region.name, Region.boundary_geojson).order_by(Region.code)
            )
            return [
                RegionRow(rid, code, name, boundary, int(counts.get(rid, 0)))
                for rid, code, name, boundary in rows
            ]

    def get(self, region_id: int) -> RegionRow:
        with session_scope(self._sessions) as session:
            region = session.get(Region, region_id)
            if region is None:
                raise RegionNotFound(f"no region {region_id}")
            return _row(session, region)

    def create(self, data: RegionInput, *, actor: str, source: str) -> RegionRow:
        code, name, boundary = _clean(data)
        with session_scope(self._sessions) as session:
            _unique(session, code, name, None)
            region = Region(code=code, name=name, boundary_geojson=boundary)
            session.add(region)
            session.flush()
            record_audit(
                session,
                actor=actor,
                verb="create",
                entity="region",
                entity_id=code,
                detail={"name": name, "boundary": boundary is not None},
                source=source,
            )
            row = RegionRow(region.id, code, name, boundary, 0)
        self._services.live.invalidate_actions()
        return row

    def update(
        self, region_id: int, data: RegionInput, *, actor: str, source: str
    ) -> tuple[RegionRow, ReloadOutcome | None]:
        """Save the region; a changed code also asks Asterisk to reload (the outcome, else None)."""
        code, name, boundary = _clean(data)
        with session_scope(self._sessions) as session:
            region = session.get(Region, region_id)
            if region is None:
                raise RegionNotFound(f"no region {region_id}")
            if code != region.code and region.code in self._protected_codes:
                raise RegionError(
                    f"code: {region.code} is the configured default or fallback region; "
                    "change the settings first"
                )
            _unique(session, code, name, region_id)
            changed: dict[str, object] = {}
            if code != region.code:
                changed["code"] = [region.code, code]
            if name != region.name:
                changed["name"] = [region.name, name]
            if boundary != region.boundary_geojson:
                changed["boundary"] = "replaced" if boundary else "removed"
            if changed:
                region.code, region.name, region.boundary_geojson = code, name, boundary
                session.flush()
                record_audit(
                    session,
                    actor=actor,
                    verb="edit",
                    entity="region",
                    entity_id=code,
                    detail=changed,
                    source=source,
                )
            row = _row(session, region)
        self._services.live.invalidate_actions()
        if "code" not in changed:
            return row, None
        return row, reload_asterisk(self._services, reason=f"region {row.code} renamed", actor=actor)

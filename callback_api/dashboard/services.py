"""What the dashboard shows: active actions and regions on the map, centralist availability,
broadcasts under way, and the live call feed (Redis pub/sub)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from broadcasting.service import BroadcastService
from burgernet.db import session_scope
from burgernet.domain import ActionStatus
from burgernet.models import Action, Broadcast, Centralist, Region
from burgernet.services import Services
from callback_api.areas import action_feature

UNDER_WAY = ("pending", "running")
# Fields of live events that carry a caller's number: masked without need-to-know.


@dataclass(frozen=True)
class CentralistPresence:
    endpoint: str
    name: str
    on_duty: bool
    region: str
    presence: str  # as Asterisk reports the endpoint, or "unknown"


class DashboardService:
    def __init__(self, services: Services, broadcasts: BroadcastService) -> None:
        self._sessions = services.sessions
        self._live = services.live
        self._broadcasts = broadcasts

    def broadcasts_under_way(self) -> list[dict[str, Any]]:
        """Broadcasts of active actions that are still pending or running, oldest first."""
        with session_scope(self._sessions) as session:
            rows = session.execute(
                select(Broadcast.id, Action.title)
                .join(Action, Action.id == Broadcast.action_id)
                .where(Action.status == ActionStatus.ACTIVE.value, Broadcast.status.in_(UNDER_WAY))
                .order_by(Broadcast.id)
            ).all()
        current = []
        for broadcast_id, title in rows:
            status = self._broadcasts.status(broadcast_id)
            if status is not None:
                current.append({**status.as_dict(), "action_title": title})
        return current

    def active_action_features(self) -> list[dict[str, Any]]:
        with session_scope(self._sessions) as session:
            rows = session.scalars(
                select(Action)
                .where(Action.status == ActionStatus.ACTIVE.value)
                .options(selectinload(Action.region))
                .order_by(Action.id)
            )
            return [action_feature(session, action) for action in rows]

    def region_features(self) -> list[dict[str, Any]]:
        """Regions with a boundary, as GeoJSON Features."""
        with session_scope(self._sessions) as session:
            rows = session.execute(
                select(Region.code, Region.name, Region.boundary_geojson).order_by(Region.code)
            ).all()
        return [
            {"type": "Feature", "geometry": json.loads(boundary), "properties": {"code": code, "name": name}}
            for code, name, boundary in rows
            if boundary
        ]

    def presence(self) -> list[CentralistPresence]:
        live = self._live.presence()
        with session_scope(self._sessions) as session:
            rows = session.execute(
                select(Centralist.sip_endpoint, Centralist.name, Centralist.on_duty, Region.code)
                .join(Region, Region.id == Centralist.region_id)
                .order_by(Region.code, Centralist.sip_endpoint)
            ).all()
        return [
            CentralistPresence(
                endpoint, name, bool(on_duty), region, live[endpoint].value if endpoint in live else "unknown"
            )
            for endpoint, name, on_duty, region in rows
        ]

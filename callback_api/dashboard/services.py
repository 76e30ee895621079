"""What the dashboard shows: active actions and regions on the map, centralist availability,
broadcasts under way, and the live call feed (Redis pub/sub)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from broadcasting.service import BroadcastService
from burgernet.db import session_scope
from burgernet.domain import ActionStatus
from burgernet.models import Action, Broadcast, Centralist, Region
from burgernet.services import Services
from callback_api.access import NeedToKnowService, Reader
from callback_api.areas import action_feature

UNDER_WAY = ("pending", "running")
# Fields of live events that carry a caller's number: masked without need-to-know.
PERSONAL_FIELDS = frozenset({"caller", "caller_number", "number", "phone", "callback_number"})


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

    def events(self, reader: Reader, *, heartbeat_seconds: float) -> Iterator[str]:
        """Redis pub/sub → server-sent events, with a heartbeat so proxies keep the stream open.

        Need-to-know (:mod:`callback_api.access`): the numbers in an event are masked unless
        ``reader`` may read its action's personal data (an event without an action: national
        roles only); what one stream decided per action is kept for the stream's life."""
        need_to_know = NeedToKnowService(self._sessions)
        decided: dict[int | None, bool] = {}

        def may_read(action_id: object) -> bool:
            key = action_id if isinstance(action_id, int) else None
            if key not in decided:
                decided[key] = need_to_know.may_read(reader, key)
            return decided[key]

        pubsub = self._live.client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self._live.keys.events)
        try:
            # Sent once subscribed: a client (or test) knows no event published after this is lost.
            yield "retry: 3000\n: subscribed\n\n"
            last = time.monotonic()
            while True:
                message = pubsub.get_message(timeout=1.0)
                if message is None:
                    if time.monotonic() - last >= heartbeat_seconds:
                        last = time.monotonic()
                        yield ": keepalive\n\n"
                    continue
                try:
                    event = json.loads(message["data"])
                except (TypeError, ValueError):
                    continue
                if not isinstance(event, dict):
                    continue
                if PERSONAL_FIELDS.intersection(event) and not may_read(event.get("action_id")):
                    event = {k: ("****" if k in PERSONAL_FIELDS else v) for k, v in event.items()}
                last = time.monotonic()
                yield _sse(event)
        finally:
            pubsub.close()


def _sse(event: dict[str, Any]) -> str:
    kind = str(event.get("type", "message")).replace("\n", " ")[:40]
    return f"event: {kind}\ndata: {json.dumps(event, default=str)}\n\n"

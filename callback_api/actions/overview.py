"""The control room's overview of the active actions: for each, the people its alert reached, the
calls and the tips; and the tips no action could be found for. What the dashboard's side panel
shows next to the map (``/actions/overview.json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select

from broadcasting.service import BroadcastService
from burgernet.db import session_scope
from burgernet.domain import ActionStatus
from burgernet.models import Action, Call, Region, Tip
from burgernet.services import Services

# Deliveries that reached someone: handed over (e-mail), delivered (SMS) or answered (voice).
REACHED = ("sent", "delivered", "answered")


@dataclass(frozen=True)
class ActionCounters:
    id: int
    title: str
    action_type: str
    region: str
    reached: int
    calls: int
    tips: int


@dataclass(frozen=True)
class Overview:
    actions: tuple[ActionCounters, ...]
    unassigned_tips: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class OverviewService:
    def __init__(self, services: Services, broadcasts: BroadcastService) -> None:
        self._sessions = services.sessions
        self._broadcasts = broadcasts

    def overview(self) -> Overview:
        with session_scope(self._sessions) as session:
            active = session.execute(
                select(Action.id, Action.title, Action.action_type, Region.code)
                .join(Region, Region.id == Action.region_id)
                .where(Action.status == ActionStatus.ACTIVE.value)
                .order_by(Action.id)
            ).all()
            ids = [row[0] for row in active]
            calls = dict(
                session.execute(
                    select(Call.action_id, func.count())
                    .where(Call.action_id.in_(ids))
                    .group_by(Call.action_id)
                ).all()
            )
            tips = dict(
                session.execute(
                    select(Tip.action_id, func.count()).where(Tip.action_id.in_(ids)).group_by(Tip.action_id)
                ).all()
            )
            unassigned = int(
                session.scalar(select(func.count()).select_from(Tip).where(Tip.action_id.is_(None))) or 0
            )
        counters = tuple(
            ActionCounters(
                action_id,
                title,
                action_type,
                region,
                self._reached(action_id),
                int(calls.get(action_id, 0)),
                int(tips.get(action_id, 0)),
            )
            for action_id, title, action_type, region in active
        )
        return Overview(counters, unassigned)

    def _reached(self, action_id: int) -> int:
        """Deliveries of the action's alert that reached someone (every channel)."""
        total = 0
        for status in self._broadcasts.of_action(action_id):
            document = status.as_dict()
            if document["kind"] != "alert":
                continue
            by_channel: dict[str, dict[str, int]] = document["by_channel"]  # type: ignore[assignment]
            total += sum(counts.get(name, 0) for counts in by_channel.values() for name in REACHED)
        return total

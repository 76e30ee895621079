"""Broadcast progress the way the panel shows it: status columns in a fixed order, whole
percentages, milestone times; and the list of broadcasts still under way for the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcasting.service import BroadcastService
from burgernet import domain
from burgernet.actions import UPDATE_MAX_CHARS as UPDATE_MAX_CHARS
from burgernet.db import session_scope
from burgernet.domain import ActionStatus, Channel
from burgernet.models import Action, Broadcast

# Columns left to right, as a delivery goes; a column is shown only when some delivery has it.
DELIVERY_STATUSES = domain.DELIVERY_STATUSES
CHANNELS = tuple(channel.value for channel in Channel)
MILESTONES = ("50%", "90%", "100%")
UNDER_WAY = ("pending", "running")


@dataclass(frozen=True)
class ChannelCounts:
    channel: str
    counts: tuple[int, ...]  # one per column of the broadcast's table
    total: int


@dataclass(frozen=True)
class BroadcastPanelView:
    id: int
    action_id: int
    kind: str
    status: str
    total: int
    handled: int
    percent: int
    columns: tuple[str, ...]
    channels: tuple[ChannelCounts, ...]
    seconds_to: tuple[tuple[str, float | None], ...]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def percent_handled(handled: int, total: int) -> int:
    """Rounded down: 99.9 % is not shown as done."""
    return min(100, handled * 100 // total) if total > 0 else 0


def _moment(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def panel_view(status: dict[str, Any]) -> BroadcastPanelView:
    """One ``BroadcastStatus.as_dict()`` as a table: channels × the statuses that occur."""
    by_channel: dict[str, dict[str, int]] = status["by_channel"]
    present = {name for counts in by_channel.values() for name in counts}
    # Statuses a newer worker may add are kept, after the known ones.
    columns = tuple(s for s in DELIVERY_STATUSES if s in present) + tuple(
        sorted(present - set(DELIVERY_STATUSES))
    )
    ordered = [c for c in CHANNELS if c in by_channel] + sorted(set(by_channel) - set(CHANNELS))
    channels = tuple(
        ChannelCounts(
            channel=name,
            counts=tuple(by_channel[name].get(column, 0) for column in columns),
            total=sum(by_channel[name].values()),
        )
        for name in ordered
    )
    seconds: dict[str, float] = status["seconds_to"]
    total, handled = int(status["total"]), int(status["handled"])
    return BroadcastPanelView(
        id=int(status["broadcast_id"]),
        action_id=int(status["action_id"]),
        kind=str(status["kind"]),
        status=str(status["status"]),
        total=total,
        handled=handled,
        percent=percent_handled(handled, total),
        columns=columns,
        channels=channels,
        seconds_to=tuple((milestone, seconds.get(milestone)) for milestone in MILESTONES),
        created_at=_moment(status["created_at"]) or datetime.min,
        started_at=_moment(status["started_at"]),
        finished_at=_moment(status["finished_at"]),
    )


def of_action(service: BroadcastService, action_id: int) -> list[BroadcastPanelView]:
    return [panel_view(status.as_dict()) for status in service.of_action(action_id)]


def under_way(sessions: sessionmaker[Session], service: BroadcastService) -> list[dict[str, Any]]:
    """Broadcasts of active actions that are still pending or running, oldest first."""
    with session_scope(sessions) as session:
        rows = session.execute(
            select(Broadcast.id, Action.title)
            .join(Action, Action.id == Broadcast.action_id)
            .where(Action.status == ActionStatus.ACTIVE.value, Broadcast.status.in_(UNDER_WAY))
            .order_by(Broadcast.id)
        ).all()
    current = []
    for broadcast_id, title in rows:
        status = service.status(broadcast_id)
        if status is not None:
            current.append({**status.as_dict(), "action_title": title})
    return current

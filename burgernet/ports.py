"""Ports: what the core needs from the outside world, as protocols the adapters implement.

The core (this package) never imports an adapter. Where a domain rule needs an effect outside
the database, the rule calls a port defined here and the composition root plugs in the
adapter that implements it (``broadcasting`` implements :class:`BroadcastPort`).
"""

from __future__ import annotations

import enum
from typing import Protocol

from sqlalchemy.orm import Session

from burgernet.models import Action


class BroadcastKind(enum.StrEnum):
    ALERT = "alert"  # the action started: everyone in the area
    UPDATE = "update"  # new information: everyone the alert reached
    RESULT = "result"  # the action closed: its result to everyone the alert reached


class BroadcastPort(Protocol):
    """Outbound broadcasting as the action life cycle sees it.

    The first three run inside the caller's transaction, so a broadcast is written together
    with the status change that asks for it, or not at all. :meth:`nudge` runs after the
    commit and is best-effort: a lost nudge is repaired by the workers' sweep of pending
    broadcasts.
    """

    def request(self, session: Session, action: Action, kind: BroadcastKind, message: str) -> int:
        """Write a pending broadcast of ``kind`` for ``action``; returns its id."""
        ...

    def cancel_queued(self, session: Session, action_id: int) -> int:
        """Cancel the action's deliveries that have not gone out yet; returns how many."""
        ...

    def has_alerted(self, session: Session, action_id: int) -> bool:
        """Whether any broadcast was ever written for the action."""
        ...

    def nudge(self, broadcast_id: int) -> None:
        """Tell the workers a broadcast is waiting (after the commit; may raise, is logged)."""
        ...

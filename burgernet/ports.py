"""Ports: what the core needs from the outside world, as protocols the adapters implement.

The core (this package) never imports an adapter. Where a domain rule needs an effect outside
the database, the rule calls a port defined here and the composition root plugs in the
adapter that implements it (``broadcasting`` implements :class:`BroadcastPort`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
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


# --- live events (the panel's pages follow them) ----------------------------------------------------
class LiveEventKind(enum.StrEnum):
    """Domain events published on the live feed (Redis pub/sub, ``LiveKeys.events``).

    An event is a small JSON object: ``type`` (one of these), ``action_id`` when it belongs to an
    action, and ids to fetch the details by. Pages re-read what changed through the panel, which
    applies need-to-know; an event is a nudge, not the data (numbers in it are masked for readers
    without need-to-know). An event with ``for_endpoint`` is for the user linked to that
    centralist's SIP endpoint only.
    """

    ACTIONS_CHANGED = "actions_changed"
    CALL_ROUTED = "call_routed"
    CALL_ANSWERED = "call_answered"
    CALL_ENDED = "call_ended"
    TIP_RECORDED = "tip"
    BROADCAST_PROGRESS = "broadcast"
    PRESENCE = "presence"
    SIGHTING_ADDED = "sighting_added"
    WORKLIST_CHANGED = "worklist_changed"
    CENTRALIST_DUTY = "centralist_duty"
    # The call card (burgernet/desk.py), always with ``for_endpoint``: a call rings that phone,
    # that phone answered it, its card closes (not answered there, or the call ended).
    CALL_RINGING = "call_ringing"
    DESK_ANSWERED = "desk_answered"
    DESK_CLOSED = "desk_closed"


class LiveEventPort(Protocol):
    """Publishes a live event (``burgernet.live.LiveState`` in production). Best-effort: call it
    after the commit; a lost event only means a page refreshes on its next event or reconnect."""

    def publish(self, event: dict[str, object]) -> None: ...


def live_event(kind: LiveEventKind, action_id: int | None = None, **fields: object) -> dict[str, object]:
    """The event as published: ``{"type": kind, "action_id": ..., **fields}``."""
    return {"type": kind.value, "action_id": action_id, **fields}


# --- click-to-call from the call-back worklist ------------------------------------------------------
@dataclass(frozen=True)
class CallbackDial:
    """One click-to-call: ring ``centralist_endpoint`` first, then ``number`` over the trunk."""

    unique_id: str  # the centralist leg's Asterisk UNIQUEID (the Call row's unique_id)
    centralist_endpoint: str
    number: str  # national, already checked dialable (burgernet.phone.dialable_national)
    action_id: int | None
    item_id: int
    display: str  # what the centralist's phone shows while it rings ("BN12 terugbellen")


class CallbackDialPort(Protocol):
    """Places a click-to-call (``ivr.callback_dial`` through AMI in production). Raises when the
    telephone system did not take the call; returns once it did (the phones ring afterwards)."""

    def dial(self, request: CallbackDial) -> None: ...

"""Asking for broadcasts and reading their progress: what the panel, the API and the CLI call.

Asking is cheap and never blocks on the size of the area: a Broadcast row is written and its
id put on the control stream; a worker does the recipient selection and the fan-out. Closing
an action cancels what is still queued and asks for the result message to everyone reached.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from sqlalchemy.orm import Session, sessionmaker

from broadcasting import progress, store
from broadcasting.queue import DeliveryQueue, QueueKeys
from burgernet.db import session_scope
from burgernet.models import Action
from burgernet.repositories import record_audit

log = logging.getLogger(__name__)


class BroadcastError(ValueError):
    pass


@dataclass(frozen=True)
class BroadcastStatus:
    counts: store.BroadcastCounts
    progress: progress.ProgressSnapshot | None

    def as_dict(self) -> dict[str, object]:
        c = self.counts
        milestones = self.progress.milestones_ms if self.progress else {}
        return {
            "broadcast_id": c.broadcast_id,
            "action_id": c.action_id,
            "kind": c.kind,
            "status": c.status,
            "priority": c.priority,
            "total": c.total,
            "handled": c.handled,
            "by_status": dict(sorted(c.by_status.items())),
            "by_channel": {ch: dict(sorted(v.items())) for ch, v in sorted(c.by_channel.items())},
            "seconds_to": {f"{pct}%": round(ms / 1000, 3) for pct, ms in sorted(milestones.items())},
            "created_at": c.created_at.isoformat(),
            "started_at": c.started_at.isoformat() if c.started_at else None,
            "finished_at": c.finished_at.isoformat() if c.finished_at else None,
        }


class BroadcastService:
    def __init__(self, sessions: sessionmaker[Session], client: redis.Redis, prefix: str) -> None:
        self._sessions = sessions
        self._client = client
        self._prefix = prefix
        self.queue = DeliveryQueue(client, QueueKeys(prefix))

    def _request(self, action_id: int, kind: str, message: str | None, *, actor: str, source: str) -> int:
        with session_scope(self._sessions) as session:
            action = session.get(Action, action_id)
            if action is None:
                raise BroadcastError(f"no action {action_id}")
            if kind in ("alert", "update") and action.status != "active":
                raise BroadcastError(f"action {action_id} is {action.status}: only an active action alerts")
            if kind == "update" and not (message or "").strip():
                raise BroadcastError("an update needs a message")
            if kind == "result" and action.status != "closed":
                raise BroadcastError(f"action {action_id} is not closed: no result message yet")
            text = (message or "").strip()
            if kind == "alert":
                text = action.description or action.title
            elif kind == "result":
                text = action.result_message or action.outcome or ""
            broadcast = store.new_broadcast(session, action=action, kind=kind, message=text)
            record_audit(
                session,
                actor=actor,
                verb=f"broadcast-{kind}",
                entity="action",
                entity_id=action_id,
                detail={"broadcast": broadcast.id},
                source=source,
            )
            broadcast_id = broadcast.id
        try:
            self.queue.request_fan_out(broadcast_id)
        except redis.RedisError:
            # The row is written; a worker starting up picks up every pending broadcast.
            log.exception("broadcast %s: control entry not queued; a worker will pick it up", broadcast_id)
        return broadcast_id

    def alert(self, action_id: int, *, actor: str, source: str = "cli") -> int:
        return self._request(action_id, "alert", None, actor=actor, source=source)

    def update(self, action_id: int, message: str, *, actor: str, source: str = "cli") -> int:
        return self._request(action_id, "update", message, actor=actor, source=source)

    def close(self, action_id: int, *, actor: str, source: str = "cli") -> int | None:
        """The action closed: cancel queued deliveries, then the result message to all reached."""
        with session_scope(self._sessions) as session:
            cancelled = store.cancel_pending(session, action_id)
            if cancelled:
                record_audit(
                    session,
                    actor=actor,
                    verb="broadcast-cancel",
                    entity="action",
                    entity_id=action_id,
                    detail={"cancelled_deliveries": cancelled},
                    source=source,
                )
            alerted = bool(store.broadcasts_of_action(session, action_id))
        if not alerted:
            return None
        return self._request(action_id, "result", None, actor=actor, source=source)

    def status(self, broadcast_id: int) -> BroadcastStatus | None:
        with session_scope(self._sessions) as session:
            counts = store.counts(session, broadcast_id)
        if counts is None:
            return None
        try:
            snapshot = progress.read(self._client, self._prefix, broadcast_id)
        except redis.RedisError:
            snapshot = None
        return BroadcastStatus(counts, snapshot)

    def of_action(self, action_id: int) -> list[BroadcastStatus]:
        with session_scope(self._sessions) as session:
            ids = store.broadcasts_of_action(session, action_id)
        return [status for status in (self.status(i) for i in ids) if status is not None]

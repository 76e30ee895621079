"""Asking for broadcasts and reading their progress.

Asking is cheap and never blocks on the size of the area: a Broadcast row is written and its
id put on the control stream; a worker does the recipient selection and the fan-out. *When*
to ask is a domain rule and lives in :class:`burgernet.actions.ActionService`: starting an
action alerts, an update goes to everyone reached, closing cancels what is still queued and
sends the result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import redis
from sqlalchemy.orm import Session, sessionmaker

from broadcasting import inquiry_mail, progress, store
from broadcasting.queue import DeliveryQueue, QueueKeys
from burgernet.db import session_scope
from burgernet.errors import DomainError, NotFoundError
from burgernet.models import Action, Sighting
from burgernet.ports import BroadcastKind
from burgernet.repositories import record_audit

if TYPE_CHECKING:
    from burgernet.services import Services

log = logging.getLogger(__name__)


# A question back to a sighting's device: one notification, not an essay.
MAX_QUESTION = 500


class NoReplyChannel(DomainError):
    """The sighting has no push subscription to ask back through."""

    code: ClassVar[str] = "push.no_reply_channel"


class InvalidQuestion(DomainError):
    code: ClassVar[str] = "push.question_invalid"


class SightingNotFound(NotFoundError):
    code: ClassVar[str] = "sighting.not_found"


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
            "inquiry_id": c.inquiry_id,
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
    """Implements the core's :class:`~burgernet.ports.BroadcastPort` and reads progress.

    Asking writes a pending Broadcast row in the caller's transaction; after the commit the
    caller nudges the workers through the control stream. A nudge lost to a Redis outage is
    repaired by the workers' periodic sweep of pending broadcasts.
    """

    def __init__(self, sessions: sessionmaker[Session], client: redis.Redis, prefix: str) -> None:
        self._sessions = sessions
        self._client = client
        self._prefix = prefix
        self.queue = DeliveryQueue(client, QueueKeys(prefix))

    @classmethod
    def for_services(cls, services: Services) -> BroadcastService:
        return cls(services.sessions, services.live.client, services.settings.redis.key_prefix)

    # -- the port: inside the caller's transaction -------------------------------------------
    def request(self, session: Session, action: Action, kind: BroadcastKind, message: str) -> int:
        broadcast = store.new_broadcast(session, action=action, kind=kind.value, message=message)
        return broadcast.id

    def cancel_queued(self, session: Session, action_id: int) -> int:
        return store.cancel_pending(session, action_id)

    def has_alerted(self, session: Session, action_id: int) -> bool:
        return bool(store.broadcasts_of_action(session, action_id))

    def nudge(self, broadcast_id: int) -> None:
        self.queue.request_fan_out(broadcast_id)

    # -- a neighbourhood inquiry's e-mails (the panel asks, inside its transaction) ------------
    def request_inquiry(self, session: Session, inquiry_id: int, kind: str, message: str = "") -> int:
        """Write a pending broadcast of the inquiry's invitation or follow-up; returns its id."""
        return inquiry_mail.new_broadcast(session, inquiry_id=inquiry_id, kind=kind, message=message)

    # -- asking back through push (the panel's sighting, "ask back") ---------------------------
    def ask_back(self, *, sighting_id: int, question: str, user: object) -> int:
        """Push ``question`` to the device a sighting came from: a broadcast of kind ``reply``
        with one delivery, through the same queue, rate limit and retries; audited. Returns the
        broadcast's id. :class:`NoReplyChannel` when the sighting came without a subscription
        (or the device unsubscribed since)."""
        question = (question or "").strip()
        if not question:
            raise InvalidQuestion("the question is empty")
        if len(question) > MAX_QUESTION:
            raise InvalidQuestion(f"the question is longer than {MAX_QUESTION} characters")
        actor = user if isinstance(user, str) else str(getattr(user, "username", user))
        with session_scope(self._sessions) as session:
            sighting = session.get(Sighting, sighting_id)
            if sighting is None:
                raise SightingNotFound(f"sighting {sighting_id} does not exist")
            subscription_id = sighting.push_subscription_id
            if subscription_id is None:
                raise NoReplyChannel(
                    f"sighting {sighting_id} has no reply channel (it did not come from the app)"
                )
            action = session.get(Action, sighting.action_id)
            if action is None:
                raise SightingNotFound(f"sighting {sighting_id} has no action")
            broadcast_id = store.new_reply(
                session,
                action=action,
                sighting_id=sighting_id,
                subscription_id=subscription_id,
                question=question,
            )
            record_audit(
                session,
                actor=actor,
                verb="ask_back",
                entity="sighting",
                entity_id=sighting_id,
                detail={"action_id": action.id, "broadcast_id": broadcast_id, "question": question},
                source="panel",
            )
        try:
            self.nudge(broadcast_id)
        except redis.RedisError:
            log.warning("reply %s: the workers' sweep will send it (Redis unreachable)", broadcast_id)
        return broadcast_id

    # -- progress ------------------------------------------------------------------------------
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

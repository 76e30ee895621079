"""Four-eyes approval: an AMBER Alert or a national action starts only when a second person says so.

Alerting a whole country (or a province, for an AMBER Alert) cannot be undone and wakes up
hundreds of thousands of people; a control room wants a second pair of eyes on it, as it has
for any other far-reaching decision. The rules, in one place:

* **Which actions.** Every AMBER Alert and every national action, always; any other type whose
  template says so (``action_type_templates.needs_approval``, Settings → Action types). Urgent
  regional actions need none by default: minutes count there, and a missing child three streets
  away must not wait for a second person.
* **Who approves.** A user with the *approver* flag (``users.approver``, set by an admin) and a
  role that may start actions (admin, operator, centralist), active, and **not** the person who
  asked: nobody approves their own request (``approval.self_approval``), nobody without the flag
  approves anything (``approval.not_approver``).
* **How.** :meth:`ApprovalService.request_start` records a request with what the alert would
  reach *now* (recipients per channel and in people, the estimated time to reach them). An
  approver sees the same figures and approves (:meth:`ApprovalService.approve`: the action starts,
  with the approver as actor and both names in the audit event) or refuses with a reason.
* **How long.** A request holds ``actions.approval_minutes`` (15 by default); after that it is
  marked expired, when it is read and by the workers' housekeeping sweep, and can no longer be
  approved: the figures it showed are stale, so it is asked again.
* **Enforced in the domain.** :meth:`burgernet.actions.ActionService.start` calls
  :func:`authorise_start` in its own transaction: an action that needs approval does not start
  without a pending request approved there and then (``approval.required``), whatever adapter
  asks (panel, API, command line).

Every step is in the audit log of the action: ``approval-request``, ``approval-approve``,
``approval-refuse``, ``approval-expire``, and refused attempts (``approval-denied``).

Recipient counts and the estimate come from the outside (the broadcasting adapter counts; the
estimate is an optional hook): the composition root or the panel plugs them in, the core never
imports an adapter.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from burgernet.action_types import template_for
from burgernet.actions import ActionNotFound, ActionService, ActionView, ApprovalRequired
from burgernet.db import session_scope
from burgernet.domain import ActionStatus, ActionType, AreaKind, Channel, Role
from burgernet.errors import ConflictError, DomainError, NotFoundError
from burgernet.models import Action, ActionApproval, User
from burgernet.repositories import record_audit
from burgernet.settings import Settings

__all__ = [
    "APPROVER_ROLES",
    "ApprovalDecided",
    "ApprovalError",
    "ApprovalExpired",
    "ApprovalNotFound",
    "ApprovalNotNeeded",
    "ApprovalPending",
    "ApprovalRequired",
    "ApprovalService",
    "ApprovalView",
    "ApproverInvalid",
    "NotAnApprover",
    "ReasonRequired",
    "SelfApproval",
    "authorise_start",
    "estimated_seconds",
    "is_approver",
    "needs_approval",
    "set_approver",
]

log = logging.getLogger(__name__)

# Roles that may start actions, and so may approve a start; a viewer never does either.
APPROVER_ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.CENTRALIST})
# The longest reason for a refusal: read by the requester, kept in the audit log.
REASON_MAX_CHARS = 500
SYSTEM_ACTOR = "system"

# What the alert would reach: {"voice": 120, "sms": 300, ..., "people": 350}.
RecipientCounter = Callable[[Session, Action], Mapping[str, int]]
# Seconds until the alert would have reached its recipients; None when it cannot be said.
EtaEstimator = Callable[[Session, Action, Mapping[str, int]], int | None]


class ApprovalError(DomainError):
    """The approval step cannot be carried out; the message says why, nothing was changed."""

    code: ClassVar[str] = "approval.invalid"


class ApprovalNotFound(ApprovalError, NotFoundError):
    code: ClassVar[str] = "approval.not_found"


class ApprovalNotNeeded(ApprovalError):
    """The action starts without approval: start it."""

    code: ClassVar[str] = "approval.not_needed"


class ApprovalPending(ApprovalError, ConflictError):
    """A request for this action is already waiting for an approver."""

    code: ClassVar[str] = "approval.pending"


class ApprovalDecided(ApprovalError, ConflictError):
    """The request was approved, refused or expired already."""

    code: ClassVar[str] = "approval.already_decided"


class ApprovalExpired(ApprovalError, ConflictError):
    """The request is older than ``actions.approval_minutes``: ask again (fresh figures)."""

    code: ClassVar[str] = "approval.expired"


class SelfApproval(ApprovalError):
    """Four eyes: the person who asked cannot decide on their own request."""

    code: ClassVar[str] = "approval.self_approval"


class NotAnApprover(ApprovalError):
    """The user has no approver flag (or is inactive, or a viewer)."""

    code: ClassVar[str] = "approval.not_approver"


class ReasonRequired(ApprovalError):
    code: ClassVar[str] = "approval.reason_required"


class ApproverInvalid(ApprovalError):
    """The approver flag cannot be given to this user (unknown, or a role that cannot start)."""

    code: ClassVar[str] = "approval.approver_invalid"


@dataclass(frozen=True)
class ApprovalView:
    id: int
    action_id: int
    action_title: str
    action_type: str
    area_kind: str
    region_code: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    # Per channel and "people", as counted when the request was made.
    recipients: dict[str, int] = field(default_factory=dict)
    eta_seconds: int | None = None
    status: str = "pending"  # pending | approved | refused | expired
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    seconds_left: int = 0  # while pending

    @property
    def pending(self) -> bool:
        return self.status == "pending"


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive UTC; PostgreSQL aware: compare both as aware."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _in_channel_order(counts: Mapping[str, int]) -> dict[str, int]:
    """Voice, SMS, e-mail, push, then people (as the new-action page lists them)."""
    rank = {key: n for n, key in enumerate([channel.value for channel in Channel] + ["people"])}
    return {key: int(counts[key]) for key in sorted(counts, key=lambda k: (rank.get(k, len(rank)), k))}


def _view(row: ActionApproval, action: Action, now: datetime) -> ApprovalView:
    status = row.decision or "pending"
    left = (_aware(row.expires_at) - now).total_seconds() if status == "pending" else 0
    return ApprovalView(
        id=row.id,
        action_id=row.action_id,
        action_title=action.title,
        action_type=action.action_type,
        area_kind=action.area_kind,
        region_code=action.region.code,
        requested_by=row.requested_by,
        requested_at=_aware(row.requested_at),
        expires_at=_aware(row.expires_at),
        recipients=_in_channel_order(json.loads(row.recipients or "{}")),
        eta_seconds=row.eta_seconds,
        status=status,
        decided_by=row.decided_by,
        decided_at=_aware(row.decided_at) if row.decided_at else None,
        reason=row.reason,
        seconds_left=max(0, int(left)),
    )


def estimated_seconds(settings: Settings) -> EtaEstimator:
    """The hook that fills a request's ETA: :func:`burgernet.eta.estimate_for_action`'s time to
    100 % of the alert handled, for the recipients just counted (rounded up to a second).

    Best-effort: the approval never waits on it. A failed estimate is logged and leaves the ETA
    empty (it ran in a savepoint, so the request's own transaction goes on untouched).
    """

    def estimate(session: Session, action: Action, recipients: Mapping[str, int]) -> int | None:
        # Imported here: the estimator reads the queue, the night rules and past broadcasts; none
        # of that is needed to decide on a request.
        from burgernet.eta import estimate_for_action

        channels = {key: count for key, count in recipients.items() if key != "people"}
        try:
            with session.begin_nested():
                found = estimate_for_action(
                    session, action.id, settings, recipients=channels if recipients else None
                )
        except Exception:
            log.exception("action %s: no ETA for the approval request; it is shown without", action.id)
            return None
        seconds = found.longest_seconds if found is not None else None
        return math.ceil(seconds) if seconds is not None else None

    return estimate


def needs_approval(session: Session, action: Action) -> bool:
    """AMBER Alerts and national actions always; other types when their template says so."""
    if action.action_type == ActionType.AMBER_ALERT.value or action.area_kind == AreaKind.NATIONAL.value:
        return True
    return template_for(session, ActionType(action.action_type)).needs_approval


def is_approver(session: Session, username: str) -> bool:
    """An active user with the approver flag and a role that may start actions."""
    row = session.execute(
        select(User.role, User.active, User.approver).where(User.username == username)
    ).first()
    return row is not None and bool(row.active) and bool(row.approver) and row.role in APPROVER_ROLES


def _decidable(session: Session, row: ActionApproval, decider: str, now: datetime) -> ApprovalError | None:
    """Why ``decider`` may not decide on ``row`` now, or None."""
    if row.decision is not None:
        return ApprovalDecided(f"approval request {row.id} was {row.decision} already")
    if _aware(row.expires_at) <= now:
        return ApprovalExpired(
            f"approval request {row.id} expired at {_aware(row.expires_at):%H:%M} UTC; request approval again"
        )
    if decider == row.requested_by:
        return SelfApproval("you asked for this start yourself: another approver must decide on it")
    if not is_approver(session, decider):
        return NotAnApprover(f"{decider} is not an approver: an admin sets the approver flag")
    return None


def _expire(session: Session, row: ActionApproval, now: datetime) -> None:
    row.decision, row.decided_at, row.decided_by = "expired", now, SYSTEM_ACTOR
    record_audit(
        session,
        actor=SYSTEM_ACTOR,
        verb="approval-expire",
        entity="action",
        entity_id=row.action_id,
        detail={"approval": row.id, "requested_by": row.requested_by},
        source="approvals",
    )


def authorise_start(
    session: Session, action: Action, approval_id: int | None, *, actor: str, source: str
) -> dict[str, object] | None:
    """The four-eyes check of :meth:`ActionService.start`, inside its transaction.

    None when the action needs no approval. Otherwise the request ``approval_id`` must be a
    pending, unexpired request for this action by someone other than ``actor``, an approver; it
    is marked approved here (so the approval and the start commit together, or neither), and
    the returned detail names both people for the start's audit event.
    """
    if not needs_approval(session, action):
        return None
    if approval_id is None:
        raise ApprovalRequired(
            f"action {action.id} needs a second person's approval to start: request approval"
        )
    row = session.get(ActionApproval, approval_id, with_for_update=True)
    if row is None or row.action_id != action.id:
        raise ApprovalNotFound(f"no approval request {approval_id} for action {action.id}")
    now = datetime.now(UTC)
    refused = _decidable(session, row, actor, now)
    if refused is not None:
        raise refused
    row.decision, row.decided_by, row.decided_at = "approved", actor, now
    detail: dict[str, object] = {
        "approval": row.id,
        "requested_by": row.requested_by,
        "approved_by": actor,
    }
    record_audit(
        session,
        actor=actor,
        verb="approval-approve",
        entity="action",
        entity_id=action.id,
        detail=detail,
        source=source,
    )
    return detail


def set_approver(
    sessions: sessionmaker[Session], username: str, approver: bool, *, actor: str, source: str
) -> bool:
    """Give or take the approver flag (audited); False when it was so already."""
    with session_scope(sessions) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise ApproverInvalid(f"no user {username!r}")
        if approver and user.role not in APPROVER_ROLES:
            raise ApproverInvalid(
                f"{username} is a {user.role}: only an admin, operator or centralist can approve starts"
            )
        if bool(user.approver) == approver:
            return False
        user.approver = approver
        record_audit(
            session,
            actor=actor,
            verb="approver-on" if approver else "approver-off",
            entity="user",
            entity_id=user.id,
            detail={"username": username},
            source=source,
        )
    return True


class ApprovalService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        actions: ActionService,
        *,
        approval_minutes: int,
        count_recipients: RecipientCounter | None = None,
        estimate_eta: EtaEstimator | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._actions = actions
        self._minutes = approval_minutes
        self._count = count_recipients
        self._eta = estimate_eta
        self._clock = clock

    # -- asking --------------------------------------------------------------------------------
    def request_start(self, action_id: int, *, actor: str, source: str = "cli") -> ApprovalView:
        """Ask a second person to start a draft that needs approval (audited)."""
        now = self._clock()
        with session_scope(self._sessions) as session:
            action = self._action(session, action_id, lock=True)
            if action.status != ActionStatus.DRAFT.value:
                raise ApprovalDecided(f"action {action_id} is {action.status}: only a draft is started")
            if not needs_approval(session, action):
                raise ApprovalNotNeeded(f"action {action_id} needs no approval: start it")
            for waiting in self._pending_rows(session, action_id):
                if _aware(waiting.expires_at) > now:
                    raise ApprovalPending(
                        f"approval request {waiting.id} for action {action_id} is waiting for an approver"
                    )
                _expire(session, waiting, now)
            recipients = dict(self._count(session, action)) if self._count is not None else {}
            eta = self._estimate(session, action, recipients)
            row = ActionApproval(
                action_id=action_id,
                requested_by=actor,
                requested_at=now,
                expires_at=now + timedelta(minutes=self._minutes),
                recipients=json.dumps(recipients, sort_keys=True),
                eta_seconds=eta,
            )
            session.add(row)
            session.flush()
            record_audit(
                session,
                actor=actor,
                verb="approval-request",
                entity="action",
                entity_id=action_id,
                detail={
                    "approval": row.id,
                    "recipients": recipients,
                    "eta_seconds": eta,
                    "expires_at": row.expires_at.isoformat(),
                },
                source=source,
            )
            return _view(row, action, now)

    # -- deciding ------------------------------------------------------------------------------
    def approve(self, request_id: int, *, approver: str, source: str = "cli") -> ActionView:
        """Approve and start the action, the approver as its actor (SelfApproval, NotAnApprover,
        ApprovalExpired, ApprovalDecided; refused attempts are audited)."""
        action_id = self._check_decider(request_id, approver, source, verb="approve")
        # Checked again under the action's lock, and marked approved in the start's transaction.
        return self._actions.start(action_id, actor=approver, source=source, approval_id=request_id)

    def refuse(self, request_id: int, *, approver: str, reason: str, source: str = "cli") -> ApprovalView:
        """Refuse with a reason (the action stays a draft; a new request may follow)."""
        text = reason.strip()
        if not text:
            raise ReasonRequired("say why the start is refused: the requester reads it")
        if len(text) > REASON_MAX_CHARS:
            raise ReasonRequired(f"the reason is at most {REASON_MAX_CHARS} characters")
        self._check_decider(request_id, approver, source, verb="refuse")
        now = self._clock()
        with session_scope(self._sessions) as session:
            row = self._row(session, request_id, lock=True)
            refused = _decidable(session, row, approver, now)  # a decision may have come in between
            if refused is not None:
                raise refused
            row.decision, row.decided_by, row.decided_at, row.reason = "refused", approver, now, text
            record_audit(
                session,
                actor=approver,
                verb="approval-refuse",
                entity="action",
                entity_id=row.action_id,
                detail={"approval": row.id, "requested_by": row.requested_by, "reason": text},
                source=source,
            )
            return _view(row, self._action(session, row.action_id), now)

    # -- reading -------------------------------------------------------------------------------
    def pending(self) -> list[ApprovalView]:
        """Requests waiting for an approver, oldest first (stale ones are marked expired first)."""
        self.expire_stale()
        now = self._clock()
        with session_scope(self._sessions) as session:
            rows = session.scalars(
                select(ActionApproval).where(ActionApproval.decision.is_(None)).order_by(ActionApproval.id)
            ).all()
            return [_view(row, self._action(session, row.action_id), now) for row in rows]

    def get(self, request_id: int) -> ApprovalView:
        self.expire_stale()
        with session_scope(self._sessions) as session:
            row = self._row(session, request_id)
            return _view(row, self._action(session, row.action_id), self._clock())

    def latest_for_action(self, action_id: int) -> ApprovalView | None:
        """The action's most recent request, whatever became of it; None when never asked."""
        self.expire_stale()
        with session_scope(self._sessions) as session:
            row = session.scalar(
                select(ActionApproval)
                .where(ActionApproval.action_id == action_id)
                .order_by(ActionApproval.id.desc())
                .limit(1)
            )
            return _view(row, self._action(session, action_id), self._clock()) if row else None

    def action_needs_approval(self, action_id: int) -> bool:
        with session_scope(self._sessions) as session:
            return needs_approval(session, self._action(session, action_id))

    def user_is_approver(self, username: str) -> bool:
        with session_scope(self._sessions) as session:
            return is_approver(session, username)

    def expire_stale(self) -> int:
        """Mark every pending request past its time expired (audited); how many."""
        now = self._clock()
        with session_scope(self._sessions) as session:
            # Only the ids first: most calls find none and take no lock.
            stale = session.scalars(
                select(ActionApproval.id).where(
                    ActionApproval.decision.is_(None), ActionApproval.expires_at <= now
                )
            ).all()
            expired = 0
            for request_id in stale:
                row = session.get(ActionApproval, request_id, with_for_update=True)
                if row is not None and row.decision is None:
                    _expire(session, row, now)
                    expired += 1
            return expired

    # -- internals -----------------------------------------------------------------------------
    def _check_decider(self, request_id: int, decider: str, source: str, *, verb: str) -> int:
        """The request's action id, or the reason ``decider`` may not decide (audited, and an
        expired request marked so, before the error is raised)."""
        now = self._clock()
        refused: ApprovalError | None = None
        with session_scope(self._sessions) as session:
            row = self._row(session, request_id, lock=True)
            refused = _decidable(session, row, decider, now)
            if isinstance(refused, ApprovalExpired):
                _expire(session, row, now)
            elif isinstance(refused, SelfApproval | NotAnApprover):
                record_audit(
                    session,
                    actor=decider,
                    verb="approval-denied",
                    entity="action",
                    entity_id=row.action_id,
                    detail={"approval": row.id, "tried": verb, "why": refused.code},
                    source=source,
                )
            action_id = row.action_id
        if refused is not None:
            raise refused
        return action_id

    def _estimate(self, session: Session, action: Action, recipients: Mapping[str, int]) -> int | None:
        if self._eta is None:
            return None
        seconds = self._eta(session, action, recipients)
        return None if seconds is None else max(0, int(seconds))

    @staticmethod
    def _pending_rows(session: Session, action_id: int) -> list[ActionApproval]:
        return list(
            session.scalars(
                select(ActionApproval)
                .where(ActionApproval.action_id == action_id, ActionApproval.decision.is_(None))
                .with_for_update()
            )
        )

    @staticmethod
    def _row(session: Session, request_id: int, *, lock: bool = False) -> ActionApproval:
        row = session.get(ActionApproval, request_id, with_for_update=lock)
        if row is None:
            raise ApprovalNotFound(f"no approval request {request_id}")
        return row

    @staticmethod
    def _action(session: Session, action_id: int, *, lock: bool = False) -> Action:
        query = select(Action).where(Action.id == action_id).options(selectinload(Action.region))
        action = session.scalar(query.with_for_update() if lock else query)
        if action is None:
            raise ActionNotFound(f"no action {action_id}")
        return action

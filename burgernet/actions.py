"""Action life cycle as a service: create, start, update, close, list — validated, audited.

The rules of the life cycle live here, in one place:

* **starting** an action asks for its alert to everyone in the area;
* an **update** goes to everyone the alert reached (only while the action is active);
* **closing** cancels every delivery still queued and, if anyone was alerted or phoned about it
  and left a number (:mod:`burgernet.closing_word`), asks for the result message to them.

Each broadcast is written through :class:`~burgernet.ports.BroadcastPort` in the *same
transaction* as the status change and its audit event: a crash or a Redis outage after the
commit can delay an alert, never lose it. After the commit two best-effort effects follow,
each logged when it fails: ``on_change`` (the routing snapshot of active actions is
invalidated, so the next call to the free number sees the change) and the port's ``nudge``
(workers start at once instead of at their next sweep of pending broadcasts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from burgernet.action_codes import assign_code
from burgernet.areas import AreaLimits, AreaSpec, InvalidArea, area_columns
from burgernet.closing_word import caller_numbers
from burgernet.db import session_scope
from burgernet.domain import (
    ActionStatus,
    ActionType,
    AreaKind,
    Channel,
    InvalidTransition,
    OutcomeKind,
    check_transition,
)
from burgernet.errors import ConflictError, DomainError, NotFoundError
from burgernet.models import URGENCIES, Action, ActionCentralist, Centralist, Region
from burgernet.ports import BroadcastKind, BroadcastPort
from burgernet.repositories import record_audit

log = logging.getLogger(__name__)

# The longest update accepted: a description's length, still fit to read out.
UPDATE_MAX_CHARS = 2000


class ActionError(DomainError):
    """The request cannot be carried out; the message says why, nothing was changed."""

    code: ClassVar[str] = "action.invalid"


class ActionNotFound(ActionError, NotFoundError):
    code: ClassVar[str] = "action.not_found"


class ActionStateError(ActionError, ConflictError):
    """The action's status forbids the change (editing a closed action, updating a draft)."""

    code: ClassVar[str] = "action.invalid_state"


class InvalidActionTransition(ActionStateError):
    """The life cycle has no such step (starting an active action, closing a closed one)."""

    code: ClassVar[str] = "action.invalid_transition"


class ApprovalRequired(ActionStateError):
    """The action needs a second person's approval to start (four-eyes: an AMBER Alert, a
    national area, or a type configured so); request it (burgernet.approvals)."""

    code: ClassVar[str] = "approval.required"


@dataclass(frozen=True)
class ActionView:
    id: int
    action_type: str
    title: str
    status: str
    region_code: str
    area_kind: str
    team: tuple[str, ...]
    created_at: datetime
    started_at: datetime | None
    closed_at: datetime | None
    outcome: str | None  # the internal note written on closing
    result_message: str | None
    channels: tuple[str, ...] = ()
    urgency: str = ""
    outcome_kind: str | None = None  # one of OUTCOME_KINDS once closed
    # Keyed on the free number to reach this action (burgernet.action_codes); None for a draft.
    action_code: str | None = None


def _view(action: Action) -> ActionView:
    return ActionView(
        id=action.id,
        action_type=action.action_type,
        title=action.title,
        status=action.status,
        region_code=action.region.code,
        area_kind=action.area_kind,
        team=tuple(member.centralist.sip_endpoint for member in action.team),
        created_at=action.created_at,
        started_at=action.started_at,
        closed_at=action.closed_at,
        outcome=action.outcome,
        result_message=action.result_message,
        channels=tuple(c for c in action.channels.split(",") if c),
        urgency=action.urgency,
        outcome_kind=action.outcome_kind,
        action_code=action.action_code,
    )


# An action's circle reaches a province at most; wider is a national AMBER Alert.
ACTION_AREA = AreaLimits(
    max_radius_m=300_000.0,
    too_wide="a circle's radius is at most 300 km; use a national AMBER Alert instead",
)


class ActionService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        broadcasts: BroadcastPort,
        on_change: Callable[[int], object] = lambda _action_id: None,
        on_moved: Callable[[int], object] = lambda _action_id: None,
    ) -> None:
        self._sessions = sessions
        self._broadcasts = broadcasts
        self._on_change = on_change
        # After an action started or closed (the lasting figures are refreshed, best-effort).
        self._on_moved = on_moved

    def create(
        self,
        *,
        action_type: str,
        title: str,
        region_code: str,
        area: AreaSpec,
        team: Sequence[str] = (),
        description: str = "",
        channels: Sequence[str] | None = None,
        urgency: str | None = None,
        actor: str,
        source: str = "cli",
    ) -> ActionView:
        """A draft action. ``channels`` and ``urgency`` default to the type's template."""
        try:
            kind = ActionType(action_type)
        except ValueError:
            allowed = ", ".join(t.value for t in ActionType)
            raise ActionError(f"unknown action type {action_type!r} (one of {allowed})") from None
        title = title.strip()
        if not title or len(title) > 120:
            raise ActionError("a title of 1 to 120 characters is required (it is spoken in menus)")
        if area.kind is AreaKind.NATIONAL and kind is not ActionType.AMBER_ALERT:
            raise ActionError("only an AMBER Alert can be national")
        try:
            columns = area_columns(area, ACTION_AREA)
        except InvalidArea as exc:
            raise ActionError(str(exc)) from None
        with session_scope(self._sessions) as session:
            region = session.scalar(select(Region).where(Region.code == region_code))
            if region is None:
                raise ActionError(f"unknown region {region_code!r}")
            members = self._team(session, team)
            chosen_channels, chosen_urgency = self._channels_and_urgency(session, kind, channels, urgency)
            action = Action(
                action_type=kind.value,
                title=title,
                description=description,
                region_id=region.id,
                status=ActionStatus.DRAFT.value,
                created_at=datetime.now(UTC),
                created_by=actor,
                channels=",".join(chosen_channels),
                urgency=chosen_urgency,
                **columns,
            )
            action.team = [ActionCentralist(centralist_id=c.id, position=n) for n, c in enumerate(members)]
            session.add(action)
            session.flush()
            record_audit(
                session,
                actor=actor,
                verb="create",
                entity="action",
                entity_id=action.id,
                detail={
                    "type": kind.value,
                    "title": title,
                    "region": region_code,
                    "area": area.kind.value,
                    "team": list(team),
                    "channels": list(chosen_channels),
                    "urgency": chosen_urgency,
                },
                source=source,
            )
            view = self._load_view(session, action.id)
        return view

    def start(
        self,
        action_id: int,
        *,
        actor: str,
        source: str = "cli",
        broadcast: bool = True,
        approval_id: int | None = None,
    ) -> ActionView:
        """Activate the action: the free number routes to it; with ``broadcast`` the alert goes out.

        An action that needs four-eyes approval starts only with ``approval_id``: a pending
        request by someone else, which ``actor`` (an approver) approves in the same transaction
        (:func:`burgernet.approvals.authorise_start`); without one, ApprovalRequired.
        """
        return self._move(
            action_id,
            ActionStatus.ACTIVE,
            actor=actor,
            source=source,
            broadcast=broadcast,
            approval_id=approval_id,
        )

    def close(
        self,
        action_id: int,
        *,
        outcome: str = "",
        result_message: str,
        outcome_kind: str = OutcomeKind.OTHER.value,
        actor: str,
        source: str = "cli",
    ) -> ActionView:
        """Close with an outcome kind (one of OUTCOME_KINDS), an internal note (``outcome``) and
        the public result message.

        The panel, the API and ``burgernet action close`` always ask the operator for the kind;
        a caller of this service that knows only a note gets "other", the rule migration 0012
        applied to every free-text outcome before kinds existed. "other" needs the note: it is
        the only record of what happened.
        """
        try:
            kind = OutcomeKind(outcome_kind)
        except ValueError:
            allowed = ", ".join(k.value for k in OutcomeKind)
            raise ActionError(f"unknown outcome kind {outcome_kind!r} (one of {allowed})") from None
        note = outcome.strip()
        if kind is OutcomeKind.OTHER and not note:
            raise ActionError("closing an action as 'other' needs a note saying what happened")
        if len(note) > 200:
            raise ActionError("the internal note is at most 200 characters")
        return self._move(
            action_id,
            ActionStatus.CLOSED,
            actor=actor,
            source=source,
            outcome=note or None,
            outcome_kind=kind.value,
            result_message=result_message.strip(),
        )

    def edit(
        self,
        action_id: int,
        *,
        title: str | None = None,
        description: str | None = None,
        actor: str,
        source: str = "cli",
    ) -> ActionView:
        """Correct the title or description of a draft or active action (audited, old → new).

        What participants were already told does not change: send an update for that.
        """
        with session_scope(self._sessions) as session:
            action = session.get(Action, action_id, with_for_update=True)
            if action is None:
                raise ActionNotFound(f"no action {action_id}")
            if action.status == ActionStatus.CLOSED.value:
                raise ActionStateError(f"action {action_id} is closed and can no longer be changed")
            changes: dict[str, object] = {}
            if title is not None:
                title = title.strip()
                if not title or len(title) > 120:
                    raise ActionError("a title of 1 to 120 characters is required (it is spoken in menus)")
                if title != action.title:
                    changes["title"] = [action.title, title]
                    action.title = title
            if description is not None and description.strip() != action.description:
                changes["description"] = [action.description, description.strip()]
                action.description = description.strip()
            if changes:
                record_audit(
                    session,
                    actor=actor,
                    verb="edit",
                    entity="action",
                    entity_id=action_id,
                    detail=changes,
                    source=source,
                )
            view = self._load_view(session, action_id)
        if changes:
            self._after_commit(action_id, [])  # the title is spoken in the free number's menu
        return view

    def send_update(self, action_id: int, message: str, *, actor: str, source: str = "cli") -> int:
        """New information about an active action, to everyone its alert reached."""
        text = message.strip()
        if not text:
            raise ActionError("an update needs a message")
        if len(text) > UPDATE_MAX_CHARS:
            raise ActionError(f"an update is at most {UPDATE_MAX_CHARS} characters")
        with session_scope(self._sessions) as session:
            action = session.get(Action, action_id, with_for_update=True)
            if action is None:
                raise ActionNotFound(f"no action {action_id}")
            if action.status != ActionStatus.ACTIVE.value:
                raise ActionStateError(f"action {action_id} is {action.status}: only an active action alerts")
            broadcast_id = self._request(session, action, BroadcastKind.UPDATE, text, actor, source)
        self._after_commit(action_id, [broadcast_id])
        return broadcast_id

    def list_actions(
        self, status: str | None = None, *, limit: int | None = None, before_id: int | None = None
    ) -> list[ActionView]:
        """Newest first. ``limit`` and ``before_id`` page through a long history (a year of
        closed actions is thousands): the next page starts before the last id seen."""
        with session_scope(self._sessions) as session:
            query = select(Action).options(*self._eager()).order_by(Action.id.desc())
            if status:
                query = query.where(Action.status == ActionStatus(status).value)
            if before_id is not None:
                query = query.where(Action.id < before_id)
            if limit is not None:
                query = query.limit(limit)
            return [_view(action) for action in session.scalars(query)]

    def get(self, action_id: int) -> ActionView:
        with session_scope(self._sessions) as session:
            return self._load_view(session, action_id)

    # -- internals -----------------------------------------------------------------------------
    def _move(
        self,
        action_id: int,
        target: ActionStatus,
        *,
        actor: str,
        source: str,
        outcome: str | None = None,
        outcome_kind: str | None = None,
        result_message: str | None = None,
        broadcast: bool = True,
        approval_id: int | None = None,
    ) -> ActionView:
        with session_scope(self._sessions) as session:
            action = session.get(Action, action_id, with_for_update=True)
            if action is None:
                raise ActionNotFound(f"no action {action_id}")
            current = ActionStatus(action.status)
            try:
                check_transition(current, target)
            except InvalidTransition as exc:
                raise InvalidActionTransition(f"action {action_id}: {exc}") from None
            approval: dict[str, object] | None = None
            if target is ActionStatus.ACTIVE:
                # Imported here: burgernet.approvals builds on this module (it starts actions).
                from burgernet.approvals import authorise_start

                # The four-eyes rule, in the same transaction as the start (ApprovalRequired).
                approval = authorise_start(session, action, approval_id, actor=actor, source=source)
            now = datetime.now(UTC)
            action.status = target.value
            if target is ActionStatus.ACTIVE:
                action.started_at = now
            else:
                action.closed_at = now
                action.outcome = outcome
                action.outcome_kind = outcome_kind
                action.result_message = result_message
            detail: dict[str, object] = {"from": current.value, "outcome": outcome}
            if outcome_kind is not None:
                detail["outcome_kind"] = outcome_kind
            if target is ActionStatus.ACTIVE:
                # Before the alert is requested: the alert's texts print the code.
                detail["action_code"] = assign_code(session, action)
            if approval is not None:
                detail["approval"] = approval  # the request, who asked and who approved
            record_audit(
                session,
                actor=actor,
                verb=target.value,
                entity="action",
                entity_id=action_id,
                detail=detail,
                source=source,
            )
            session.flush()
            requested: list[int] = []
            if target is ActionStatus.ACTIVE and broadcast:
                text = action.description or action.title
                requested.append(self._request(session, action, BroadcastKind.ALERT, text, actor, source))
            elif target is ActionStatus.CLOSED:
                requested.extend(self._cancel_and_tell_result(session, action, actor, source))
            view = self._load_view(session, action_id)
        self._after_commit(action_id, requested)
        try:
            self._on_moved(action_id)
        except Exception:
            log.exception("action %s: figures not refreshed now; the periodic refresh does it", action_id)
        return view

    def _cancel_and_tell_result(self, session: Session, action: Action, actor: str, source: str) -> list[int]:
        cancelled = self._broadcasts.cancel_queued(session, action.id)
        if cancelled:
            record_audit(
                session,
                actor=actor,
                verb="broadcast-cancel",
                entity="action",
                entity_id=action.id,
                detail={"cancelled_deliveries": cancelled},
                source=source,
            )
        # The closing word also goes to who phoned about it and left a number (burgernet.closing_word),
        # even when nobody was alerted; the workers' fan-out chooses each caller's one channel.
        callers = len(caller_numbers(session, action.id))
        if not self._broadcasts.has_alerted(session, action.id) and not callers:
            return []
        # Only the public result message: the note (``outcome``) is internal since outcome kinds.
        text = action.result_message or ""
        broadcast_id = self._request(session, action, BroadcastKind.RESULT, text, actor, source)
        if callers:
            record_audit(  # counts only: the numbers are in the delivery log, not the audit
                session,
                actor=actor,
                verb="closing-word",
                entity="action",
                entity_id=action.id,
                detail={"broadcast": broadcast_id, "callers": callers},
                source=source,
            )
        return [broadcast_id]

    def _request(
        self, session: Session, action: Action, kind: BroadcastKind, text: str, actor: str, source: str
    ) -> int:
        broadcast_id = self._broadcasts.request(session, action, kind, text)
        record_audit(
            session,
            actor=actor,
            verb=f"broadcast-{kind.value}",
            entity="action",
            entity_id=action.id,
            detail={"broadcast": broadcast_id},
            source=source,
        )
        return broadcast_id

    def _after_commit(self, action_id: int, broadcast_ids: Sequence[int]) -> None:
        """Best-effort effects of a committed change; the workers' sweep repairs a lost nudge and
        the snapshot's time-to-live bounds a missed invalidation."""
        try:
            self._on_change(action_id)
        except Exception:
            log.exception("action %s: routing snapshot not invalidated (it expires by itself)", action_id)
        for broadcast_id in broadcast_ids:
            try:
                self._broadcasts.nudge(broadcast_id)
            except Exception:
                log.exception(
                    "action %s: broadcast %s written but the workers were not nudged; "
                    "their sweep of pending broadcasts sends it",
                    action_id,
                    broadcast_id,
                )

    @staticmethod
    def _channels_and_urgency(
        session: Session, kind: ActionType, channels: Sequence[str] | None, urgency: str | None
    ) -> tuple[tuple[str, ...], str]:
        """The channels (in Channel order) and urgency asked for, the template's where not given."""
        # Imported here: burgernet.action_types builds on this module (its area limits).
        from burgernet.action_types import template_for

        template = template_for(session, kind) if channels is None or urgency is None else None
        wanted = list(channels) if channels is not None else list(template.channels if template else ())
        unknown = sorted(set(wanted) - {c.value for c in Channel})
        if unknown:
            raise ActionError(f"unknown channel(s) {', '.join(unknown)} (one of voice, sms, email)")
        ordered = tuple(c.value for c in Channel if c.value in wanted)
        if not ordered:
            raise ActionError("choose at least one channel for the alert")
        level = urgency if urgency is not None else (template.urgency if template else "")
        if level not in URGENCIES:
            raise ActionError(f"unknown urgency {level!r} (one of {', '.join(URGENCIES)})")
        return ordered, level

    @staticmethod
    def _team(session: Session, endpoints: Sequence[str]) -> list[Centralist]:
        if len(set(endpoints)) != len(endpoints):
            raise ActionError("a centralist appears twice in the team")
        found = {
            c.sip_endpoint: c
            for c in session.scalars(select(Centralist).where(Centralist.sip_endpoint.in_(list(endpoints))))
        }
        missing = [endpoint for endpoint in endpoints if endpoint not in found]
        if missing:
            raise ActionError(f"unknown centralist endpoint(s): {', '.join(missing)}")
        inactive = [endpoint for endpoint in endpoints if not found[endpoint].active]
        if inactive:
            raise ActionError(f"deactivated centralist(s): {', '.join(inactive)}")
        return [found[endpoint] for endpoint in endpoints]

    @staticmethod
    def _eager() -> tuple[Any, ...]:
        return (
            selectinload(Action.region),
            selectinload(Action.team).selectinload(ActionCentralist.centralist),
        )

    def _load_view(self, session: Session, action_id: int) -> ActionView:
        action = session.scalar(select(Action).where(Action.id == action_id).options(*self._eager()))
        if action is None:
            raise ActionNotFound(f"no action {action_id}")
        return _view(action)

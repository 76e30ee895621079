"""The call-back worklist: who still has to be called back, who is doing it, and how it went.

What it holds (one :class:`burgernet.models.CallbackItem` per source, made by :meth:`sync`):

- every tip with a call-back number whose call-back was not done yet (``Tip.callback_done_at``),
  including tips from the failure path that belong to no action;
- inbound calls that have a number, were never answered and left no tip: ``abandoned`` (the
  caller hung up while it rang) and ``failed``/``unobserved``/``overflowed`` without an answer
  (the line or our side failed, nothing was seen of the call), younger than
  ``web.callback_call_horizon_hours``.

Order: the action's urgency (AMBER, then urgent, then information; an item without an action is
ranked with urgent: the failure path does not know what it was about), then age, oldest first.

A claim is one conditional UPDATE (``WHERE claimed_by IS NULL OR claim expired OR mine``) whose
row count says who won: atomic on SQLite and PostgreSQL alike, without locks held between
requests. A claim left alone expires after ``web.callback_claim_minutes``; every click-to-call
renews it. Click-to-call goes through :class:`burgernet.ports.CallbackDialPort` (AMI Originate:
the centralist's own phone rings first, then the citizen, shown the alert calls' caller ID) and
is logged as a :class:`Call` of kind ``callback`` against the item's action. Noting the result
ends the item (and writes ``Tip.callback_done_at``). Every step is audited.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, sessionmaker

from burgernet import channel_vars as cv
from burgernet.calls import OUTCOME_UNOBSERVED
from burgernet.db import session_scope
from burgernet.domain import ActionStatus
from burgernet.errors import ConflictError, DomainError, NotFoundError
from burgernet.models import (
    CALLBACK_RESULTS,
    Action,
    ActionCentralist,
    Call,
    CallbackItem,
    Centralist,
    Region,
    Tip,
)
from burgernet.phone import NotDialable, dialable_national
from burgernet.ports import CallbackDial, CallbackDialPort, LiveEventKind, LiveEventPort, live_event
from burgernet.repositories import record_audit

log = logging.getLogger(__name__)

CALL_KIND_CALLBACK = cv.CALL_KIND_CALLBACK
# Calls that found nobody, besides "abandoned" (the caller hung up while it rang): the line or our
# side failed, or nothing was observed of the call. Always with answered_at NULL: "overflowed"
# is normally an answer by the region's pool, which did reach someone.
UNANSWERED_OUTCOMES = (cv.OUTCOME_OVERFLOWED, cv.OUTCOME_FAILED, OUTCOME_UNOBSERVED)
URGENCY_RANK = {"amber": 0, "urgent": 1, "information": 2}
NO_ACTION_RANK = 1  # the failure path does not know the action: ranked with urgent
# An item whose action closed longer ago than this is marked "closed long ago".
CLOSED_LONG_AGO = timedelta(hours=24)
MAX_NOTE = 1000


class CallbackNotFound(NotFoundError):
    code: ClassVar[str] = "callback.not_found"


class CallbackClaimed(ConflictError):
    """Someone else holds the item (or it is done)."""

    code: ClassVar[str] = "callback.claimed"


class CallbackNotClaimed(ConflictError):
    """The step needs the item claimed by the one asking (their claim may have expired)."""

    code: ClassVar[str] = "callback.not_claimed"


class CallbackInvalid(DomainError):
    code: ClassVar[str] = "callback.invalid"


class CallbackDialFailed(ConflictError):
    """Asterisk did not take the call (AMI down, refused)."""

    code: ClassVar[str] = "callback.dial_failed"


class DialNotConfigured:
    """The dial port of a process that has no way to Asterisk (the core alone, some tests)."""

    def dial(self, request: CallbackDial) -> None:
        raise CallbackDialFailed("click-to-call is not available in this process (no Asterisk connection)")


@dataclass(frozen=True)
class WorklistScope:
    """What the reader may see: everything (national roles), or one centralist's share: items of
    actions in their region or on whose team they are, and items without an action whose call
    came in for their region (a failure-path tip rang their region's pool)."""

    national: bool
    centralist_id: int | None = None

    @classmethod
    def everything(cls) -> WorklistScope:
        return cls(True)


@dataclass(frozen=True)
class WorklistItem:
    id: int
    reason: str  # tip | abandoned | unanswered
    number: str | None
    arrived_at: datetime
    action_id: int | None
    action_title: str | None
    action_status: str | None
    action_closed_at: datetime | None
    closed_long_ago: bool
    urgency: str | None
    region_code: str | None
    tip_id: int | None
    call_id: int | None
    claimed_by: str | None
    claim_expires_at: datetime | None
    callback_call_id: int | None
    result: str | None
    note: str | None
    done_by: str | None
    done_at: datetime | None

    def claimed_by_other_than(self, username: str, now: datetime) -> bool:
        return self.claim_active(now) and self.claimed_by != username

    def claim_active(self, now: datetime) -> bool:
        return (
            self.claimed_by is not None and self.claim_expires_at is not None and self.claim_expires_at > now
        )


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _updated(session: Session, statement: Any) -> int:
    """Rows a conditional UPDATE changed: who won a claim."""
    result: CursorResult[Any] = session.execute(statement)  # type: ignore[assignment]
    return int(result.rowcount)


def _now() -> datetime:
    return datetime.now(UTC)


class CallbackService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        live: LiveEventPort,
        dialer: CallbackDialPort,
        *,
        claim_minutes: int,
        call_horizon_hours: int,
    ) -> None:
        self._sessions = sessions
        self._live = live
        self._dialer = dialer
        self.claim_duration = timedelta(minutes=claim_minutes)
        self.call_horizon = timedelta(hours=call_horizon_hours)

    # -- filling the list --------------------------------------------------------------------------------
    def sync(self, now: datetime | None = None) -> int:
        """Create the items for tips and calls that have none yet; returns how many were new.

        Idempotent and safe to run from any number of requests at once (the unique tip/call
        columns with ON CONFLICT DO NOTHING)."""
        now = now or _now()
        with session_scope(self._sessions) as session:
            before = session.scalar(select(func.count()).select_from(CallbackItem)) or 0
            tips = (
                select(
                    func.coalesce(Tip.action_id, Call.action_id),
                    Tip.id,
                    Tip.created_at,
                )
                .outerjoin(Call, Call.id == Tip.call_id)
                .where(
                    Tip.callback_number.is_not(None),
                    Tip.callback_done_at.is_(None),
                    ~exists().where(CallbackItem.tip_id == Tip.id),
                )
            )
            self._insert(session, ["action_id", "tip_id", "arrived_at"], tips, "tip")
            for reason, outcomes in (
                ("abandoned", (cv.OUTCOME_ABANDONED,)),
                ("unanswered", UNANSWERED_OUTCOMES),
            ):
                calls = select(Call.action_id, Call.id, Call.started_at).where(
                    Call.kind.in_((cv.CALL_KIND_INBOUND, cv.CALL_KIND_TRANSFER)),
                    Call.outcome.in_(outcomes),
                    Call.answered_at.is_(None),
                    Call.caller_number.is_not(None),
                    Call.started_at >= now - self.call_horizon,
                    ~exists().where(Tip.call_id == Call.id),
                    ~exists().where(CallbackItem.call_id == Call.id),
                )
                self._insert(session, ["action_id", "call_id", "arrived_at"], calls, reason)
            after = session.scalar(select(func.count()).select_from(CallbackItem)) or 0
        return int(after - before)

    @staticmethod
    def _insert(session: Session, columns: list[str], rows: Any, reason: str) -> None:
        source = rows.add_columns(literal(reason))
        dialect = session.get_bind().dialect.name
        module = postgresql if dialect == "postgresql" else sqlite
        statement = (
            module.insert(CallbackItem).from_select([*columns, "reason"], source).on_conflict_do_nothing()
        )
        session.execute(statement)

    # -- reading -----------------------------------------------------------------------------------------
    def worklist(
        self, scope: WorklistScope, *, done: bool = False, limit: int = 200, now: datetime | None = None
    ) -> list[WorklistItem]:
        """Open items (``done``: the latest finished ones instead) the scope may see, in work order."""
        now = now or _now()
        self.sync(now)
        rank = case(
            (Action.urgency == "amber", 0),
            (Action.urgency == "urgent", 1),
            (Action.urgency == "information", 2),
            else_=NO_ACTION_RANK,
        )
        with session_scope(self._sessions) as session:
            query = self._query(session, scope)
            if done:
                query = query.where(CallbackItem.done_at.is_not(None)).order_by(CallbackItem.done_at.desc())
            else:
                query = query.where(CallbackItem.done_at.is_(None)).order_by(
                    rank, CallbackItem.arrived_at, CallbackItem.id
                )
            rows = session.execute(query.limit(limit)).all()
            return [self._item(*row, now=now) for row in rows]

    def _query(self, session: Session, scope: WorklistScope) -> Select[*tuple[Any, ...]]:
        """Items with their number, action and region, limited to what ``scope`` may see."""
        source_call = aliased(Call)
        tip_call = aliased(Call)
        return (
            select(
                CallbackItem,
                func.coalesce(Tip.callback_number, source_call.caller_number),
                Action.title,
                Action.status,
                Action.closed_at,
                Action.urgency,
                func.coalesce(Region.code, tip_call.region_code, source_call.region_code),
            )
            .outerjoin(Tip, Tip.id == CallbackItem.tip_id)
            .outerjoin(tip_call, tip_call.id == Tip.call_id)
            .outerjoin(source_call, source_call.id == CallbackItem.call_id)
            .outerjoin(Action, Action.id == CallbackItem.action_id)
            .outerjoin(Region, Region.id == Action.region_id)
            .where(self._visible(session, scope, tip_call, source_call))
        )

    @staticmethod
    def _visible(
        session: Session, scope: WorklistScope, tip_call: type[Call], source_call: type[Call]
    ) -> ColumnElement[bool]:
        if scope.national:
            return true()
        if scope.centralist_id is None:
            return false()
        region_id, region_code = session.execute(
            select(Centralist.region_id, Region.code)
            .join(Region, Region.id == Centralist.region_id)
            .where(Centralist.id == scope.centralist_id)
        ).one()
        on_team = exists().where(
            ActionCentralist.action_id == CallbackItem.action_id,
            ActionCentralist.centralist_id == scope.centralist_id,
        )
        return or_(
            Action.region_id == region_id,
            on_team,
            and_(
                CallbackItem.action_id.is_(None),
                func.coalesce(tip_call.region_code, source_call.region_code) == region_code,
            ),
        )

    @staticmethod
    def _item(
        row: CallbackItem,
        number: str | None,
        title: str | None,
        status: str | None,
        closed_at: datetime | None,
        urgency: str | None,
        region_code: str | None,
        *,
        now: datetime,
    ) -> WorklistItem:
        closed = _aware(closed_at)
        return WorklistItem(
            id=row.id,
            reason=row.reason,
            number=number,
            arrived_at=_aware(row.arrived_at) or now,
            action_id=row.action_id,
            action_title=title,
            action_status=status,
            action_closed_at=closed,
            closed_long_ago=status == ActionStatus.CLOSED.value
            and closed is not None
            and now - closed > CLOSED_LONG_AGO,
            urgency=urgency,
            region_code=region_code,
            tip_id=row.tip_id,
            call_id=row.call_id,
            claimed_by=row.claimed_by,
            claim_expires_at=_aware(row.claim_expires_at),
            callback_call_id=row.callback_call_id,
            result=row.result,
            note=row.note,
            done_by=row.done_by,
            done_at=_aware(row.done_at),
        )

    def item(self, item_id: int, scope: WorklistScope, now: datetime | None = None) -> WorklistItem:
        """One item the scope may see (open or done), or :class:`CallbackNotFound`."""
        now = now or _now()
        with session_scope(self._sessions) as session:
            row = session.execute(self._query(session, scope).where(CallbackItem.id == item_id)).first()
            if row is None:
                raise CallbackNotFound(f"no call-back item {item_id} for you")
            return self._item(*row, now=now)

    # -- working an item ---------------------------------------------------------------------------------
    def claim(
        self, item_id: int, scope: WorklistScope, *, actor: str, source: str, now: datetime | None = None
    ) -> WorklistItem:
        """Take the item: nobody else can work it until it is done, released or the claim expires.

        :class:`CallbackClaimed` when someone else holds it (or it is done)."""
        now = now or _now()
        item = self.item(item_id, scope, now)
        with session_scope(self._sessions) as session:
            taken = _updated(
                session,
                update(CallbackItem)
                .where(
                    CallbackItem.id == item_id,
                    CallbackItem.done_at.is_(None),
                    or_(
                        CallbackItem.claimed_by.is_(None),
                        CallbackItem.claim_expires_at <= now,
                        CallbackItem.claimed_by == actor,
                    ),
                )
                .values(claimed_by=actor, claimed_at=now, claim_expires_at=now + self.claim_duration)
                .execution_options(synchronize_session=False),
            )
            if taken != 1:
                holder = session.scalar(select(CallbackItem.claimed_by).where(CallbackItem.id == item_id))
                raise CallbackClaimed(
                    f"call-back {item_id} is already done"
                    if item.done_at
                    else f"{holder} is on call-back {item_id}"
                )
            record_audit(
                session,
                actor=actor,
                verb="claim",
                entity="callback",
                entity_id=item_id,
                detail={"expires_at": (now + self.claim_duration).isoformat(), "action_id": item.action_id},
                source=source,
            )
        self._changed(item.action_id, item_id)
        return self.item(item_id, scope, now)

    def release(self, item_id: int, *, actor: str, source: str) -> None:
        """Give a claimed item back to the list (only the one holding it can)."""
        with session_scope(self._sessions) as session:
            released = _updated(
                session,
                update(CallbackItem)
                .where(
                    CallbackItem.id == item_id,
                    CallbackItem.claimed_by == actor,
                    CallbackItem.done_at.is_(None),
                )
                .values(claimed_by=None, claimed_at=None, claim_expires_at=None)
                .execution_options(synchronize_session=False),
            )
            if released != 1:
                raise CallbackNotClaimed(f"call-back {item_id} is not yours to release")
            action_id = session.scalar(select(CallbackItem.action_id).where(CallbackItem.id == item_id))
            record_audit(
                session, actor=actor, verb="release", entity="callback", entity_id=item_id, source=source
            )
        self._changed(action_id, item_id)

    def _held(self, session: Session, item_id: int, actor: str, now: datetime) -> CallbackItem:
        """The item, claimed by ``actor`` and renewed; or :class:`CallbackNotClaimed`."""
        renewed = _updated(
            session,
            update(CallbackItem)
            .where(
                CallbackItem.id == item_id,
                CallbackItem.done_at.is_(None),
                CallbackItem.claimed_by == actor,
                CallbackItem.claim_expires_at > now,
            )
            .values(claim_expires_at=now + self.claim_duration)
            .execution_options(synchronize_session=False),
        )
        if renewed != 1:
            raise CallbackNotClaimed(f"claim call-back {item_id} first (a claim expires after a while)")
        row = session.get(CallbackItem, item_id)
        assert row is not None
        session.refresh(row)
        return row

    def call(
        self,
        item_id: int,
        scope: WorklistScope,
        *,
        centralist_id: int | None,
        actor: str,
        source: str,
        now: datetime | None = None,
    ) -> str:
        """Click-to-call: ring the actor's own phone, then the citizen. Returns the call's unique id.

        The item must be claimed by ``actor``; ``centralist_id`` is the actor's linked centralist
        (whose phone rings first)."""
        now = now or _now()
        item = self.item(item_id, scope, now)
        if centralist_id is None:
            raise CallbackInvalid(
                "your account is linked to no centralist phone: click-to-call cannot ring you"
            )
        if not item.number:
            raise CallbackInvalid(f"call-back {item_id} has no number")
        try:
            national = dialable_national(item.number)
        except NotDialable as exc:
            raise CallbackInvalid(f"call-back {item_id}: {exc}") from exc
        unique_id = f"bn-callback-{item_id}-{uuid.uuid4().hex[:12]}"
        with session_scope(self._sessions) as session:
            self._held(session, item_id, actor, now)
            endpoint = session.scalar(
                select(Centralist.sip_endpoint).where(
                    Centralist.id == centralist_id, Centralist.active.is_(True)
                )
            )
            if endpoint is None:
                raise CallbackInvalid("your centralist phone is deactivated")
            call = Call(
                unique_id=unique_id,
                kind=CALL_KIND_CALLBACK,
                caller_number=item.number,
                action_id=item.action_id,
                centralist_id=centralist_id,
                region_code=item.region_code,
                started_at=now,
                route_reason=f"call-back {item_id} by {actor}"[:200],
            )
            session.add(call)
            session.flush()
            session.execute(
                update(CallbackItem)
                .where(CallbackItem.id == item_id)
                .values(callback_call_id=call.id)
                .execution_options(synchronize_session=False)
            )
            record_audit(
                session,
                actor=actor,
                verb="call-back",
                entity="callback",
                entity_id=item_id,
                detail={"call": unique_id, "endpoint": endpoint, "action_id": item.action_id},
                source=source,
            )
        title = f"BN{item.action_id} " if item.action_id else "BN "
        request = CallbackDial(
            unique_id=unique_id,
            centralist_endpoint=endpoint,
            number=national,
            action_id=item.action_id,
            item_id=item_id,
            display=f"{title}terugbellen"[:40],
        )
        try:
            self._dialer.dial(request)
        except Exception as exc:
            with session_scope(self._sessions) as session:
                session.execute(
                    update(Call)
                    .where(Call.unique_id == unique_id)
                    .values(outcome=cv.OUTCOME_FAILED, ended_at=_now())
                    .execution_options(synchronize_session=False)
                )
            log.warning("call-back %s: Asterisk did not take the call: %s", item_id, exc)
            if isinstance(exc, CallbackDialFailed):
                raise
            raise CallbackDialFailed(f"the telephone system did not take the call: {exc}") from exc
        self._publish(
            live_event(
                LiveEventKind.CALL_ROUTED, item.action_id, call=unique_id, call_kind=CALL_KIND_CALLBACK
            )
        )
        self._changed(item.action_id, item_id)
        return unique_id

    def finish(
        self,
        item_id: int,
        scope: WorklistScope,
        *,
        result: str,
        note: str = "",
        actor: str,
        source: str,
        now: datetime | None = None,
    ) -> WorklistItem:
        """Note how the call-back went; the item is done (and its tip's call-back with it)."""
        now = now or _now()
        if result not in CALLBACK_RESULTS:
            raise CallbackInvalid(f"result must be one of {', '.join(CALLBACK_RESULTS)}")
        note = note.strip()
        if len(note) > MAX_NOTE:
            raise CallbackInvalid(f"the note is longer than {MAX_NOTE} characters")
        item = self.item(item_id, scope, now)
        with session_scope(self._sessions) as session:
            row = self._held(session, item_id, actor, now)
            row.result = result
            row.note = note or None
            row.done_by = actor
            row.done_at = now
            row.claim_expires_at = now
            if row.tip_id is not None:
                tip = session.get(Tip, row.tip_id)
                if tip is not None and tip.callback_done_at is None:
                    tip.callback_done_at = now
            if row.callback_call_id is not None:
                session.execute(
                    update(Call)
                    .where(Call.id == row.callback_call_id, Call.ended_at.is_(None))
                    .values(ended_at=now)
                    .execution_options(synchronize_session=False)
                )
            record_audit(
                session,
                actor=actor,
                verb="call-back-done",
                entity="callback",
                entity_id=item_id,
                detail={"result": result, "action_id": item.action_id, "tip_id": item.tip_id},
                source=source,
            )
        self._changed(item.action_id, item_id)
        return self.item(item_id, scope, now)

    # -- live ----------------------------------------------------------------------------------------------
    def _changed(self, action_id: int | None, item_id: int) -> None:
        self._publish(live_event(LiveEventKind.WORKLIST_CHANGED, action_id, item_id=item_id))

    def _publish(self, event: dict[str, object]) -> None:
        try:
            self._live.publish(event)
        except Exception:  # stored already; pages catch up on their next event or reconnect
            log.exception("worklist: live event %s not published", event.get("type"))

"""The callback log: every call about an action, from the first ring to its outcome.

Written from two sides that race: the FastAGI flow opens the row and records the routing
decision; AMI events add who answered and when the call ended. Both address the row by the
Asterisk UNIQUEID of the caller's channel, and every write is an idempotent upsert, so the
order in which they arrive does not matter. An outcome only moves forward (a call that was
connected stays connected even if a later event says "abandoned").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from burgernet import channel_vars as cv
from burgernet.db import session_scope
from burgernet.facts import ActionFacts
from burgernet.models import ActionCentralist, Call, Centralist, Tip
from burgernet.repositories import record_audit

log = logging.getLogger(__name__)

# A call whose end nobody saw: its Hangup event was sent while the AMI connection was down,
# and Asterisk, asked after the reconnection, no longer has its channel. Never set by the
# dialplan (so not in channel_vars.OUTCOMES); the lowest rank, so anything observed wins.
OUTCOME_UNOBSERVED = "unobserved"

# Later outcomes win over earlier ones; equal rank keeps the first.
OUTCOME_RANK = {
    OUTCOME_UNOBSERVED: 0,
    cv.OUTCOME_ABANDONED: 1,
    cv.OUTCOME_FAILED: 1,
    cv.OUTCOME_NO_ACTION: 2,
    cv.OUTCOME_TIP_LEFT: 3,
    cv.OUTCOME_OVERFLOWED: 4,  # answered by the region pool after the owners
    cv.OUTCOME_CONNECTED: 4,  # answered by an owner (equal rank: the first answer stands)
}


@dataclass(frozen=True)
class CallView:
    id: int
    unique_id: str
    kind: str
    caller_number: str | None
    participant_id: int | None
    action_id: int | None
    centralist: str | None
    region_code: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    hangup_cause: int | None
    route_reason: str | None
    recording_path: str | None


@dataclass(frozen=True)
class TipView:
    id: int
    call_id: int | None
    action_id: int | None
    recording_path: str
    callback_number: str | None
    created_at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


class CallLog:
    def __init__(self, sessions: sessionmaker[Session], facts: ActionFacts | None = None) -> None:
        self._sessions = sessions
        # A call's end changes its action's call figures (burgernet.facts): refreshed then.
        self._facts = facts or ActionFacts(sessions)

    def _row(self, session: Session, unique_id: str) -> Call:
        """The call's row, created when missing; safe when FastAGI and AMI create it at once."""
        call = session.scalar(select(Call).where(Call.unique_id == unique_id))
        if call is not None:
            return call
        try:
            with session.begin_nested():
                call = Call(unique_id=unique_id, kind=cv.CALL_KIND_INBOUND, started_at=_now())
                session.add(call)
        except IntegrityError:  # the other writer inserted it between our select and insert
            call = session.scalars(select(Call).where(Call.unique_id == unique_id)).one()
        return call

    def open_call(
        self,
        unique_id: str,
        *,
        kind: str = cv.CALL_KIND_INBOUND,
        linked_id: str | None = None,
        caller_number: str | None = None,
        participant_id: int | None = None,
        action_id: int | None = None,
        region_code: str | None = None,
        reason: str | None = None,
        outcome: str | None = None,
    ) -> None:
        """The FastAGI side: who called and what the routing decided, in one write."""
        with session_scope(self._sessions) as session:
            call = self._row(session, unique_id)
            call.kind = kind
            call.linked_id = linked_id or call.linked_id
            call.caller_number = caller_number or call.caller_number
            call.participant_id = participant_id or call.participant_id
            call.action_id = action_id if action_id is not None else call.action_id
            call.region_code = region_code or call.region_code
            call.route_reason = reason[:200] if reason else call.route_reason
            if outcome:
                self._advance(call, outcome)

    def answered(
        self, unique_id: str, endpoint: str, at: datetime | None = None, caller_number: str | None = None
    ) -> str:
        """A centralist picked up. ``connected`` when they own the action (or the call had no
        action), ``overflowed`` when the owners did not answer and the region pool did."""
        with session_scope(self._sessions) as session:
            call = self._row(session, unique_id)
            call.caller_number = call.caller_number or caller_number
            centralist_id = session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == endpoint))
            call.centralist_id = centralist_id
            call.answered_at = call.answered_at or at or _now()
            owner = call.action_id is None or centralist_id in set(
                session.scalars(
                    select(ActionCentralist.centralist_id).where(ActionCentralist.action_id == call.action_id)
                )
            )
            self._advance(call, cv.OUTCOME_CONNECTED if owner else cv.OUTCOME_OVERFLOWED)
            return str(call.outcome)

    def ended(
        self,
        unique_id: str,
        *,
        outcome: str | None,
        hangup_cause: int | None,
        at: datetime | None = None,
        caller_number: str | None = None,
    ) -> None:
        with session_scope(self._sessions) as session:
            call = self._row(session, unique_id)
            call.caller_number = call.caller_number or caller_number
            call.ended_at = call.ended_at or at or _now()
            call.hangup_cause = hangup_cause if hangup_cause is not None else call.hangup_cause
            self._advance(call, outcome or cv.OUTCOME_ABANDONED)
        try:
            self._facts.refresh_for_call(unique_id)
        except Exception:  # the call is logged; its figures follow with the periodic refresh
            log.exception("call %s: action figures not refreshed now", unique_id)

    def close_unobserved(self, alive: set[str], started_before: datetime) -> list[str]:
        """Close the calls still open here whose channel Asterisk no longer has.

        ``alive`` is the unique ids of every channel Asterisk reported (AMI ``Status``), asked
        at ``started_before``: a call opened later may have a channel the answer could not
        show yet, so only older calls are judged. A closed call keeps what was observed (an
        answered call stays ``connected``); one with nothing observed becomes ``unobserved``.
        Each is audited. Returns the unique ids closed.
        """
        closed: list[str] = []
        with session_scope(self._sessions) as session:
            open_calls = session.scalars(
                select(Call).where(Call.ended_at.is_(None), Call.started_at < started_before)
            ).all()
            for call in open_calls:
                if call.unique_id in alive:
                    continue
                call.ended_at = _now()
                self._advance(call, OUTCOME_UNOBSERVED)
                record_audit(
                    session,
                    actor="ami-resync",
                    verb="close",
                    entity="call",
                    entity_id=call.id,
                    detail={"unique_id": call.unique_id, "why": "channel gone; its hang-up was not seen"},
                    source="ami",
                )
                closed.append(call.unique_id)
        return closed

    def centralist_endpoints(self) -> list[str]:
        """The PJSIP endpoints of the active centralists (those Asterisk's configuration has)."""
        with session_scope(self._sessions) as session:
            return list(session.scalars(select(Centralist.sip_endpoint).where(Centralist.active.is_(True))))

    def set_outcome(self, unique_id: str, outcome: str) -> None:
        with session_scope(self._sessions) as session:
            self._advance(self._row(session, unique_id), outcome)

    def register_tip(
        self, unique_id: str, *, action_id: int | None, recording_path: str, callback_number: str | None
    ) -> int:
        """A recorded tip becomes a call-back request (once per call, however often it is reported)."""
        with session_scope(self._sessions) as session:
            call = self._row(session, unique_id)
            session.flush()
            call.recording_path = recording_path
            if action_id is not None:
                call.action_id = action_id
            self._advance(call, cv.OUTCOME_TIP_LEFT)
            tip = session.scalar(select(Tip).where(Tip.call_id == call.id))
            if tip is None:
                tip = Tip(
                    call_id=call.id,
                    action_id=call.action_id,
                    recording_path=recording_path,
                    callback_number=callback_number or call.caller_number,
                    created_at=_now(),
                )
                session.add(tip)
                session.flush()
            return tip.id

    def for_action(self, action_id: int, limit: int | None = None) -> list[CallView]:
        """The action's calls in the order they came in; with ``limit``, only the latest ones."""
        with session_scope(self._sessions) as session:
            query = (
                select(Call, Centralist.sip_endpoint)
                .outerjoin(Centralist, Centralist.id == Call.centralist_id)
                .where(Call.action_id == action_id)
                .order_by(Call.started_at.desc(), Call.id.desc())
            )
            if limit is not None:
                query = query.limit(limit)
            rows = session.execute(query).all()
            return [_view(call, endpoint) for call, endpoint in reversed(rows)]

    def count_for_action(self, action_id: int) -> int:
        with session_scope(self._sessions) as session:
            return int(
                session.scalar(select(func.count()).select_from(Call).where(Call.action_id == action_id)) or 0
            )

    def get(self, unique_id: str) -> CallView | None:
        with session_scope(self._sessions) as session:
            row = session.execute(
                select(Call, Centralist.sip_endpoint)
                .outerjoin(Centralist, Centralist.id == Call.centralist_id)
                .where(Call.unique_id == unique_id)
            ).first()
            return _view(row[0], row[1]) if row else None

    def tips(self, action_id: int | None = None) -> list[TipView]:
        with session_scope(self._sessions) as session:
            query = select(Tip).order_by(Tip.created_at, Tip.id)
            if action_id is not None:
                query = query.where(Tip.action_id == action_id)
            return [
                TipView(t.id, t.call_id, t.action_id, t.recording_path, t.callback_number, t.created_at)
                for t in session.scalars(query)
            ]

    @staticmethod
    def _advance(call: Call, outcome: str) -> None:
        if outcome not in OUTCOME_RANK:
            raise ValueError(f"unknown call outcome {outcome!r}")
        if call.outcome is None or OUTCOME_RANK[outcome] > OUTCOME_RANK[call.outcome]:
            call.outcome = outcome


def _view(call: Call, endpoint: str | None) -> CallView:
    return CallView(
        id=call.id,
        unique_id=call.unique_id,
        kind=call.kind,
        caller_number=call.caller_number,
        participant_id=call.participant_id,
        action_id=call.action_id,
        centralist=endpoint,
        region_code=call.region_code,
        started_at=call.started_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        outcome=call.outcome,
        hangup_cause=call.hangup_cause,
        route_reason=call.route_reason,
        recording_path=call.recording_path,
    )


@dataclass(frozen=True)
class StoredRecording:
    """A recording on disk as the retention purge sees it."""

    id: int
    # The file itself, extension included.
    path: Path
    created_at: datetime


class TipRecordings:
    """The tip recordings as :mod:`recordings.retention` sees them (its ``RecordingRepository``)."""

    def __init__(self, sessions: sessionmaker[Session], actor: str = "retention") -> None:
        self._sessions = sessions
        self._actor = actor

    def list_expired(self, cutoff: datetime) -> list[StoredRecording]:
        with session_scope(self._sessions) as session:
            rows = session.execute(
                select(Tip.id, Tip.recording_path, Tip.created_at)
                .where(Tip.created_at < cutoff)
                .order_by(Tip.id)
            ).all()
        return [StoredRecording(tip_id, Path(path), created) for tip_id, path, created in rows]

    def delete(self, recording_id: int) -> None:
        """Delete the tip and unlink the recording from its call, audited, in one transaction."""
        with session_scope(self._sessions) as session:
            tip = session.get(Tip, recording_id)
            if tip is None:
                return
            if tip.call_id is not None:
                call = session.get(Call, tip.call_id)
                if call is not None:
                    call.recording_path = None
            session.delete(tip)
            record_audit(
                session,
                actor=self._actor,
                verb="purge",
                entity="tip",
                entity_id=recording_id,
                detail={"action_id": tip.action_id},
                source="retention",
            )

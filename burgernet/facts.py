"""Facts that last: each action's anonymous figures, kept in ``action_facts`` and
``action_channel_facts`` while retention removes the personal rows they were counted from.

:class:`ActionFacts` recomputes an action's figures from the rows that still exist and upserts
them. It runs at moments (an action started or closed, a broadcast finished, a call ended) and
from the periodic refresh in ``burgernet worker`` (composition/housekeeping.py), so a missed
moment is caught up within a minute. Refreshing is idempotent; two processes refreshing the
same action at once write the same numbers.

**Never lower a figure whose source rows were purged.** Before retention deletes or blanks
anything it refreshes the affected actions and stamps ``sources_purged_at``. From then on a
refresh keeps, per figure, the larger of the stored and the recomputed value (a datetime
keeps the stored one where nothing is left to recompute it from). Before the stamp, figures
are exact and may go down (an SMS counted "sent" that the provider later reports
undelivered moves from delivered to failed).

What each figure counts (the README's "Reports" section shows them):

* per channel and broadcast kind (alert, update, result): ``recipients`` = deliveries;
  ``delivered`` = reached (sent, delivered, answered); ``failed`` = failed, undelivered,
  busy, no answer; ``opted_out`` = cancelled because the participant opted out or sent STOP
  while it was queued (participants who had opted out before the broadcast get no delivery
  at all, so they are in no count); ``t50_s``/``t90_s``/``t100_s`` = seconds from the
  broadcast's start until that share of its deliveries reached a final status (cancelled
  included, as the live progress bar counts them);
* ``first_alert_at`` = the first alert delivery handed to a provider; ``first_call_at`` =
  the first call about the action at or after it;
* calls: citizens calling about the action, inbound to the free number and key-press
  transfers from an alert call (call-backs made by the control room are not counted), by
  ``Call.outcome``; ``calls_answered_within_20s``; ``longest_wait_s`` = the longest time
  from the start of a call to its answer, or to its end for a call nobody answered;
* ``tips``, ``callbacks_done`` (tips called back, and worklist items done for calls),
  ``sightings``, ``result_deliveries`` (result messages that reached someone).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from burgernet.call_hours import CallHours
from burgernet.db import session_scope
from burgernet.domain import DELIVERY_STATUSES, ActionStatus
from burgernet.models import (
    FACT_BROADCAST_KINDS,
    Action,
    ActionChannelFact,
    ActionFact,
    Broadcast,
    Call,
    CallbackItem,
    Delivery,
    Region,
    Sighting,
    Tip,
)

log = logging.getLogger(__name__)

REACHED_STATUSES = frozenset({"sent", "delivered", "answered"})
FAILED_STATUSES = frozenset({"failed", "undelivered", "busy", "no_answer"})
FINAL_STATUSES = frozenset(DELIVERY_STATUSES) - {"queued", "sending"}
# What broadcasting.store writes as last_error when it cancels a queued delivery because the
# participant opted out (panel, STOP by SMS): the only trace of an opt-out on a delivery.
OPTED_OUT_ERROR = "participant opted out"
# Citizens calling about the action; "callback" calls are the control room calling out.
CITIZEN_CALL_KINDS = ("inbound", "transfer")
CALL_OUTCOME_COLUMNS = {
    "connected": "calls_connected",
    "tip_left": "calls_tip_left",
    "abandoned": "calls_abandoned",
    "failed": "calls_failed",
    "no_action": "calls_no_action",
    "unobserved": "calls_unobserved",
}
ANSWERED_WITHIN_SECONDS = 20.0
# Actions without figures filled in per periodic turn (an upgrade's history, a minute at a time).
BACKFILL_PER_TURN = 200
MILESTONES = (50, 90, 100)
_COUNTERS = (
    "calls_total",
    *CALL_OUTCOME_COLUMNS.values(),
    "calls_answered_within_20s",
    "tips",
    "callbacks_done",
    "sightings",
    "result_deliveries",
)


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; they were stored as UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    later, earlier = _aware(later), _aware(earlier)
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


@dataclass(frozen=True)
class ChannelFigures:
    channel: str
    kind: str
    recipients: int
    delivered: int
    failed: int
    opted_out: int
    t50_s: float | None
    t90_s: float | None
    t100_s: float | None


def milestones(durations: Iterable[float], total: int) -> dict[int, float | None]:
    """Seconds until 50/90/100 % of ``total`` were final, from each final one's duration."""
    ordered = sorted(durations)
    found: dict[int, float | None] = {}
    for pct in MILESTONES:
        needed = math.ceil(total * pct / 100)
        found[pct] = ordered[needed - 1] if total > 0 and 0 < needed <= len(ordered) else None
    return found


class ActionFacts:
    """Computes and stores each action's figures (see the module's docstring)."""

    def __init__(self, sessions: sessionmaker[Session], closed_days: int = 7) -> None:
        self._sessions = sessions
        self._closed_days = closed_days
        self.call_hours = CallHours(sessions)

    # -- entry points --------------------------------------------------------------------------
    def refresh(self, action_id: int, *, deliveries: bool = True) -> bool:
        """Recompute one action's figures and store them; False when there is no such action."""
        try:
            with session_scope(self._sessions) as session:
                return self.refresh_in(session, action_id, deliveries=deliveries)
        except IntegrityError:
            # Another process inserted the action's first row at the same moment: now it is there.
            with session_scope(self._sessions) as session:
                return self.refresh_in(session, action_id, deliveries=deliveries)

    def refresh_many(self, action_ids: Iterable[int]) -> int:
        done = 0
        for action_id in sorted(set(action_ids)):
            try:
                done += self.refresh(action_id)
            except Exception:  # one action's trouble must not stop the others' figures
                log.exception("facts of action %s not refreshed; the next refresh tries again", action_id)
        return done

    def refresh_open(self, now: datetime | None = None) -> int:
        """Every active action, those closed in the last ``closed_days``, and a batch of
        started actions that have no figures yet (closed before this feature existed: an
        upgraded installation fills in its history by itself); returns how many. Then the
        hours of ``call_hour_facts`` touched since the last turn."""
        since = (now or datetime.now(UTC)) - timedelta(days=self._closed_days)
        with session_scope(self._sessions) as session:
            ids = set(
                session.scalars(
                    select(Action.id).where(
                        or_(
                            Action.status == ActionStatus.ACTIVE.value,
                            (Action.status == ActionStatus.CLOSED.value) & (Action.closed_at >= since),
                        )
                    )
                )
            )
            ids.update(
                session.scalars(
                    select(Action.id)
                    .outerjoin(ActionFact, ActionFact.action_id == Action.id)
                    .where(ActionFact.action_id.is_(None), Action.started_at.is_not(None))
                    .order_by(Action.id.desc())
                    .limit(BACKFILL_PER_TURN)
                )
            )
        done = self.refresh_many(ids)
        try:  # the calls per hour the reports read (burgernet.call_hours): the touched hours only
            self.call_hours.refresh()
        except Exception:
            log.exception("calls per hour not refreshed; the next refresh tries again")
        return done

    def refresh_all(self) -> int:
        """Every action (after an upgrade: actions closed before facts existed get theirs)."""
        with session_scope(self._sessions) as session:
            ids = list(session.scalars(select(Action.id)))
        return self.refresh_many(ids)

    def refresh_for_broadcast(self, broadcast_id: int) -> bool:
        """A broadcast finished: refresh its action (an inquiry's broadcast has none)."""
        with session_scope(self._sessions) as session:
            action_id = session.scalar(select(Broadcast.action_id).where(Broadcast.id == broadcast_id))
        return self.refresh(action_id) if action_id is not None else False

    def refresh_for_call(self, unique_id: str) -> bool:
        """A call ended: refresh the call figures of the action it was about, if any."""
        with session_scope(self._sessions) as session:
            action_id = session.scalar(select(Call.action_id).where(Call.unique_id == unique_id))
        return self.refresh(action_id, deliveries=False) if action_id is not None else False

    def mark_sources_purged(self, session: Session, action_ids: Iterable[int], at: datetime) -> None:
        """Retention is about to remove rows these actions were counted from (call it after a
        refresh, in the purge's transaction): from now on their figures never go down."""
        ids = sorted(set(action_ids))
        for chunk in (ids[n : n + 500] for n in range(0, len(ids), 500)):
            for fact in session.scalars(select(ActionFact).where(ActionFact.action_id.in_(chunk))):
                if fact.sources_purged_at is None:
                    fact.sources_purged_at = at

    # -- computing -----------------------------------------------------------------------------
    def refresh_in(self, session: Session, action_id: int, *, deliveries: bool = True) -> bool:
        """Recompute in ``session``; without ``deliveries`` only the calls, tips, call-backs and
        sightings (cheap: what a call's end changes), keeping the delivery figures as stored."""
        row = session.execute(
            select(
                Action.action_type,
                Region.code,
                Action.urgency,
                Action.started_at,
                Action.closed_at,
                Action.outcome_kind,
            )
            .join(Region, Region.id == Action.region_id)
            .where(Action.id == action_id)
        ).one_or_none()
        if row is None:
            return False
        now = datetime.now(UTC)
        fact = session.get(ActionFact, action_id)
        if fact is None:
            fact = ActionFact(action_id=action_id, updated_at=now)
            for name in _COUNTERS:
                setattr(fact, name, 0)
            session.add(fact)
        keep = fact.sources_purged_at is not None
        fact.action_type, fact.region_code, fact.urgency = row[0], row[1], row[2]
        fact.started_at, fact.closed_at, fact.outcome_kind = row[3], row[4], row[5]

        if deliveries:
            channels = self._channel_figures(session, action_id)
            self._store_channels(session, action_id, channels, keep, now)
            first_alert = _aware(
                session.scalar(
                    select(func.min(Delivery.sending_at))
                    .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
                    .where(Broadcast.action_id == action_id, Broadcast.kind == "alert")
                )
            )
            fact.first_alert_at = _earliest(fact.first_alert_at, first_alert) if keep else first_alert
            result_deliveries = sum(c.delivered for c in channels if c.kind == "result")
        else:
            result_deliveries = fact.result_deliveries or 0
        calls = self._call_figures(session, action_id, _aware(fact.first_alert_at))
        counts = dict(calls.counts)
        counts["tips"] = self._count(session, select(func.count(Tip.id)).where(Tip.action_id == action_id))
        counts["callbacks_done"] = self._count(
            session,
            select(func.count(Tip.id)).where(Tip.action_id == action_id, Tip.callback_done_at.is_not(None)),
        ) + self._count(
            session,
            select(func.count(CallbackItem.id)).where(
                CallbackItem.action_id == action_id,
                CallbackItem.done_at.is_not(None),
                CallbackItem.tip_id.is_(None),
            ),
        )
        counts["sightings"] = self._count(
            session, select(func.count(Sighting.id)).where(Sighting.action_id == action_id)
        )
        counts["result_deliveries"] = result_deliveries
        for name, value in counts.items():
            setattr(fact, name, max(value, getattr(fact, name) or 0) if keep else value)
        if keep:
            fact.first_call_at = _earliest(fact.first_call_at, calls.first_call_at)
            fact.longest_wait_s = _largest(fact.longest_wait_s, calls.longest_wait_s)
        else:
            fact.first_call_at = calls.first_call_at
            fact.longest_wait_s = calls.longest_wait_s
        fact.updated_at = now
        return True

    @staticmethod
    def _count(session: Session, query: Select[int]) -> int:
        return int(session.scalar(query) or 0)

    def _channel_figures(self, session: Session, action_id: int) -> list[ChannelFigures]:
        """Counted in the database (a national alert has millions of deliveries)."""
        # Grouped by its label: PostgreSQL does not match two copies of an expression with a parameter.
        opted_out = case((Delivery.last_error == OPTED_OUT_ERROR, 1), else_=0).label("opted_out")
        counted = session.execute(
            select(Broadcast.kind, Delivery.channel, Delivery.status, opted_out, func.count())
            .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
            .where(Broadcast.action_id == action_id, Broadcast.kind.in_(FACT_BROADCAST_KINDS))
            .group_by(Broadcast.kind, Delivery.channel, Delivery.status, opted_out)
        )
        groups: dict[tuple[str, str], _ChannelTally] = {}
        for kind, channel, status, opted, number in counted:
            tally = groups.setdefault((channel, kind), _ChannelTally())
            tally.recipients += number
            if status in REACHED_STATUSES:
                tally.delivered += number
            elif status in FAILED_STATUSES:
                tally.failed += number
            elif status == "cancelled" and opted:
                tally.opted_out += number
            if status in FINAL_STATUSES:
                tally.final += number
        stored = {
            (row.channel, row.kind): row
            for row in session.scalars(
                select(ActionChannelFact).where(ActionChannelFact.action_id == action_id)
            )
        }
        figures = []
        for (channel, kind), tally in sorted(groups.items()):
            before = stored.get((channel, kind))
            if before is not None and before.t100_s is not None and before.recipients == tally.recipients:
                # Every delivery was final already: finished_at never changes after that.
                reached = {50: before.t50_s, 90: before.t90_s, 100: before.t100_s}
            else:
                reached = self._milestones(session, action_id, kind, channel, tally)
            figures.append(
                ChannelFigures(
                    channel=channel,
                    kind=kind,
                    recipients=tally.recipients,
                    delivered=tally.delivered,
                    failed=tally.failed,
                    opted_out=tally.opted_out,
                    t50_s=reached[50],
                    t90_s=reached[90],
                    t100_s=reached[100],
                )
            )
        return figures

    @staticmethod
    def _milestones(
        session: Session, action_id: int, kind: str, channel: str, tally: _ChannelTally
    ) -> dict[int, float | None]:
        broadcasts = session.execute(
            select(Broadcast.id, Broadcast.started_at).where(
                Broadcast.action_id == action_id, Broadcast.kind == kind
            )
        ).all()
        final = (
            select(Delivery.finished_at)
            .where(Delivery.channel == channel, Delivery.status.in_(FINAL_STATUSES))
            .where(Delivery.finished_at.is_not(None))
        )
        if len(broadcasts) == 1:
            # One broadcast (an alert, a result): the k-th finished delivery, found by the database.
            broadcast_id, started_at = broadcasts[0]
            found: dict[int, float | None] = {}
            for pct in MILESTONES:
                needed = math.ceil(tally.recipients * pct / 100)
                moment = None
                if 0 < needed <= tally.final:
                    moment = session.scalar(
                        final.where(Delivery.broadcast_id == broadcast_id)
                        .order_by(Delivery.finished_at)
                        .offset(needed - 1)
                        .limit(1)
                    )
                found[pct] = _seconds(moment, started_at)
            return found
        # Several updates: each delivery's time from its own broadcast's start.
        starts = {broadcast_id: started_at for broadcast_id, started_at in broadcasts}
        durations = [
            took
            for broadcast_id, finished_at in session.execute(
                final.add_columns(Delivery.broadcast_id)
                .with_only_columns(Delivery.broadcast_id, Delivery.finished_at)
                .where(Delivery.broadcast_id.in_(list(starts)))
            )
            if (took := _seconds(finished_at, starts[broadcast_id])) is not None
        ]
        return milestones(durations, tally.recipients)

    @staticmethod
    def _store_channels(
        session: Session, action_id: int, figures: Sequence[ChannelFigures], keep: bool, now: datetime
    ) -> None:
        stored = {
            (row.channel, row.kind): row
            for row in session.scalars(
                select(ActionChannelFact).where(ActionChannelFact.action_id == action_id)
            )
        }
        for figure in figures:
            row = stored.get((figure.channel, figure.kind))
            keep_row = keep and row is not None
            if row is None:
                row = ActionChannelFact(action_id=action_id, channel=figure.channel, kind=figure.kind)
                session.add(row)
            for name in ("recipients", "delivered", "failed", "opted_out"):
                value = getattr(figure, name)
                setattr(row, name, max(value, getattr(row, name) or 0) if keep_row else value)
            for name in ("t50_s", "t90_s", "t100_s"):
                value, before = getattr(figure, name), getattr(row, name)
                # Once purged, a milestone reached stays; one not reached yet may still come.
                setattr(row, name, before if keep_row and before is not None else value)
            row.updated_at = now
        # A (channel, kind) whose deliveries are all gone keeps its row as it was.

    @staticmethod
    def _call_figures(session: Session, action_id: int, first_alert_at: datetime | None) -> _CallTally:
        tally = _CallTally()
        rows = session.execute(
            select(Call.started_at, Call.answered_at, Call.ended_at, Call.outcome).where(
                Call.action_id == action_id, Call.kind.in_(CITIZEN_CALL_KINDS)
            )
        )
        for started_at, answered_at, ended_at, outcome in rows:
            started = _aware(started_at)
            tally.counts["calls_total"] += 1
            # "overflowed": answered by the region pool after the owners, connected all the same.
            column = "calls_connected" if outcome == "overflowed" else CALL_OUTCOME_COLUMNS.get(outcome or "")
            if column:
                tally.counts[column] += 1
            waited = _seconds(answered_at, started_at)
            if waited is not None and waited <= ANSWERED_WITHIN_SECONDS:
                tally.counts["calls_answered_within_20s"] += 1
            if waited is None:  # nobody answered: the caller waited until the call ended
                waited = _seconds(ended_at, started_at)
            tally.longest_wait_s = _largest(tally.longest_wait_s, waited)
            if first_alert_at is not None and started is not None and started >= first_alert_at:
                tally.first_call_at = _earliest(tally.first_call_at, started)
        return tally


@dataclass
class _ChannelTally:
    recipients: int = 0
    delivered: int = 0
    failed: int = 0
    opted_out: int = 0
    final: int = 0


@dataclass
class _CallTally:
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("calls_total", *CALL_OUTCOME_COLUMNS.values(), "calls_answered_within_20s"), 0
        )
    )
    first_call_at: datetime | None = None
    longest_wait_s: float | None = None


def _earliest(stored: datetime | None, computed: datetime | None) -> datetime | None:
    stored, computed = _aware(stored), _aware(computed)
    if stored is None or computed is None:
        return stored or computed
    return min(stored, computed)


def _largest(stored: float | None, computed: float | None) -> float | None:
    if stored is None or computed is None:
        return stored if computed is None else computed
    return max(stored, computed)

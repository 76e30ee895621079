"""Calls per UTC hour: the summary the reports read instead of the calls table.

``call_hour_facts`` holds, per UTC hour in which calls started, the number of calls per region,
action type (NULL: no action), kind, outcome and answering centralist, with the calls answered
within 20 s and the waits. ``call_hour_team_facts`` holds, per hour, region, action type and
kind, the calls about actions that reached each team member's turn (the team rings in order,
routing.decide) and how many of those the member answered. Both are anonymous (no caller, no
call id) and are never purged: retention only blanks the calls' personal fields.

A refresh recomputes whole hours, **only the hours touched since the previous refresh**:

* hours holding a call with an id above the highest one seen then (new calls, also ones
  back-dated into an hour summarised long ago);
* hours holding a call still in progress, or one that ended since a little before the previous
  refresh (its answer, outcome and wait may have changed).

An hour nobody touches again is final. Recomputing an hour deletes its rows and writes them
anew from the calls, so a refresh is idempotent; the single ``call_hour_refreshes`` row is
updated first, which makes two refreshes (the worker's minute, a report being read) wait for
each other instead of writing the same hour twice. A call that changes long after it ended
without a new ``ended_at`` (a tip assigned to an action by hand) is counted as it stood.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from burgernet.db import session_scope
from burgernet.models import (
    Action,
    ActionCentralist,
    Call,
    CallHourFact,
    CallHourRefresh,
    CallHourTeamFact,
)

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
ANSWERED_WITHIN_SECONDS = 20.0  # as burgernet.facts
ANSWERED_OUTCOMES = ("connected", "overflowed")
# A call's end is written by the process that saw it, in a transaction that may commit a little
# after its ended_at: calls that ended this long before the previous refresh are looked at again.
ENDED_MARGIN = timedelta(minutes=10)
# Hours recomputed per query (a first fill reads the calls a month at a time).
HOURS_PER_QUERY = 24 * 31
_STATE_ID = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # SQLite: naive UTC


def hour_of(moment: datetime) -> datetime:
    return _aware(moment).astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class RefreshResult:
    hours: int  # hours recomputed
    calls: int  # calls read


class CallHours:
    """Keeps ``call_hour_facts`` and ``call_hour_team_facts`` up to date (see the module)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def refresh(self, now: datetime | None = None) -> RefreshResult:
        with session_scope(self._sessions) as session:
            return refresh_in(session, now)


def refresh_in(session: Session, now: datetime | None = None) -> RefreshResult:
    """Recompute the touched hours in ``session`` (committed by the caller)."""
    now = now or datetime.now(UTC)
    # The lock first: a second refresh waits here until the first has committed.
    locked = session.execute(
        update(CallHourRefresh)
        .where(CallHourRefresh.id == _STATE_ID)
        .values(last_call_id=CallHourRefresh.last_call_id)
        .execution_options(synchronize_session=False)
    )
    if not locked.rowcount:  # type: ignore[attr-defined]
        session.add(CallHourRefresh(id=_STATE_ID, last_call_id=0, refreshed_at=_EPOCH))
        session.flush()
    state = session.execute(
        select(CallHourRefresh.last_call_id, CallHourRefresh.refreshed_at).where(
            CallHourRefresh.id == _STATE_ID
        )
    ).one()
    last_call_id, refreshed_at = int(state[0]), _aware(state[1])
    highest = int(session.scalar(select(func.max(Call.id))) or 0)
    hours: set[datetime] = set()
    touched = (
        Call.id > last_call_id,
        Call.ended_at.is_(None),
        # Up to now only: a call that ends "later" (a clock ahead, test data) is looked at once
        # its end has come, not at every refresh until then.
        (Call.ended_at >= refreshed_at - ENDED_MARGIN) & (Call.ended_at <= now),
    )
    for condition in touched:  # one indexed query each (an OR would read the whole table)
        hours.update(_hours_where(session, condition))
    calls = 0
    for window in _windows(sorted(hours)):
        calls += _recompute(session, window)
    session.execute(
        update(CallHourRefresh)
        .where(CallHourRefresh.id == _STATE_ID)
        .values(last_call_id=max(highest, last_call_id), refreshed_at=now)
        .execution_options(synchronize_session=False)
    )
    return RefreshResult(len(hours), calls)


def _hours_where(session: Session, condition: Any) -> set[datetime]:
    if session.get_bind().dialect.name == "postgresql":
        bucket = func.date_trunc("hour", func.timezone("UTC", Call.started_at))
        return {hour_of(moment) for moment in session.scalars(select(bucket).where(condition).distinct())}
    bucket = func.strftime("%Y-%m-%d %H", Call.started_at)  # SQLite stores UTC as text
    return {
        datetime.strptime(text, "%Y-%m-%d %H").replace(tzinfo=UTC)
        for text in session.scalars(select(bucket).where(condition).distinct())
        if text
    }


def _windows(hours: list[datetime]) -> Iterable[list[datetime]]:
    """The touched hours, in order, in groups spanning at most HOURS_PER_QUERY hours."""
    group: list[datetime] = []
    for hour in hours:
        if group and hour - group[0] >= HOURS_PER_QUERY * HOUR:
            yield group
            group = []
        group.append(hour)
    if group:
        yield group


def _recompute(session: Session, hours: list[datetime]) -> int:
    """Replace the rows of ``hours`` with figures from their calls as they are now. The calls
    of the whole window are read at once (an hour between two touched ones stays as it is)."""
    start, end, touched = hours[0], hours[-1] + HOUR, set(hours)
    for chunk in (hours[n : n + 500] for n in range(0, len(hours), 500)):
        session.execute(
            delete(CallHourFact)
            .where(CallHourFact.hour_start.in_(chunk))
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(CallHourTeamFact)
            .where(CallHourTeamFact.hour_start.in_(chunk))
            .execution_options(synchronize_session=False)
        )
    rows = [
        row
        for row in session.execute(
            select(
                Call.started_at,
                Call.answered_at,
                Call.ended_at,
                Call.kind,
                Call.region_code,
                Call.action_id,
                Action.action_type,
                Call.outcome,
                Call.centralist_id,
            )
            .outerjoin(Action, Action.id == Call.action_id)
            .where(Call.started_at >= start, Call.started_at < end)
        )
        if hour_of(row[0]) in touched
    ]
    if not rows:
        return 0
    teams: dict[int, list[tuple[int, int]]] = defaultdict(list)  # action: [(position, centralist)]
    action_ids = sorted({row[5] for row in rows if row[5] is not None})
    for batch in (action_ids[n : n + 500] for n in range(0, len(action_ids), 500)):
        for team_action, centralist_id, position in session.execute(
            select(
                ActionCentralist.action_id, ActionCentralist.centralist_id, ActionCentralist.position
            ).where(ActionCentralist.action_id.in_(batch))
        ):
            teams[team_action].append((position, centralist_id))

    figures: dict[tuple[Any, ...], list[Any]] = {}  # key: [calls, within 20 s, wait sum, wait max]
    team_figures: dict[tuple[Any, ...], list[int]] = {}  # key: [offered, answered]
    for started, answered, ended, kind, region, action_id, action_type, outcome, answerer in rows:
        hour = hour_of(started)
        entry = figures.setdefault(
            (hour, region, action_type if action_id is not None else None, kind, outcome, answerer),
            [0, 0, 0.0, None],
        )
        entry[0] += 1
        wait = _seconds(answered, started)
        if wait is not None and wait <= ANSWERED_WITHIN_SECONDS:
            entry[1] += 1
        if wait is None:
            wait = _seconds(ended, started)
        if wait is not None:
            entry[2] += wait
            entry[3] = wait if entry[3] is None else max(entry[3], wait)
        team = teams.get(action_id) if action_id is not None else None
        if not team:
            continue
        # The team rings in order: a call answered by the member at position p reached members
        # 0..p; one no member answered reached them all (busy or offline is not recorded).
        answerer_position = next((p for p, cid in team if cid == answerer), None)
        picked_up = outcome in ANSWERED_OUTCOMES
        for position, member in team:
            if answerer_position is None or position <= answerer_position:
                tally = team_figures.setdefault((hour, region, action_type, kind, member), [0, 0])
                tally[0] += 1
                tally[1] += int(picked_up and member == answerer)
    session.execute(
        insert(CallHourFact),
        [
            {
                "hour_start": key[0],
                "region_code": key[1],
                "action_type": key[2],
                "kind": key[3],
                "outcome": key[4],
                "centralist_id": key[5],
                "calls": value[0],
                "answered_within_20s": value[1],
                "wait_seconds_sum": round(value[2], 3),
                "wait_seconds_max": value[3],
            }
            for key, value in figures.items()
        ],
    )
    if team_figures:
        session.execute(
            insert(CallHourTeamFact),
            [
                {
                    "hour_start": key[0],
                    "region_code": key[1],
                    "action_type": key[2],
                    "kind": key[3],
                    "centralist_id": key[4],
                    "offered": value[0],
                    "answered": value[1],
                }
                for key, value in team_figures.items()
            ],
        )
    return len(rows)


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (_aware(later) - _aware(earlier)).total_seconds())

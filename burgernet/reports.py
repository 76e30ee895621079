"""Reports for control-room management: what Burgernet did in a period, in figures.

A report covers a **period** (a month, a quarter, a year, or a custom range of days, always
in Europe/Amsterdam: "November" starts at midnight on 1 November in the Netherlands, and a
month across a DST change is still exactly that month) and a **scope** (national, one
region, one action type, or both). It is computed from anonymous sources only:

* ``action_facts`` and ``action_channel_facts`` (one row per action and per action, channel
  and broadcast kind; written by :mod:`burgernet.facts`, kept after retention);
* ``actions`` for the outcome and the closing time (the source of truth when they differ);
* ``call_hour_facts`` and ``call_hour_team_facts`` (:mod:`burgernet.call_hours`: inbound
  calls per UTC hour, region, action type, outcome and answering centralist, and per team
  member the calls that reached their turn) for what the action facts do not hold: calls
  without an action, the hour of day, and who answered. Anonymous, kept after retention; a
  report first brings them up to date (only the hours touched since the last refresh).

**An action belongs to the period in which it started** (its ``started_at``): its reach,
speed, calls, tips and outcome are counted there even when a call or the close came later.
Calls without an action, the busiest hours and the answer rates count **calls** by the time
they started.

Bucketing by local month and hour is done in Python, not in SQL, because SQLite has no time
zones: the hourly summary is grouped in SQL by its UTC hour (at most 24 × 366 groups a year,
whatever the number of calls), and each UTC hour maps to exactly one Amsterdam hour (the
offsets are whole hours). The per-action facts (one row per action, ~48,000 a year nationally)
are read as rows.
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session, sessionmaker

from burgernet.call_hours import CallHours
from burgernet.db import session_scope
from burgernet.domain import ActionType, Channel, OutcomeKind
from burgernet.errors import DomainError
from burgernet.models import (
    Action,
    ActionChannelFact,
    ActionFact,
    CallHourFact,
    CallHourTeamFact,
    Centralist,
    Region,
)
from burgernet.repositories import record_audit

LOCAL_TZ = ZoneInfo("Europe/Amsterdam")

# Burgernet's public figures (the product brief): about 10 % of actions solved directly
# through Burgernet, 14 % of those about missing persons. Shown beside ours for comparison.
PUBLIC_SOLVED_RATIO = 0.10
PUBLIC_SOLVED_RATIO_MISSING = 0.14
# "Missing persons" in the solved figure: the missing person, the missing child, and the
# AMBER Alert (a missing child in danger of life).
MISSING_TYPES: frozenset[str] = frozenset(
    {ActionType.MISSING_PERSON.value, ActionType.MISSING_CHILD.value, ActionType.AMBER_ALERT.value}
)
# A custom range longer than this is refused: the page and the export stay readable.
MAX_CUSTOM_DAYS = 3 * 366
PERIOD_KINDS = ("month", "quarter", "year", "custom")
_ANSWERED = ("connected", "overflowed")  # Call.outcome of a call a centralist picked up
_INBOUND = "inbound"


class ReportParameterError(DomainError):
    """A report was asked for with a period or scope that cannot be read; nothing was computed."""

    code: ClassVar[str] = "report.invalid"


class InvalidPeriod(ReportParameterError):
    code: ClassVar[str] = "report.invalid_period"


class InvalidScope(ReportParameterError):
    code: ClassVar[str] = "report.invalid_scope"


# --- period and scope ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole days in Europe/Amsterdam, ``first_day`` to ``last_day`` inclusive."""

    kind: str  # one of PERIOD_KINDS
    first_day: date
    last_day: date
    label: str  # "2026-11", "2026-Q4", "2026", "2026-11-03..2026-11-17"

    @property
    def start(self) -> datetime:
        """Midnight at the start of ``first_day`` in Amsterdam (aware)."""
        return datetime.combine(self.first_day, datetime.min.time(), LOCAL_TZ)

    @property
    def end(self) -> datetime:
        """Midnight after ``last_day`` in Amsterdam (aware, exclusive)."""
        return datetime.combine(self.last_day + timedelta(days=1), datetime.min.time(), LOCAL_TZ)

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(UTC)

    def months(self) -> list[str]:
        """The calendar months the period touches, "YYYY-MM", in order."""
        months: list[str] = []
        year, month = self.first_day.year, self.first_day.month
        while (year, month) <= (self.last_day.year, self.last_day.month):
            months.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return months


_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)
_YEAR = re.compile(r"^(\d{4})$")


def month_period(year: int, month: int) -> Period:
    if not 1 <= month <= 12 or not 2000 <= year <= 2100:
        raise InvalidPeriod(f"no such month: {year}-{month:02d}")
    last = (date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)) - timedelta(days=1)
    return Period("month", date(year, month, 1), last, f"{year:04d}-{month:02d}")


def parse_period(
    *,
    month: str | None = None,
    quarter: str | None = None,
    year: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
) -> Period:
    """Exactly one of: ``month`` "2026-11", ``quarter`` "2026-Q4", ``year`` "2026", or
    ``date_from`` and ``date_to`` (ISO dates, both included). InvalidPeriod otherwise."""
    given = [name for name, value in (("month", month), ("quarter", quarter), ("year", year)) if value]
    custom = date_from is not None or date_to is not None
    if len(given) + custom != 1:
        raise InvalidPeriod("give exactly one period: a month, a quarter, a year, or from and to")
    if month:
        match = _MONTH.match(month.strip())
        if not match:
            raise InvalidPeriod(f"month must look like 2026-11, not {month!r}")
        return month_period(int(match[1]), int(match[2]))
    if quarter:
        match = _QUARTER.match(quarter.strip())
        if not match:
            raise InvalidPeriod(f"quarter must look like 2026-Q4, not {quarter!r}")
        first_month = 3 * (int(match[2]) - 1) + 1
        first = month_period(int(match[1]), first_month)
        last = month_period(int(match[1]), first_month + 2)
        return Period("quarter", first.first_day, last.last_day, f"{match[1]}-Q{match[2]}")
    if year:
        match = _YEAR.match(year.strip())
        if not match or not 2000 <= int(match[1]) <= 2100:
            raise InvalidPeriod(f"year must look like 2026, not {year!r}")
        number = int(match[1])
        return Period("year", date(number, 1, 1), date(number, 12, 31), str(number))
    if not date_from or not date_to:
        raise InvalidPeriod("a custom period needs both from and to (ISO dates, 2026-11-03)")
    first_day, last_day = _iso_date(date_from, "from"), _iso_date(date_to, "to")
    if last_day < first_day:
        raise InvalidPeriod(f"to ({last_day}) is before from ({first_day})")
    if (last_day - first_day).days >= MAX_CUSTOM_DAYS:
        raise InvalidPeriod(f"a custom period may span at most {MAX_CUSTOM_DAYS} days")
    if first_day.year < 2000 or last_day.year > 2100:
        raise InvalidPeriod("dates must lie between 2000 and 2100")
    return Period("custom", first_day, last_day, f"{first_day.isoformat()}..{last_day.isoformat()}")


def _iso_date(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidPeriod(f"{name} must be an ISO date such as 2026-11-03, not {text!r}") from None


def current_month(now: datetime | None = None) -> Period:
    local = (now or datetime.now(UTC)).astimezone(LOCAL_TZ)
    return month_period(local.year, local.month)


@dataclass(frozen=True)
class Scope:
    region_code: str | None = None  # None: national
    action_type: str | None = None  # None: every type

    @property
    def label(self) -> str:
        parts = [self.region_code or "national"]
        if self.action_type:
            parts.append(self.action_type)
        return " / ".join(parts)


def parse_scope(region: str | None = None, action_type: str | None = None) -> Scope:
    """The scope named by a region code (any case) and an action type; both optional.
    Whether the region exists is checked by :meth:`ReportService.report`."""
    region_code = (region or "").strip().upper() or None
    type_value = (action_type or "").strip().lower() or None
    if region_code is not None and not re.fullmatch(r"[A-Z0-9]{1,8}", region_code):
        raise InvalidScope(f"region must be a region code such as MN, not {region!r}")
    if type_value is not None and type_value not in {t.value for t in ActionType}:
        raise InvalidScope(
            f"action type must be one of {', '.join(t.value for t in ActionType)}, not {action_type!r}"
        )
    return Scope(region_code, type_value)


# --- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    actions: int  # started in the period
    actions_alerted: int  # of which sent an alert broadcast
    actions_closed: int  # of which closed with an outcome
    solved_by_tip: int
    solved_ratio: float | None  # solved_by_tip / actions_closed
    missing_closed: int  # closed actions about missing persons (MISSING_TYPES)
    missing_solved_by_tip: int
    missing_solved_ratio: float | None
    alerted: int  # alert deliveries delivered (a participant reached on two channels counts twice)
    calls_about_actions: int  # inbound calls about the period's actions (action_facts)
    calls_without_action: int  # inbound calls in the period that no action covered (calls table)
    inbound_calls: int  # every inbound call that started in the period (calls table)
    calls_per_1000_alerted: float | None
    answered_within_20s: int
    answered_within_20s_ratio: float | None  # of calls_about_actions
    longest_wait_s: float | None
    tips: int
    callbacks_done: int
    sightings: int
    result_deliveries: int
    public_solved_ratio: float = PUBLIC_SOLVED_RATIO
    public_missing_solved_ratio: float = PUBLIC_SOLVED_RATIO_MISSING


@dataclass(frozen=True)
class MonthRow:
    month: str  # "2026-11"
    actions: int
    actions_closed: int
    solved_by_tip: int
    solved_ratio: float | None
    alerted: int
    calls_about_actions: int
    calls_without_action: int
    tips: int
    calls_per_1000_alerted: float | None


@dataclass(frozen=True)
class RegionRow:
    region_code: str
    region_name: str
    per_month: tuple[int, ...]  # actions started, aligned with Report.months
    total: int


@dataclass(frozen=True)
class OutcomeRow:
    outcome_kind: str
    actions: int
    share: float | None  # of the closed actions


@dataclass(frozen=True)
class ReachRow:
    channel: str
    recipients: int
    delivered: int
    failed: int
    opted_out: int


@dataclass(frozen=True)
class Reach:
    """Participants reached by each action's alert: delivered alert deliveries per action."""

    actions_alerted: int
    total_delivered: int
    mean_per_action: float | None
    median_per_action: float | None
    p90_per_action: float | None
    max_per_action: int | None
    by_channel: tuple[ReachRow, ...]


@dataclass(frozen=True)
class SpeedRow:
    """Alert speed on one channel, over the period's actions that alerted on it (seconds)."""

    channel: str
    actions: int
    t50_median: float | None
    t50_p90: float | None
    t90_median: float | None
    t90_p90: float | None
    t100_median: float | None
    t100_p90: float | None


@dataclass(frozen=True)
class HourRow:
    hour: int  # 0..23, Europe/Amsterdam
    calls: int
    about_an_action: int
    without_action: int


@dataclass(frozen=True)
class CentralistRow:
    endpoint: str
    name: str
    region_code: str
    team_calls: int  # calls about their actions that reached their turn in the team (≈ offered)
    answered_team: int  # of those, answered by them
    answered_pool: int  # answered by them for another team or region, or without an action
    answered_total: int
    answer_rate: float | None  # answered_team / team_calls


@dataclass(frozen=True)
class Report:
    period: Period
    scope: Scope
    generated_at: datetime
    months: tuple[str, ...]
    summary: Summary
    by_month: tuple[MonthRow, ...]
    by_region: tuple[RegionRow, ...]
    outcomes: tuple[OutcomeRow, ...]
    reach: Reach
    alert_speed: tuple[SpeedRow, ...]
    busiest_hours: tuple[HourRow, ...]
    centralists: tuple[CentralistRow, ...]
    regions: tuple[tuple[str, str], ...] = field(default=())  # every region (code, name), for pickers


def _ratio(part: int | float, whole: int | float) -> float | None:
    return part / whole if whole else None


def _per_1000(calls: int, alerted: int) -> float | None:
    return round(1000 * calls / alerted, 2) if alerted else None


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (NumPy's default, Excel's PERCENTILE.INC)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _local_month(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite returns naive UTC
    return aware.astimezone(LOCAL_TZ).strftime("%Y-%m")


@dataclass
class _MonthTally:
    actions: int = 0
    closed: int = 0
    solved: int = 0
    alerted: int = 0
    calls: int = 0
    calls_without_action: int = 0
    tips: int = 0


class ReportService:
    """Computes :class:`Report` from the facts and the calls table; read-only."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._call_hours = CallHours(sessions)

    def regions(self) -> list[tuple[str, str]]:
        with session_scope(self._sessions) as session:
            return [
                (code, name)
                for code, name in session.execute(select(Region.code, Region.name).order_by(Region.code))
            ]

    def report(
        self,
        period: Period,
        scope: Scope,
        *,
        now: datetime | None = None,
        actor: str | None = None,
        source: str = "cli",
        purpose: str = "page",
    ) -> Report:
        """The report; with an ``actor``, its reading is audited (who, which period and scope,
        as what: page, csv, xlsx, json). The figures are anonymous, but the answer rates name
        centralists, so who looked at them is on record."""
        self._call_hours.refresh()  # the calls since the worker's last refresh (usually none)
        with session_scope(self._sessions) as session:
            regions = [
                (str(code), str(name))
                for code, name in session.execute(select(Region.code, Region.name).order_by(Region.code))
            ]
            if scope.region_code is not None and scope.region_code not in dict(regions):
                raise InvalidScope(f"no region with code {scope.region_code}")
            dialect = session.get_bind().dialect.name
            facts = self._facts(session, period, scope)
            channels = self._channel_facts(session, period, scope)
            hourly = self._calls_by_hour(session, period, scope, dialect)
            centralists = self._centralists(session, period, scope)
            if actor is not None:
                record_audit(
                    session,
                    actor=actor,
                    verb="read",
                    entity="report",
                    entity_id=period.label,
                    detail={"scope": scope.label, "as": purpose, "actions": len(facts)},
                    source=source,
                )
        return _assemble(
            period, scope, now or datetime.now(UTC), regions, facts, channels, hourly, centralists
        )

    # --- queries: each returns plain tuples -------------------------------------------------------

    @staticmethod
    def _fact_filters(period: Period, scope: Scope) -> list[ColumnElement[bool]]:
        filters = [ActionFact.started_at >= period.start_utc, ActionFact.started_at < period.end_utc]
        if scope.region_code:
            filters.append(ActionFact.region_code == scope.region_code)
        if scope.action_type:
            filters.append(ActionFact.action_type == scope.action_type)
        return filters

    def _facts(self, session: Session, period: Period, scope: Scope) -> list[Any]:
        query = (
            select(
                ActionFact.action_id,
                ActionFact.action_type,
                ActionFact.region_code,
                ActionFact.started_at,
                # The action is the source of truth for how it ended; the facts copy it.
                func.coalesce(Action.outcome_kind, ActionFact.outcome_kind).label("outcome_kind"),
                func.coalesce(Action.closed_at, ActionFact.closed_at).label("closed_at"),
                ActionFact.calls_total,
                ActionFact.calls_answered_within_20s,
                ActionFact.longest_wait_s,
                ActionFact.tips,
                ActionFact.callbacks_done,
                ActionFact.sightings,
                ActionFact.result_deliveries,
            )
            .join(Action, Action.id == ActionFact.action_id)
            .where(*self._fact_filters(period, scope))
        )
        return list(session.execute(query))

    def _channel_facts(self, session: Session, period: Period, scope: Scope) -> list[Any]:
        query = (
            select(
                ActionChannelFact.action_id,
                ActionChannelFact.channel,
                ActionChannelFact.recipients,
                ActionChannelFact.delivered,
                ActionChannelFact.failed,
                ActionChannelFact.opted_out,
                ActionChannelFact.t50_s,
                ActionChannelFact.t90_s,
                ActionChannelFact.t100_s,
            )
            .join(ActionFact, ActionFact.action_id == ActionChannelFact.action_id)
            .where(ActionChannelFact.kind == "alert", *self._fact_filters(period, scope))
        )
        return list(session.execute(query))

    @staticmethod
    def _hour_filters(
        table: type[CallHourFact] | type[CallHourTeamFact], period: Period, scope: Scope
    ) -> list[Any]:
        """Inbound calls that started in the period (local midnights are whole UTC hours)."""
        filters: list[Any] = [
            table.kind == _INBOUND,
            table.hour_start >= period.start_utc,
            table.hour_start < period.end_utc,
        ]
        if scope.region_code:
            filters.append(table.region_code == scope.region_code)
        if scope.action_type:
            # A type narrows to calls about actions of that type: calls without one drop out.
            filters.append(table.action_type == scope.action_type)
        return filters

    def _calls_by_hour(self, session: Session, period: Period, scope: Scope, dialect: str) -> list[Any]:
        """Calls per UTC hour from the hourly summary (burgernet.call_hours)."""
        without = case((CallHourFact.action_type.is_(None), CallHourFact.calls), else_=0)
        query = (
            select(
                CallHourFact.hour_start,
                func.sum(CallHourFact.calls).label("calls"),
                func.sum(without).label("without_action"),
            )
            .where(*self._hour_filters(CallHourFact, period, scope))
            .group_by(CallHourFact.hour_start)
        )
        return [
            _HourBucket(_aware(hour), int(calls), int(unattributed or 0))
            for hour, calls, unattributed in session.execute(query)
        ]

    def _centralists(self, session: Session, period: Period, scope: Scope) -> dict[str, Any]:
        """Calls answered per centralist, and per team member the calls offered and answered.

        The team rings one by one in team order (routing.decide): a call answered by the member
        at position p reached members 0..p only; one nobody on the team answered (the region
        pool did, or no one) reached every member. Whether a member was skipped as busy or
        offline is not recorded, so "offered" is an upper bound. Both are summed per hour by
        burgernet.call_hours, from the team as it stood when the hour was last recomputed.
        """
        answered = session.execute(
            select(CallHourFact.centralist_id, func.sum(CallHourFact.calls))
            .where(
                *self._hour_filters(CallHourFact, period, scope),
                CallHourFact.outcome.in_(_ANSWERED),
                CallHourFact.centralist_id.is_not(None),
            )
            .group_by(CallHourFact.centralist_id)
        ).all()
        team = session.execute(
            select(
                CallHourTeamFact.centralist_id,
                func.sum(CallHourTeamFact.offered),
                func.sum(CallHourTeamFact.answered),
            )
            .where(*self._hour_filters(CallHourTeamFact, period, scope))
            .group_by(CallHourTeamFact.centralist_id)
        ).all()
        people = session.execute(
            select(Centralist.id, Centralist.sip_endpoint, Centralist.name, Region.code).join(
                Region, Region.id == Centralist.region_id
            )
        ).all()
        return {
            "answered": [(cid, int(n)) for cid, n in answered if n],
            "team": [(cid, int(n), int(mine or 0)) for cid, n, mine in team if n],
            "people": people,
        }


class _HourBucket(NamedTuple):
    bucket: datetime  # the UTC hour
    calls: int
    without_action: int


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite returns naive UTC


def _assemble(
    period: Period,
    scope: Scope,
    now: datetime,
    regions: list[tuple[str, str]],
    facts: list[Any],
    channels: list[Any],
    hourly: list[Any],
    centralists: dict[str, Any],
) -> Report:
    months = period.months()
    tally: dict[str, _MonthTally] = {month: _MonthTally() for month in months}
    per_region: dict[str, Counter[str]] = defaultdict(Counter)
    outcomes: Counter[str] = Counter()
    month_of: dict[int, str] = {}
    missing_closed = missing_solved = 0
    calls = within_20s = tips = callbacks = sightings = results = 0
    longest: float | None = None
    solved_kind = OutcomeKind.SOLVED_BY_TIP.value
    for (
        action_id,
        action_type,
        region_code,
        started_at,
        outcome_kind,
        _closed_at,
        calls_total,
        answered_within_20s,
        longest_wait_s,
        action_tips,
        callbacks_done,
        action_sightings,
        result_deliveries,
    ) in facts:  # tuples, not attribute look-ups: a year nationally is ~48,000 rows
        month = _local_month(started_at)
        month_of[action_id] = month
        entry = tally.setdefault(month, _MonthTally())
        entry.actions += 1
        entry.calls += calls_total
        entry.tips += action_tips
        per_region[region_code][month] += 1
        if outcome_kind:
            outcomes[outcome_kind] += 1
            entry.closed += 1
            solved = outcome_kind == solved_kind
            entry.solved += solved
            if action_type in MISSING_TYPES:
                missing_closed += 1
                missing_solved += solved
        calls += calls_total
        within_20s += answered_within_20s
        tips += action_tips
        callbacks += callbacks_done
        sightings += action_sightings
        results += result_deliveries
        if longest_wait_s is not None:
            longest = max(longest or 0.0, float(longest_wait_s))

    # Reach and speed, per action and channel (alert broadcasts only).
    reached: Counter[int] = Counter()
    by_channel: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    speeds: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"t50": [], "t90": [], "t100": []})
    channel_actions: Counter[str] = Counter()
    for action_id, channel, recipients, delivered, failed, opted_out, t50, t90, t100 in channels:
        reached[action_id] += delivered
        totals = by_channel[channel]
        totals[0] += recipients
        totals[1] += delivered
        totals[2] += failed
        totals[3] += opted_out
        channel_actions[channel] += 1
        times = speeds[channel]
        if t50 is not None:
            times["t50"].append(float(t50))
        if t90 is not None:
            times["t90"].append(float(t90))
        if t100 is not None:
            times["t100"].append(float(t100))
    for action_id, delivered in reached.items():
        if action_id in month_of:
            tally[month_of[action_id]].alerted += delivered
    per_action = list(reached.values())
    alerted = sum(per_action)

    # Calls by the local hour of day and local month (from UTC hour buckets).
    hours = [[0, 0] for _ in range(24)]  # [calls, without action]
    inbound = without_action = 0
    for row in hourly:
        bucket = row.bucket  # the UTC hour: a datetime, or its text "YYYY-MM-DD HH"
        utc_hour = bucket if isinstance(bucket, datetime) else datetime.strptime(bucket, "%Y-%m-%d %H")
        moment = _aware(utc_hour).astimezone(LOCAL_TZ)
        count, unattributed = int(row.calls), int(row.without_action or 0)
        hours[moment.hour][0] += count
        hours[moment.hour][1] += unattributed
        inbound += count
        without_action += unattributed
        tally.setdefault(moment.strftime("%Y-%m"), _MonthTally()).calls_without_action += unattributed

    closed = sum(outcomes.values())
    solved_total = outcomes.get(OutcomeKind.SOLVED_BY_TIP.value, 0)
    summary = Summary(
        actions=len(facts),
        actions_alerted=len(per_action),
        actions_closed=closed,
        solved_by_tip=solved_total,
        solved_ratio=_ratio(solved_total, closed),
        missing_closed=missing_closed,
        missing_solved_by_tip=missing_solved,
        missing_solved_ratio=_ratio(missing_solved, missing_closed),
        alerted=alerted,
        calls_about_actions=calls,
        calls_without_action=without_action,
        inbound_calls=inbound,
        calls_per_1000_alerted=_per_1000(calls, alerted),
        answered_within_20s=within_20s,
        answered_within_20s_ratio=_ratio(within_20s, calls),
        longest_wait_s=longest,
        tips=tips,
        callbacks_done=callbacks,
        sightings=sightings,
        result_deliveries=results,
    )
    by_month = tuple(
        MonthRow(
            month=month,
            actions=entry.actions,
            actions_closed=entry.closed,
            solved_by_tip=entry.solved,
            solved_ratio=_ratio(entry.solved, entry.closed),
            alerted=entry.alerted,
            calls_about_actions=entry.calls,
            calls_without_action=entry.calls_without_action,
            tips=entry.tips,
            calls_per_1000_alerted=_per_1000(entry.calls, entry.alerted),
        )
        for month, entry in sorted(tally.items())
        if month in months
    )
    shown_regions = [(c, n) for c, n in regions if scope.region_code in (None, c)]
    by_region = tuple(
        RegionRow(code, name, tuple(per_region[code][m] for m in months), sum(per_region[code].values()))
        for code, name in shown_regions
    )
    outcome_rows = tuple(
        OutcomeRow(kind.value, outcomes.get(kind.value, 0), _ratio(outcomes.get(kind.value, 0), closed))
        for kind in OutcomeKind
    )
    reach = Reach(
        actions_alerted=len(per_action),
        total_delivered=alerted,
        mean_per_action=round(alerted / len(per_action), 1) if per_action else None,
        median_per_action=_median(per_action),
        p90_per_action=percentile(per_action, 0.9),
        max_per_action=max(per_action) if per_action else None,
        by_channel=tuple(
            ReachRow(channel, *by_channel[channel]) for channel in _channel_order(by_channel.keys())
        ),
    )
    alert_speed = tuple(
        SpeedRow(
            channel=channel,
            actions=channel_actions[channel],
            t50_median=_median(speeds[channel]["t50"]),
            t50_p90=percentile(speeds[channel]["t50"], 0.9),
            t90_median=_median(speeds[channel]["t90"]),
            t90_p90=percentile(speeds[channel]["t90"], 0.9),
            t100_median=_median(speeds[channel]["t100"]),
            t100_p90=percentile(speeds[channel]["t100"], 0.9),
        )
        for channel in _channel_order(channel_actions.keys())
    )
    busiest = tuple(HourRow(hour, calls_, calls_ - none, none) for hour, (calls_, none) in enumerate(hours))
    return Report(
        period=period,
        scope=scope,
        generated_at=now,
        months=tuple(months),
        summary=summary,
        by_month=by_month,
        by_region=by_region,
        outcomes=outcome_rows,
        reach=reach,
        alert_speed=alert_speed,
        busiest_hours=busiest,
        centralists=_centralist_rows(centralists),
        regions=tuple(regions),
    )


def _channel_order(channels: Iterable[str]) -> list[str]:
    known = [c.value for c in Channel]
    return sorted(channels, key=lambda c: (known.index(c) if c in known else len(known), c))


def _centralist_rows(data: dict[str, Any]) -> tuple[CentralistRow, ...]:
    people = {row[0]: (str(row[1]), str(row[2]), str(row[3])) for row in data["people"]}
    answered = {cid: int(count) for cid, count in data["answered"]}
    team = {cid: (int(count), int(mine or 0)) for cid, count, mine in data["team"]}
    rows = []
    for cid in set(answered) | set(team):
        if cid not in people:
            continue  # a centralist removed since (their calls keep no name)
        endpoint, name, region = people[cid]
        team_calls, answered_team = team.get(cid, (0, 0))
        total = answered.get(cid, 0)
        rows.append(
            CentralistRow(
                endpoint=endpoint,
                name=name,
                region_code=region,
                team_calls=team_calls,
                answered_team=answered_team,
                answered_pool=total - answered_team,
                answered_total=total,
                answer_rate=_ratio(answered_team, team_calls),
            )
        )
    return tuple(sorted(rows, key=lambda r: (r.region_code, r.endpoint)))


# --- exports: the same tables for CSV, XLSX and JSON ----------------------------------------------

Cell = str | int | float | None


@dataclass(frozen=True)
class ReportTable:
    name: str  # short, also the XLSX sheet name (at most 31 characters)
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def report_tables(report: Report) -> list[ReportTable]:
    """Every table of the report, in the order the page shows them."""
    s = report.summary
    summary_rows: list[tuple[Cell, ...]] = [
        ("period", report.period.label),
        ("period_start", report.period.start.isoformat()),
        ("period_end", report.period.end.isoformat()),
        ("scope", report.scope.label),
        ("generated_at", report.generated_at.astimezone(LOCAL_TZ).isoformat(timespec="seconds")),
    ]
    for key, value in asdict(s).items():
        summary_rows.append((key, _round(value, 4) if isinstance(value, float) else value))
    return [
        ReportTable("summary", "Summary", ("figure", "value"), tuple(summary_rows)),
        ReportTable(
            "by_month",
            "Trends per month",
            (
                "month",
                "actions",
                "actions_closed",
                "solved_by_tip",
                "solved_ratio",
                "alerted",
                "calls_about_actions",
                "calls_without_action",
                "tips",
                "calls_per_1000_alerted",
            ),
            tuple(
                (
                    r.month,
                    r.actions,
                    r.actions_closed,
                    r.solved_by_tip,
                    _round(r.solved_ratio, 4),
                    r.alerted,
                    r.calls_about_actions,
                    r.calls_without_action,
                    r.tips,
                    r.calls_per_1000_alerted,
                )
                for r in report.by_month
            ),
        ),
        ReportTable(
            "by_region",
            "Actions per month and region",
            ("region_code", "region_name", *report.months, "total"),
            tuple((r.region_code, r.region_name, *r.per_month, r.total) for r in report.by_region),
        ),
        ReportTable(
            "outcomes",
            "Outcomes of the closed actions",
            ("outcome_kind", "actions", "share"),
            tuple((r.outcome_kind, r.actions, _round(r.share, 4)) for r in report.outcomes),
        ),
        ReportTable(
            "reach",
            "Participants reached by the alerts, per channel",
            ("channel", "recipients", "delivered", "failed", "opted_out"),
            tuple(
                (r.channel, r.recipients, r.delivered, r.failed, r.opted_out) for r in report.reach.by_channel
            ),
        ),
        ReportTable(
            "reach_per_action",
            "Participants reached per action",
            ("figure", "value"),
            (
                ("actions_alerted", report.reach.actions_alerted),
                ("total_delivered", report.reach.total_delivered),
                ("mean_per_action", report.reach.mean_per_action),
                ("median_per_action", report.reach.median_per_action),
                ("p90_per_action", _round(report.reach.p90_per_action, 1)),
                ("max_per_action", report.reach.max_per_action),
            ),
        ),
        ReportTable(
            "alert_speed",
            "Alert speed (seconds to 50/90/100 % handled; median and p90 over actions)",
            (
                "channel",
                "actions",
                "t50_median",
                "t50_p90",
                "t90_median",
                "t90_p90",
                "t100_median",
                "t100_p90",
            ),
            tuple(
                (
                    r.channel,
                    r.actions,
                    _round(r.t50_median, 1),
                    _round(r.t50_p90, 1),
                    _round(r.t90_median, 1),
                    _round(r.t90_p90, 1),
                    _round(r.t100_median, 1),
                    _round(r.t100_p90, 1),
                )
                for r in report.alert_speed
            ),
        ),
        ReportTable(
            "busiest_hours",
            "Calls to the free number by hour of day (Europe/Amsterdam)",
            ("hour", "calls", "about_an_action", "without_action"),
            tuple((r.hour, r.calls, r.about_an_action, r.without_action) for r in report.busiest_hours),
        ),
        ReportTable(
            "centralists",
            "Centralists' answer rates",
            (
                "endpoint",
                "name",
                "region_code",
                "team_calls",
                "answered_team",
                "answered_pool",
                "answered_total",
                "answer_rate",
            ),
            tuple(
                (
                    r.endpoint,
                    r.name,
                    r.region_code,
                    r.team_calls,
                    r.answered_team,
                    r.answered_pool,
                    r.answered_total,
                    _round(r.answer_rate, 4),
                )
                for r in report.centralists
            ),
        ),
    ]


def to_csv(report: Report) -> str:
    """One section per table: a ``# name: title`` line, the header row, the rows, a blank line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for table in report_tables(report):
        writer.writerow([f"# {table.name}: {table.title}"])
        writer.writerow(table.headers)
        writer.writerows(["" if cell is None else cell for cell in row] for row in table.rows)
        writer.writerow([])
    return out.getvalue()


def parse_csv(text: str) -> dict[str, list[dict[str, str]]]:
    """The tables of :func:`to_csv` back, by name (for tests and scripts)."""
    tables: dict[str, list[dict[str, str]]] = {}
    name: str | None = None
    headers: list[str] | None = None
    for row in csv.reader(io.StringIO(text)):
        if not row:
            name, headers = None, None
        elif name is None and row[0].startswith("# "):
            name = row[0][2:].split(":", 1)[0]
            tables[name] = []
        elif name is not None and headers is None:
            headers = row
        elif name is not None and headers is not None:
            tables[name].append(dict(zip(headers, row, strict=True)))
    return tables


def to_xlsx(report: Report) -> bytes:
    """A workbook with one sheet per table (openpyxl); numbers stay numbers."""
    from openpyxl import Workbook  # imported here: only exports need it
    from openpyxl.styles import Font

    workbook = Workbook()
    for sheet in list(workbook.worksheets):  # the empty default sheet
        workbook.remove(sheet)
    for table in report_tables(report):
        sheet = workbook.create_sheet(table.name[:31])
        sheet.append([table.title])
        sheet["A1"].font = Font(bold=True)
        sheet.append(list(table.headers))
        for cell in sheet[2]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append(list(row))
        sheet.column_dimensions["A"].width = 26
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(LOCAL_TZ).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return value


def to_json(report: Report) -> dict[str, Any]:
    """The report as a JSON object; times in Europe/Amsterdam with their offset (ISO 8601)."""
    document = {key: _json_value(value) for key, value in asdict(report).items() if key != "regions"}
    document["period"] = {
        "kind": report.period.kind,
        "label": report.period.label,
        "first_day": report.period.first_day.isoformat(),
        "last_day": report.period.last_day.isoformat(),
        "start": report.period.start.isoformat(),
        "end": report.period.end.isoformat(),
    }
    document["scope"] = {
        "region": report.scope.region_code,
        "action_type": report.scope.action_type,
        "label": report.scope.label,
    }
    return document

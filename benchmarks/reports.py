"""Time to compute the management report over a year of history, on SQLite and PostgreSQL.

Seeds a year of demo history (:mod:`composition.demo_history`: closed actions, their
``action_facts`` and ``action_channel_facts``, and the calls table) at N actions a month
nationally (4,000 as in the product brief: ~48,000 actions and ~1.4 million calls; --quick
300), then times :meth:`burgernet.reports.ReportService.report` for November (a month) and
for the whole year, nationally, several times each, two ways:

- ``report``: the service as shipped: the per-action facts read as rows (indexed on
  ``action_facts.started_at``), the calls per hour from the summary ``call_hour_facts`` and
  ``call_hour_team_facts`` (indexed on ``hour_start``; at most a few dozen rows an hour,
  whatever the number of calls), bucketed into Amsterdam hours in Python;
- ``calls_table``: the report as it was before that summary, reading the calls table twice
  (grouped in SQL by UTC hour, and by action and answerer for the answer rates), measured in
  the same run as the baseline.

Also measured: rebuilding the summary from nothing over the whole history (what migration
0015 does once on an upgraded installation).

Both must give the same figures (summary, months, busiest hours, answer rates). Prints a table
on stderr and one JSON object last on stdout. Goals (full scale): p95 < 1 s for a
month, < 3 s for a year.

    python benchmarks/reports.py [--quick] [--per-month N] [--runs N] [--skip-postgres | --skip-sqlite]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, and_, case, delete, func, select, text
from sqlalchemy.orm import Session, aliased

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: testbed

from burgernet import db
from burgernet.call_hours import CallHours
from burgernet.db import session_scope
from burgernet.models import Action, ActionCentralist, Call, CallHourFact, CallHourRefresh, Centralist, Region
from burgernet.reports import Period, Report, ReportService, Scope, parse_period, parse_scope
from burgernet.settings import load_settings
from composition import demo
from composition.context import Context
from composition.demo_history import seed_history

GOAL_MONTH_S = 1.0
GOAL_YEAR_S = 3.0
# History ends here, so 2026 is a whole year of it.
HISTORY_END = datetime(2027, 1, 1, tzinfo=UTC)


def seeded(url: str, workdir: Path, per_month: int) -> tuple[Context, dict[str, int]]:
    db.upgrade(url)
    context = Context(load_settings(data_dir=workdir, database={"url": url}))
    rng = np.random.default_rng(15)
    with session_scope(context.sessions) as session:
        demo.seed_regions(session, rng)
    with session_scope(context.sessions) as session:
        history = seed_history(session, rng, months=12, per_month=per_month, now=HISTORY_END)
    if url.startswith("postgresql"):
        with context.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    return context, {"actions": history.actions, "calls": history.calls}


class CallsTableReportService(ReportService):
    """The report as it was before ``call_hour_facts``: the busiest hours and the answer rates
    read from the calls table itself (grouped in SQL by UTC hour, and by action and answerer)."""

    @staticmethod
    def _call_filters(period: Period, scope: Scope) -> list[ColumnElement[bool]]:
        filters = [
            Call.kind == "inbound",
            Call.started_at >= period.start_utc,
            Call.started_at < period.end_utc,
        ]
        if scope.region_code:
            filters.append(Call.region_code == scope.region_code)
        if scope.action_type:
            filters.append(
                Call.action_id.in_(select(Action.id).where(Action.action_type == scope.action_type))
            )
        return filters

    def _calls_by_hour(self, session: Session, period: Period, scope: Scope, dialect: str) -> list[Any]:
        if dialect == "postgresql":
            bucket = func.to_char(func.timezone("UTC", Call.started_at), "YYYY-MM-DD HH24").label("bucket")
        else:
            bucket = func.strftime("%Y-%m-%d %H", Call.started_at).label("bucket")
        without = case((Call.action_id.is_(None), 1), else_=0)
        query = (
            select(bucket, func.count().label("calls"), func.sum(without).label("without_action"))
            .where(*self._call_filters(period, scope))
            .group_by(bucket)
        )
        return list(session.execute(query))

    def _centralists(self, session: Session, period: Period, scope: Scope) -> dict[str, Any]:
        answered_flag = case((Call.outcome.in_(("connected", "overflowed")), 1), else_=0)
        groups = (
            select(
                Call.action_id.label("action_id"),
                Call.centralist_id.label("answerer"),
                func.count().label("calls"),
                func.sum(answered_flag).label("answered"),
            )
            .where(*self._call_filters(period, scope))
            .group_by(Call.action_id, Call.centralist_id)
            .subquery()
        )
        member = aliased(ActionCentralist)
        answerer = aliased(ActionCentralist)
        rows = session.execute(
            select(
                groups.c.action_id,
                groups.c.answerer,
                groups.c.calls,
                groups.c.answered,
                member.centralist_id,
                member.position,
                answerer.position,
            )
            .select_from(groups)
            .outerjoin(member, member.action_id == groups.c.action_id)
            .outerjoin(
                answerer,
                and_(answerer.action_id == groups.c.action_id, answerer.centralist_id == groups.c.answerer),
            )
        ).all()
        answered: Counter[int] = Counter()
        offered: Counter[int] = Counter()
        answered_team: Counter[int] = Counter()
        counted: set[tuple[int | None, int | None]] = set()
        for action_id, by, calls, picked_up, member_id, member_position, by_position in rows:
            if by is not None and (action_id, by) not in counted:
                counted.add((action_id, by))
                answered[by] += int(picked_up or 0)
            if member_id is None:
                continue
            if by_position is None or member_position <= by_position:
                offered[member_id] += int(calls)
                if member_id == by:
                    answered_team[member_id] += int(picked_up or 0)
        people = session.execute(
            select(Centralist.id, Centralist.sip_endpoint, Centralist.name, Region.code).join(
                Region, Region.id == Centralist.region_id
            )
        ).all()
        return {
            "answered": [(cid, n) for cid, n in answered.items() if n],
            "team": [(cid, n, answered_team[cid]) for cid, n in offered.items()],
            "people": people,
        }


def rebuild_seconds(context: Context) -> float:
    """A summary built from nothing over the whole history (what migration 0015 does once)."""
    with session_scope(context.sessions) as session:
        session.execute(delete(CallHourRefresh))
    started = time.perf_counter()
    CallHours(context.sessions).refresh()
    return round(time.perf_counter() - started, 2)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def same_figures(one: Report, other: Report) -> bool:
    return (one.summary, one.by_month, one.busiest_hours, one.centralists) == (
        other.summary,
        other.by_month,
        other.busiest_hours,
        other.centralists,
    )


def measure(context: Context, runs: int) -> dict[str, Any]:
    service = ReportService(context.sessions)
    before_service = CallsTableReportService(context.sessions)
    scope = parse_scope()
    result: dict[str, Any] = {"summary_rebuild_s": rebuild_seconds(context)}
    for name, period in (("month", parse_period(month="2026-11")), ("year", parse_period(year="2026"))):
        timings: list[float] = []
        before: list[float] = []
        for _ in range(runs):
            started = time.perf_counter()
            report = service.report(period, scope)
            timings.append(time.perf_counter() - started)
            started = time.perf_counter()
            baseline = before_service.report(period, scope)
            before.append(time.perf_counter() - started)
        result[name] = {
            "p50_s": round(percentile(timings, 0.5), 3),
            "p95_s": round(percentile(timings, 0.95), 3),
            "calls_table_p50_s": round(percentile(before, 0.5), 3),
            "calls_table_p95_s": round(percentile(before, 0.95), 3),
            "actions": report.summary.actions,
            "inbound_calls": report.summary.inbound_calls,
            "matches_calls_table": same_figures(report, baseline),
        }
    with session_scope(context.sessions) as session:
        result["calls_in_table"] = int(session.scalar(select(func.count()).select_from(Call)) or 0)
        result["call_hour_facts_rows"] = int(
            session.scalar(select(func.count()).select_from(CallHourFact)) or 0
        )
    return result


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{'database':<11} {'period':<6} {'p50 s':>7} {'p95 s':>7} {'calls-table p95 s':>18} {'same':>5}"
    ]
    for database in ("sqlite", "postgresql"):
        if database not in result:
            continue
        for period in ("month", "year"):
            m = result[database][period]
            lines.append(
                f"{database:<11} {period:<6} {m['p50_s']:>7.3f} {m['p95_s']:>7.3f} "
                f"{m['calls_table_p95_s']:>18.3f} {'yes' if m['matches_calls_table'] else 'NO':>5}"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="300 actions a month instead of 4,000")
    parser.add_argument("--per-month", type=int, default=None, help="actions a month nationally")
    parser.add_argument(
        "--runs", type=int, default=None, help="timed reports per period (default 10; quick 5)"
    )
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only (a long full run in two)")
    args = parser.parse_args()
    per_month = args.per_month or (300 if args.quick else 4000)
    runs = args.runs or (5 if args.quick else 10)
    workdir = Path(tempfile.mkdtemp(prefix="bn-bench-reports-"))
    result: dict[str, Any] = {
        "benchmark": "reports",
        "quick": args.quick,
        "per_month": per_month,
        "runs": runs,
    }
    try:
        if not args.skip_sqlite:
            started = time.perf_counter()
            sqlite, seeded_counts = seeded(f"sqlite:///{workdir / 'bench.db'}", workdir, per_month)
            result.update(seeded_counts)
            print(f"SQLite seeded in {time.perf_counter() - started:.0f} s: {seeded_counts}", file=sys.stderr)
            result["sqlite"] = measure(sqlite, runs)
            sqlite.close()
        if not args.skip_postgres:
            from testbed.ports import free_port
            from testbed.postgres import ManagedPostgres

            pg_dir = Path(tempfile.mkdtemp(prefix="bn-bench-pg-"))
            server = ManagedPostgres(pg_dir, free_port())
            server.start()
            try:
                started = time.perf_counter()
                pg, pg_counts = seeded(server.url, workdir, per_month)
                result.update(pg_counts)
                print(f"PostgreSQL seeded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
                result["postgresql"] = measure(pg, runs)
                pg.close()
            finally:
                server.stop()
                shutil.rmtree(pg_dir, ignore_errors=True)
        measured = [result[name] for name in ("sqlite", "postgresql") if name in result]
        result["goal_month_p95_s"] = GOAL_MONTH_S
        result["goal_year_p95_s"] = GOAL_YEAR_S
        result["goal_met"] = all(
            m["month"]["p95_s"] < GOAL_MONTH_S
            and m["year"]["p95_s"] < GOAL_YEAR_S
            and m["month"]["matches_calls_table"]
            and m["year"]["matches_calls_table"]
            for m in measured
        )
        print(table(result), file=sys.stderr)
        print(json.dumps(result))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

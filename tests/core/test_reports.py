"""Management reports: figures checked against a small history computed by hand, on SQLite and
PostgreSQL; periods (month, quarter, year, custom) in Europe/Amsterdam, across DST; scopes."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from openpyxl import load_workbook
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from burgernet.call_hours import CallHours, hour_of
from burgernet.db import session_scope
from burgernet.models import (
    Action,
    ActionCentralist,
    ActionChannelFact,
    ActionFact,
    Base,
    Call,
    CallHourFact,
    CallHourRefresh,
    CallHourTeamFact,
    Centralist,
    Region,
)
from burgernet.reports import (
    InvalidPeriod,
    InvalidScope,
    ReportService,
    parse_csv,
    parse_period,
    parse_scope,
    percentile,
    to_csv,
    to_json,
    to_xlsx,
)
from burgernet.retention import Retention
from composition.context import Context
from composition.redis_server import ManagedRedis
from testbed.postgres import ManagedPostgres
from tests.conftest import postgres_context

AMS = ZoneInfo("Europe/Amsterdam")
NOVEMBER = parse_period(month="2026-11")


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _ams(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=AMS).astimezone(UTC)


def _action(
    session: Session,
    regions: dict[str, int],
    centralists: dict[str, int],
    *,
    action_type: str,
    region: str,
    started: datetime,
    outcome_kind: str | None,
    team: list[str],
    calls: int = 0,
    within_20s: int = 0,
    tips: int = 0,
    longest: float | None = None,
    channels: tuple[tuple[str, int, int, int, int, float | None, float | None, float | None], ...] = (),
) -> int:
    closed = started + timedelta(days=1) if outcome_kind else None
    action = Action(
        action_type=action_type,
        title="report test",
        region_id=regions[region],
        area_kind="postcodes",
        postcodes="3511",
        status="closed" if outcome_kind else "active",
        created_at=started,
        started_at=started,
        closed_at=closed,
        outcome_kind=outcome_kind,
    )
    session.add(action)
    session.flush()
    for position, endpoint in enumerate(team):
        session.add(
            ActionCentralist(action_id=action.id, centralist_id=centralists[endpoint], position=position)
        )
    session.add(
        ActionFact(
            action_id=action.id,
            action_type=action_type,
            region_code=region,
            urgency="urgent",
            started_at=started,
            closed_at=closed,
            outcome_kind=outcome_kind,
            calls_total=calls,
            calls_answered_within_20s=within_20s,
            longest_wait_s=longest,
            tips=tips,
            updated_at=started,
        )
    )
    for channel, recipients, delivered, failed, opted_out, t50, t90, t100 in channels:
        session.add(
            ActionChannelFact(
                action_id=action.id,
                channel=channel,
                kind="alert",
                recipients=recipients,
                delivered=delivered,
                failed=failed,
                opted_out=opted_out,
                t50_s=t50,
                t90_s=t90,
                t100_s=t100,
                updated_at=started,
            )
        )
    # A result broadcast's figures never count as reach or alert speed.
    session.add(
        ActionChannelFact(
            action_id=action.id,
            channel="sms",
            kind="result",
            recipients=999,
            delivered=999,
            updated_at=started,
        )
    )
    return action.id


def build_history(sessions: sessionmaker[Session]) -> dict[str, int]:
    """The hand-computed history the figures below are checked against (see each comment)."""
    with session_scope(sessions) as session:
        regions = {code: rid for code, rid in session.execute(select(Region.code, Region.id))}
        centralists = {e: cid for e, cid in session.execute(select(Centralist.sip_endpoint, Centralist.id))}
        ids = {
            # 00:30 on 1 November in Amsterdam is still 31 October in UTC: November's.
            "a1": _action(
                session,
                regions,
                centralists,
                action_type="missing_child",
                region="MN",
                started=_ams("2026-11-01T00:30"),
                outcome_kind="solved_by_tip",
                team=["c-mn-1", "c-mn-2"],
                calls=10,
                within_20s=8,
                tips=2,
                longest=30.0,
                channels=(
                    ("voice", 120, 100, 15, 5, 10.0, 40.0, 90.0),
                    ("sms", 200, 200, 0, 0, 2.0, 5.0, 8.0),
                ),
            ),
            "a2": _action(
                session,
                regions,
                centralists,
                action_type="vehicle",
                region="MN",
                started=_utc("2026-11-15T12:00"),
                outcome_kind="not_found",
                team=["c-mn-3"],
                calls=4,
                within_20s=4,
                channels=(("voice", 60, 50, 10, 0, 20.0, 60.0, None),),
            ),
            # 23:30 UTC on 30 November is 00:30 on 1 December in Amsterdam: not November's.
            "a3": _action(
                session,
                regions,
                centralists,
                action_type="missing_person",
                region="AM",
                started=_utc("2026-11-30T23:30"),
                outcome_kind="solved_by_tip",
                team=["c-am-1"],
                calls=50,
                channels=(("sms", 1000, 1000, 0, 0, 1.0, 2.0, 3.0),),
            ),
            # 22:30 UTC on 31 October is 23:30 in Amsterdam (CET since 25 October): October's.
            "a4": _action(
                session,
                regions,
                centralists,
                action_type="suspect",
                region="RO",
                started=_utc("2026-10-31T22:30"),
                outcome_kind="not_found",
                team=["c-ro-1"],
                calls=7,
            ),
            "a5": _action(
                session,
                regions,
                centralists,
                action_type="missing_person",
                region="RO",
                started=_utc("2026-11-20T10:00"),
                outcome_kind="found_otherwise",
                team=["c-ro-1"],
                calls=6,
                within_20s=2,
                tips=1,
                longest=50.0,
                channels=(("sms", 300, 300, 0, 0, 4.0, 9.0, 20.0),),
            ),
            "a6": _action(
                session,
                regions,
                centralists,
                action_type="information",
                region="MN",
                started=_utc("2026-11-21T09:00"),
                outcome_kind=None,
                team=["c-mn-3"],
            ),
        }
        calls = [
            # (started UTC, action, region, answered by, outcome, kind)
            ("2026-10-31T23:45", "a1", "MN", "c-mn-1", "connected", "inbound"),  # 00:45 Amsterdam, 1 Nov
            ("2026-11-02T08:10", "a1", "MN", "c-mn-2", "connected", "inbound"),  # 09:10
            ("2026-11-02T08:20", "a1", "MN", None, "abandoned", "inbound"),  # 09:20
            ("2026-11-03T17:05", None, "MN", "c-mn-3", "connected", "inbound"),  # 18:05, no action
            ("2026-11-04T17:30", None, "AM", None, "no_action", "inbound"),  # 18:30, no action
            ("2026-11-15T13:00", "a2", "MN", "c-mn-1", "overflowed", "inbound"),  # 14:00, the pool
            ("2026-10-31T22:50", "a4", "RO", "c-ro-1", "connected", "inbound"),  # 23:50 on 31 Oct
            ("2026-11-02T08:11", "a1", "MN", "c-mn-2", "connected", "transfer"),  # not a call in
        ]
        for number, (started, action, region, endpoint, outcome, kind) in enumerate(calls):
            session.add(
                Call(
                    unique_id=f"report-{number}",
                    kind=kind,
                    action_id=ids[action] if action else None,
                    region_code=region,
                    centralist_id=centralists[endpoint] if endpoint else None,
                    started_at=_utc(started),
                    outcome=outcome,
                )
            )
    return ids


def _check_national_november(sessions: sessionmaker[Session]) -> None:
    report = ReportService(sessions).report(NOVEMBER, parse_scope())
    s = report.summary
    # a1, a2, a5, a6 started in November (Amsterdam); a3 and a4 did not.
    assert (s.actions, s.actions_closed, s.solved_by_tip) == (4, 3, 1)
    assert s.solved_ratio == pytest.approx(1 / 3)
    # Missing persons: a1 (child, solved by a tip) and a5 (found otherwise).
    assert (s.missing_closed, s.missing_solved_by_tip, s.missing_solved_ratio) == (2, 1, 0.5)
    # Alert deliveries delivered: a1 100 + 200, a2 50, a5 300 (results not counted).
    assert (s.alerted, s.actions_alerted) == (650, 3)
    assert (s.calls_about_actions, s.tips, s.answered_within_20s) == (20, 3, 14)
    assert s.calls_per_1000_alerted == pytest.approx(30.77)
    assert s.answered_within_20s_ratio == pytest.approx(0.7)
    assert s.longest_wait_s == 50.0
    # Inbound calls that started in November (Amsterdam): 6; two without an action.
    assert (s.inbound_calls, s.calls_without_action) == (6, 2)

    assert report.months == ("2026-11",)
    (month,) = report.by_month
    assert (month.actions, month.alerted, month.calls_about_actions, month.calls_without_action) == (
        4,
        650,
        20,
        2,
    )
    regions = {row.region_code: row.total for row in report.by_region}
    assert len(regions) == 10 and (regions["MN"], regions["RO"], regions["AM"]) == (3, 1, 0)
    outcomes = {row.outcome_kind: row.actions for row in report.outcomes}
    assert outcomes == {"solved_by_tip": 1, "found_otherwise": 1, "not_found": 1, "cancelled": 0, "other": 0}

    reach = report.reach
    assert (reach.median_per_action, reach.max_per_action, reach.mean_per_action) == (300, 300, 216.7)
    assert {r.channel: (r.recipients, r.delivered, r.failed, r.opted_out) for r in reach.by_channel} == {
        "voice": (180, 150, 25, 5),
        "sms": (500, 500, 0, 0),
    }
    speed = {row.channel: row for row in report.alert_speed}
    assert [row.channel for row in report.alert_speed] == ["voice", "sms"]
    voice, sms = speed["voice"], speed["sms"]
    assert (voice.actions, voice.t50_median, voice.t90_median, voice.t100_median) == (2, 15.0, 50.0, 90.0)
    assert voice.t50_p90 == pytest.approx(19.0) and voice.t90_p90 == pytest.approx(58.0)
    assert (sms.t50_median, sms.t90_median, sms.t100_median) == (3.0, 7.0, 14.0)
    assert sms.t100_p90 == pytest.approx(18.8)

    hours = {row.hour: (row.calls, row.without_action) for row in report.busiest_hours if row.calls}
    assert hours == {0: (1, 0), 9: (2, 0), 14: (1, 0), 18: (2, 2)}

    rates = {row.endpoint: row for row in report.centralists}
    assert set(rates) == {"c-mn-1", "c-mn-2", "c-mn-3"}
    one, two, three = rates["c-mn-1"], rates["c-mn-2"], rates["c-mn-3"]
    assert (one.team_calls, one.answered_team, one.answered_pool, one.answered_total) == (3, 1, 1, 2)
    assert one.answer_rate == pytest.approx(1 / 3)
    # c-mn-2 is second on a1's team: c1, answered by c-mn-1 first, never rang there.
    assert (two.team_calls, two.answered_team, two.answered_pool, two.answer_rate) == (2, 1, 0, 0.5)
    assert (three.team_calls, three.answered_team, three.answered_pool, three.answer_rate) == (1, 0, 1, 0.0)


def test_figures_of_a_hand_computed_month_on_sqlite(bn_context: Context) -> None:
    build_history(bn_context.sessions)
    _check_national_november(bn_context.sessions)


@pytest.mark.postgres
def test_figures_of_a_hand_computed_month_on_postgres(
    postgres_server: ManagedPostgres, redis_server: ManagedRedis, tmp_path: Path
) -> None:
    context = postgres_context(postgres_server, redis_server, tmp_path)
    try:
        build_history(context.sessions)
        _check_national_november(context.sessions)
    finally:
        context.close()


def test_scopes_narrow_actions_and_calls(bn_context: Context) -> None:
    build_history(bn_context.sessions)
    service = ReportService(bn_context.sessions)
    mn = service.report(NOVEMBER, parse_scope(region="mn"))
    assert (mn.summary.actions, mn.summary.actions_closed, mn.summary.solved_by_tip) == (3, 2, 1)
    assert [row.region_code for row in mn.by_region] == ["MN"]
    # Calls in region MN: four about actions, one without.
    assert (mn.summary.inbound_calls, mn.summary.calls_without_action) == (5, 1)

    child = service.report(NOVEMBER, parse_scope(action_type="missing_child"))
    assert (child.summary.actions, child.summary.solved_ratio, child.summary.alerted) == (1, 1.0, 300)
    # A type keeps only calls about its actions: a1's three, none without an action.
    assert (child.summary.inbound_calls, child.summary.calls_without_action) == (3, 0)
    assert {row.endpoint: row.team_calls for row in child.centralists} == {"c-mn-1": 3, "c-mn-2": 2}

    with pytest.raises(InvalidScope, match="no region with code XX"):
        service.report(NOVEMBER, parse_scope(region="XX"))


def test_a_quarter_a_year_and_a_custom_range(bn_context: Context) -> None:
    build_history(bn_context.sessions)
    service = ReportService(bn_context.sessions)
    quarter = service.report(parse_period(quarter="2026-Q4"), parse_scope())
    assert quarter.months == ("2026-10", "2026-11", "2026-12")
    assert [row.actions for row in quarter.by_month] == [1, 4, 1]
    assert quarter.summary.actions == 6 and quarter.summary.solved_by_tip == 2
    # a3 is a missing person solved by a tip: missing persons 2 of 3.
    assert quarter.summary.missing_solved_ratio == pytest.approx(2 / 3)
    year = service.report(parse_period(year="2026"), parse_scope())
    assert len(year.months) == 12 and year.summary.actions == 6
    # 1 to 20 November (Amsterdam), both days included: a1, a2 and a5.
    custom = service.report(parse_period(date_from="2026-11-01", date_to="2026-11-20"), parse_scope())
    assert custom.summary.actions == 3


def test_exports_read_back_with_the_same_figures(bn_context: Context) -> None:
    build_history(bn_context.sessions)
    report = ReportService(bn_context.sessions).report(NOVEMBER, parse_scope())

    tables = parse_csv(to_csv(report))
    assert set(tables) >= {"summary", "by_month", "by_region", "alert_speed", "busiest_hours", "centralists"}
    summary = {row["figure"]: row["value"] for row in tables["summary"]}
    assert (summary["actions"], summary["alerted"], summary["solved_ratio"]) == ("4", "650", "0.3333")
    assert summary["period_start"] == "2026-11-01T00:00:00+01:00"
    voice = next(row for row in tables["alert_speed"] if row["channel"] == "voice")
    assert (voice["t50_median"], voice["t90_p90"]) == ("15.0", "58.0")

    workbook = load_workbook(io.BytesIO(to_xlsx(report)))
    assert workbook.sheetnames == list(tables)
    sheet = workbook["summary"]
    figures = {row[0]: row[1] for row in sheet.iter_rows(min_row=3, values_only=True)}
    assert figures["actions"] == 4 and figures["calls_about_actions"] == 20
    hours = workbook["busiest_hours"]
    assert [row[1] for row in hours.iter_rows(min_row=3, values_only=True)][18] == 2

    document = to_json(report)
    assert document["period"]["start"] == "2026-11-01T00:00:00+01:00"
    assert document["period"]["end"] == "2026-12-01T00:00:00+01:00"
    assert document["summary"]["calls_per_1000_alerted"] == pytest.approx(30.77)
    assert document["generated_at"].endswith(("+01:00", "+02:00"))


# --- periods and scopes ----------------------------------------------------------------------------


def test_months_are_amsterdam_months_across_dst() -> None:
    march = parse_period(month="2026-03")  # DST begins on 29 March 2026
    assert march.start_utc == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert march.end_utc == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    assert march.end.isoformat() == "2026-04-01T00:00:00+02:00"
    october = parse_period(month="2026-10")  # DST ends on 25 October 2026
    assert october.start_utc == datetime(2026, 9, 30, 22, 0, tzinfo=UTC)
    assert october.end_utc == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    december = parse_period(month="2026-12")
    assert (december.first_day, december.last_day) == (date(2026, 12, 1), date(2026, 12, 31))


def test_quarters_years_and_custom_ranges() -> None:
    q1 = parse_period(quarter="2026-q1")
    assert (q1.first_day, q1.last_day, q1.label) == (date(2026, 1, 1), date(2026, 3, 31), "2026-Q1")
    assert parse_period(quarter="2026Q4").months() == ["2026-10", "2026-11", "2026-12"]
    year = parse_period(year="2026")
    assert year.start.isoformat() == "2026-01-01T00:00:00+01:00" and len(year.months()) == 12
    custom = parse_period(date_from="2026-10-20", date_to="2026-11-03")
    assert custom.months() == ["2026-10", "2026-11"]
    assert custom.end_utc == datetime(2026, 11, 3, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "exactly one period"),
        ({"month": "2026-11", "year": "2026"}, "exactly one period"),
        ({"month": "2026-13"}, "no such month"),
        ({"month": "november"}, "month must look like 2026-11"),
        ({"quarter": "2026-Q5"}, "quarter must look like 2026-Q4"),
        ({"year": "26"}, "year must look like 2026"),
        ({"date_from": "2026-11-01"}, "needs both from and to"),
        ({"date_from": "2026-11-05", "date_to": "2026-11-01"}, "is before from"),
        ({"date_from": "2026-11-31", "date_to": "2026-12-01"}, "from must be an ISO date"),
        ({"date_from": "2020-01-01", "date_to": "2026-01-01"}, "at most"),
    ],
)
def test_bad_periods_are_refused_with_a_reason(arguments: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidPeriod, match=message) as refused:
        parse_period(**arguments)
    assert refused.value.code == "report.invalid_period"


def test_scopes() -> None:
    assert parse_scope(region=" mn ", action_type="Missing_Child").label == "MN / missing_child"
    assert parse_scope().label == "national"
    with pytest.raises(InvalidScope, match="action type must be one of"):
        parse_scope(action_type="burglary")
    with pytest.raises(InvalidScope, match="region must be a region code"):
        parse_scope(region="M N")


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([10.0, 20.0], 0.9) == pytest.approx(19.0)
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0, 4.0, 100.0], 0.9) == pytest.approx(61.6)


# --- the calls per hour the reports read (burgernet.call_hours, migration 0014) -------------------


def _hour_rows(sessions: sessionmaker[Session]) -> list[tuple[object, ...]]:
    """Both summary tables as comparable rows (ids left out: a rebuilt hour gets new ones)."""
    with session_scope(sessions) as session:
        facts = [
            (
                "calls",
                hour_of(r.hour_start),
                r.region_code,
                r.action_type,
                r.kind,
                r.outcome,
                r.centralist_id,
                r.calls,
                r.answered_within_20s,
                r.wait_seconds_sum,
                r.wait_seconds_max,
            )
            for r in session.scalars(select(CallHourFact))
        ]
        team = [
            (
                "team",
                hour_of(r.hour_start),
                r.region_code,
                r.action_type,
                r.kind,
                r.centralist_id,
                r.offered,
                r.answered,
            )
            for r in session.scalars(select(CallHourTeamFact))
        ]
    return sorted([*facts, *team], key=repr)


def _end_every_call(sessions: sessionmaker[Session]) -> None:
    """The fixture's calls, ended two minutes after they started (answered after 15 s)."""
    with session_scope(sessions) as session:
        for call in session.scalars(select(Call)):
            started = call.started_at if call.started_at.tzinfo else call.started_at.replace(tzinfo=UTC)
            call.ended_at = started + timedelta(minutes=2)
            call.answered_at = started + timedelta(seconds=15) if call.centralist_id else None
            call.caller_number = "+31612345678"


def test_a_call_added_to_an_hour_already_summarised_is_counted(bn_context: Context) -> None:
    ids = build_history(bn_context.sessions)
    _end_every_call(bn_context.sessions)
    hours = CallHours(bn_context.sessions)
    first = hours.refresh()
    assert (first.calls, first.hours) == (8, 6)  # three calls in 08:00 UTC on 2 November
    assert hours.refresh().hours == 0  # every call has ended: those hours are final now
    before = ReportService(bn_context.sessions).report(NOVEMBER, parse_scope())
    assert before.busiest_hours[9].calls == 2  # 09:10 and 09:20 in Amsterdam (plus a transfer)

    # A call back-dated into that hour (the tip sweep does that): a1, answered by c-mn-1.
    with session_scope(bn_context.sessions) as session:
        one = session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == "c-mn-1"))
        session.add(
            Call(
                unique_id="report-late",
                kind="inbound",
                action_id=ids["a1"],
                region_code="MN",
                centralist_id=one,
                started_at=_utc("2026-11-02T08:40"),
                answered_at=_utc("2026-11-02T08:40:30"),
                ended_at=_utc("2026-11-02T08:45"),
                outcome="connected",
            )
        )
    after = ReportService(bn_context.sessions).report(NOVEMBER, parse_scope())  # refreshes first
    assert after.summary.inbound_calls == before.summary.inbound_calls + 1 == 7
    assert after.busiest_hours[9].calls == 3 and after.busiest_hours[9].about_an_action == 3
    rates = {row.endpoint: row for row in after.centralists}
    # c-mn-1 is first on a1's team: offered and answered by them; c-mn-2 (second) never rang.
    assert (rates["c-mn-1"].team_calls, rates["c-mn-1"].answered_team, rates["c-mn-1"].answered_total) == (
        4,
        2,
        3,
    )
    assert rates["c-mn-2"].team_calls == 2
    with session_scope(bn_context.sessions) as session:
        hour = session.execute(
            select(
                func.sum(CallHourFact.calls),
                func.sum(CallHourFact.answered_within_20s),
                func.sum(CallHourFact.wait_seconds_sum),
                func.max(CallHourFact.wait_seconds_max),
            ).where(CallHourFact.hour_start == _utc("2026-11-02T08:00"), CallHourFact.kind == "inbound")
        ).one()
    # Answered after 15 s (c-mn-2) and 30 s (the late one); abandoned after 2 minutes.
    assert tuple(hour) == (3, 1, 165.0, 120.0)

    # The same rows as a summary built from nothing (what migration 0014 does).
    summarised = _hour_rows(bn_context.sessions)
    with session_scope(bn_context.sessions) as session:
        session.execute(delete(CallHourRefresh))
    assert CallHours(bn_context.sessions).refresh().hours == 6
    assert _hour_rows(bn_context.sessions) == summarised


def test_retention_blanks_caller_numbers_and_the_hourly_summary_stays(bn_context: Context) -> None:
    build_history(bn_context.sessions)
    _end_every_call(bn_context.sessions)
    service = ReportService(bn_context.sessions)
    before = service.report(NOVEMBER, parse_scope())
    summarised = _hour_rows(bn_context.sessions)
    retention = Retention(bn_context.sessions, bn_context.settings, bn_context.facts)
    # 90 days after November: every call's number goes, the calls stay (counted per hour).
    retention.run(datetime(2027, 6, 1, tzinfo=UTC), kinds=["call_numbers"])
    with session_scope(bn_context.sessions) as session:
        assert set(session.scalars(select(Call.caller_number))) == {None}
    bn_context.facts.refresh_open()  # the worker's minute: refreshes the touched hours (none)
    assert _hour_rows(bn_context.sessions) == summarised
    after = service.report(NOVEMBER, parse_scope())
    assert after.busiest_hours == before.busiest_hours
    assert after.centralists == before.centralists
    assert (after.summary.inbound_calls, after.summary.calls_without_action) == (6, 2)


def test_the_worker_refresh_fills_the_hourly_summary(bn_context: Context) -> None:
    build_history(bn_context.sessions)
    bn_context.facts.refresh_open()
    with session_scope(bn_context.sessions) as session:
        inbound = session.scalar(select(func.sum(CallHourFact.calls)).where(CallHourFact.kind == "inbound"))
    assert inbound == 7  # the fixture's inbound calls, November's six and a4's on 31 October


def test_migrated_schema_matches_the_call_hour_models(bn_context: Context) -> None:
    with bn_context.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diff if "call_hour" in str(d) or "ix_calls_ended_at" in str(d)] == []

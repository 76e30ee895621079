"""What the Reports page, its exports and ``/api/v1/reports`` need around the core's report
(:mod:`burgernet.reports`): who may see it, reading the period and scope from a query string,
the charts' data, and the export files.

The figures are anonymous (counts, ratios, durations); only the centralists' answer rates name
staff. Admins and operators run the service and see them; the viewer role is management's
read-only login. Centralists do not: a report would show them their colleagues' answer rates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

from burgernet.domain import ACTION_TYPE_LABELS, OUTCOME_KIND_LABELS, ActionType, Language, OutcomeKind, Role
from burgernet.reports import (
    LOCAL_TZ,
    InvalidPeriod,
    Period,
    Report,
    ReportService,
    Scope,
    current_month,
    parse_period,
    parse_scope,
    to_csv,
    to_json,
    to_xlsx,
)
from burgernet.services import Services
from callback_api.errors import PanelError

REPORT_ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.VIEWER})
EXPORT_FORMATS = ("csv", "xlsx", "json")
PERIOD_FIELDS = ("month", "quarter", "year", "from", "to")


class FormatRequestInvalid(PanelError):
    """An export format the report is not made in (400). A period or scope that cannot be read
    is the core's own refusal (:class:`burgernet.reports.ReportParameterError`, also 400)."""

    code: ClassVar[str] = "report.invalid_format"
    status: ClassVar[int] = 400


@dataclass(frozen=True)
class ReportQuery:
    """What the page's pickers asked for, as typed (kept for the form after a refusal)."""

    period_kind: str
    month: str
    quarter: str
    year: str
    date_from: str
    date_to: str
    region: str
    action_type: str


def page_query(args: Mapping[str, str], now: datetime | None = None) -> ReportQuery:
    """The page's pickers: a period kind and its field. Without any period, the last twelve
    months (this one included), so the trends show at once; a month alone means that month."""
    chosen = {name: args.get(name, "") for name in ("period", *PERIOD_FIELDS)}
    if not any(chosen.values()):
        today = (now or datetime.now(UTC)).astimezone(LOCAL_TZ).date()
        first = date(today.year - 1, today.month, 1) + timedelta(days=31)
        chosen.update(period="custom", **{"from": first.replace(day=1).isoformat(), "to": today.isoformat()})
    elif not chosen["period"]:
        chosen["period"] = next(
            (kind for kind in ("month", "quarter", "year") if chosen[kind]),
            "custom" if chosen["from"] or chosen["to"] else "month",
        )
    return ReportQuery(
        period_kind=chosen["period"],
        month=chosen["month"],
        quarter=chosen["quarter"],
        year=chosen["year"],
        date_from=chosen["from"],
        date_to=chosen["to"],
        region=args.get("region", ""),
        action_type=args.get("action_type", ""),
    )


def page_period(query: ReportQuery) -> Period:
    """The period of the page's pickers: only the field of the chosen kind counts."""
    if query.period_kind == "month":
        return parse_period(month=query.month or current_month().label)
    if query.period_kind == "quarter":
        return parse_period(quarter=query.quarter)
    if query.period_kind == "year":
        return parse_period(year=query.year)
    if query.period_kind == "custom":
        return parse_period(date_from=query.date_from, date_to=query.date_to)
    raise InvalidPeriod("period must be month, quarter, year or custom")


def api_period(args: Mapping[str, str]) -> Period:
    """The API's period: exactly one of month, quarter, year, or from and to."""
    return parse_period(
        month=args.get("month"),
        quarter=args.get("quarter"),
        year=args.get("year"),
        date_from=args.get("from"),
        date_to=args.get("to"),
    )


def scope_of(region: str | None, action_type: str | None) -> Scope:
    return parse_scope(region, action_type)


def export_format(value: str | None) -> str:
    fmt = (value or "json").lower()
    if fmt not in EXPORT_FORMATS:
        raise FormatRequestInvalid(f"format must be one of {', '.join(EXPORT_FORMATS)}, not {value!r}")
    return fmt


@dataclass(frozen=True)
class ExportFile:
    body: bytes
    mimetype: str
    filename: str


class ReportPanelService:
    def __init__(self, services: Services) -> None:
        self._reports = ReportService(services.sessions)

    def regions(self) -> list[tuple[str, str]]:
        return self._reports.regions()

    def report(self, period: Period, scope: Scope, *, actor: str, source: str, purpose: str) -> Report:
        return self._reports.report(period, scope, actor=actor, source=source, purpose=purpose)


def export_file(report: Report, fmt: str) -> ExportFile:
    stem = f"burgernet-report-{report.period.label.replace('..', '_')}"
    if report.scope.region_code:
        stem += f"-{report.scope.region_code}"
    if report.scope.action_type:
        stem += f"-{report.scope.action_type}"
    if fmt == "csv":
        return ExportFile(to_csv(report).encode("utf-8"), "text/csv; charset=utf-8", f"{stem}.csv")
    if fmt == "xlsx":
        return ExportFile(
            to_xlsx(report),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            f"{stem}.xlsx",
        )
    return ExportFile(
        json.dumps(to_json(report), ensure_ascii=False, indent=2).encode("utf-8"),
        "application/json",
        f"{stem}.json",
    )


def action_type_choices(language: str) -> list[tuple[str, str]]:
    lang = Language(language) if language in {lang.value for lang in Language} else Language.EN
    return [(t.value, ACTION_TYPE_LABELS[t][lang]) for t in ActionType]


def outcome_label(kind: str, language: str) -> str:
    lang = Language(language) if language in {lang.value for lang in Language} else Language.EN
    try:
        return OUTCOME_KIND_LABELS[OutcomeKind(kind)][lang]
    except ValueError:
        return kind


def chart_data(report: Report, labels: Mapping[str, str]) -> dict[str, object]:
    """What reports.js draws: plain lists, embedded in the page as JSON."""
    return {
        "labels": dict(labels),
        "months": list(report.months),
        "actions": [row.actions for row in report.by_month],
        "solved_percent": [
            None if row.solved_ratio is None else round(100 * row.solved_ratio, 1) for row in report.by_month
        ],
        "calls_per_1000": [row.calls_per_1000_alerted for row in report.by_month],
        "hours": [row.calls for row in report.busiest_hours],
        "hours_without_action": [row.without_action for row in report.busiest_hours],
        "regions": [row.region_code for row in report.by_region],
        "region_totals": [row.total for row in report.by_region],
        "speed_channels": [row.channel for row in report.alert_speed],
        "speed_t50": [row.t50_median for row in report.alert_speed],
        "speed_t90": [row.t90_median for row in report.alert_speed],
        "speed_t100": [row.t100_median for row in report.alert_speed],
    }


def table_document(report: Report, table: str) -> dict[str, object]:
    """One table of the report's JSON, with the period and scope it covers."""
    document = to_json(report)
    return {"period": document["period"], "scope": document["scope"], table: document[table]}

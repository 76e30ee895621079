"""The Reports page (``/reports``), its CSV and XLSX exports, and ``/api/v1/reports``.

The page and the API parse the period and scope, ask the core for the report and render it;
the figures and their definitions are :mod:`burgernet.reports`. Admins, operators and viewers
(management) may see reports, centralists may not (:mod:`callback_api.reports.services`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request

from burgernet.reports import ReportParameterError
from callback_api.api.services import TokenAuth
from callback_api.errors import NotFound
from callback_api.i18n import current_language, translate
from callback_api.reports.services import (
    REPORT_ROLES,
    ReportPanelService,
    action_type_choices,
    api_period,
    chart_data,
    export_file,
    export_format,
    outcome_label,
    page_period,
    page_query,
    scope_of,
    table_document,
)
from callback_api.security import audit_source, roles_required, user
from callback_api.state import panel

bp = Blueprint("reports", __name__, url_prefix="/reports")
api_bp = Blueprint("reports_api", __name__, url_prefix="/api/v1/reports")

# One table of the report by its name in /api/v1/reports/<table> (the keys of the JSON document).
API_TABLES = (
    "summary",
    "by_month",
    "by_region",
    "outcomes",
    "reach",
    "alert_speed",
    "busiest_hours",
    "centralists",
)
CHART_LABELS = (
    "Actions",
    "Solved through Burgernet (%)",
    "Calls per 1,000 alerted",
    "Calls",
    "without an action",
    "50 % reached (median s)",
    "90 % reached (median s)",
    "100 % reached (median s)",
)


@bp.app_context_processor
def report_roles() -> dict[str, Any]:
    """For the navigation in base.html: who sees the Reports link."""
    return {"REPORT_ROLES": REPORT_ROLES}


def _service() -> ReportPanelService:
    return ReportPanelService(panel().context)


@bp.route("")
@roles_required(REPORT_ROLES)
def index() -> str | tuple[str, int]:
    query = page_query(request.args)
    service = _service()
    context: dict[str, Any] = {
        "query": query,
        "regions": service.regions(),
        "action_types": action_type_choices(current_language()),
        "outcome_label": lambda kind: outcome_label(kind, current_language()),
        "export_query": request.query_string.decode("ascii", "replace"),
    }
    try:
        period = page_period(query)
        scope = scope_of(query.region, query.action_type)
        report = service.report(period, scope, actor=user().username, source=audit_source(), purpose="page")
    except ReportParameterError as refused:
        # The pickers keep what was typed; the message says what to change.
        return render_template("reports/index.html", report=None, error=str(refused), **context), 400
    charts = chart_data(report, {label: translate(label) for label in CHART_LABELS})
    return render_template("reports/index.html", report=report, error=None, charts=charts, **context)


@bp.route("/export.<fmt>")
@roles_required(REPORT_ROLES)
def export(fmt: str) -> Response:
    if fmt not in ("csv", "xlsx"):
        raise NotFound("exports are .csv or .xlsx")
    query = page_query(request.args)
    report = _service().report(
        page_period(query),
        scope_of(query.region, query.action_type),
        actor=user().username,
        source=audit_source(),
        purpose=fmt,
    )
    file = export_file(report, fmt)
    response = Response(file.body, mimetype=file.mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename={file.filename}"
    return response


# --- /api/v1/reports -------------------------------------------------------------------------------


def _api_report(purpose: str) -> Any:
    info = TokenAuth(panel().context).user(request.headers.get("Authorization", ""), REPORT_ROLES)
    period = api_period(request.args)
    scope = scope_of(request.args.get("region"), request.args.get("action_type"))
    source = f"api {request.remote_addr or 'unknown'}"[:80]
    return _service().report(period, scope, actor=info.username, source=source, purpose=purpose)


@api_bp.route("", methods=["GET"])
def api_report() -> Response:
    """The whole report: JSON (default), or ``format=csv`` / ``format=xlsx`` as a file."""
    fmt = export_format(request.args.get("format"))
    file = export_file(_api_report(fmt), fmt)
    response = Response(file.body, mimetype=file.mimetype)
    if fmt != "json":
        response.headers["Content-Disposition"] = f"attachment; filename={file.filename}"
    return response


@api_bp.route("/<table>", methods=["GET"])
def api_table(table: str) -> Response:
    """One table of the report, with the period and scope it covers."""
    if table not in API_TABLES:
        raise NotFound(f"no report table {table!r}; one of {', '.join(API_TABLES)}")
    return jsonify(table_document(_api_report(f"json:{table}"), table))

"""The Reports page, its exports and /api/v1/reports, on the hand-computed history of
tests/core/test_reports.py (November 2026: 4 actions, 650 alerted, 20 calls about them)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from burgernet.reports import parse_csv
from composition.context import Context
from tests.core.test_reports import build_history
from tests.panel.conftest import World, audit_count

ClientFor = Callable[[str | None], FlaskClient]


@pytest.fixture
def history(bn_context: Context, world: World) -> dict[str, int]:
    return build_history(bn_context.sessions)


def _figure(html: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}">([^<]*)<', html)
    assert match, f"no figure {name} on the page"
    return match.group(1).strip()


def test_management_sees_the_report_with_its_figures(
    client_for: ClientFor, history: dict[str, int], bn_context: Context
) -> None:
    for role in ("admin", "operator"):
        page = client_for(role).get("/reports?month=2026-11", headers={"Accept-Language": "en"})
        assert page.status_code == 200 and _figure(page.get_data(as_text=True), "actions") == "4"
    client = client_for("viewer")
    before = audit_count(bn_context, verb="read", entity="report")
    response = client.get("/reports?period=month&month=2026-11", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert _figure(html, "actions") == "4"
    assert _figure(html, "alerted") == "650"
    assert _figure(html, "solved_ratio") == "33.3 %"
    assert _figure(html, "missing_solved_ratio") == "50.0 %"
    assert _figure(html, "calls_per_1000_alerted") == "30.8"
    assert 'id="chart-trend"' in html and 'id="report-data"' in html
    assert "/vendor/chart.js/chart.umd.min.js" in html
    assert 'href="/reports"' in html  # the navigation link
    # Region MN started three of them; its row has the month and the total.
    assert re.search(r'data-region="MN">.*?<td class="num">3</td><td class="num">3</td>', html)
    # Reading a report is on record (it names centralists' answer rates).
    assert audit_count(bn_context, verb="read", entity="report") == before + 1


def test_a_centralist_and_an_anonymous_visitor_are_refused(
    client_for: ClientFor, history: dict[str, int]
) -> None:
    assert client_for("centralist").get("/reports").status_code == 403
    assert client_for("centralist").get("/reports/export.csv?month=2026-11").status_code == 403
    assert 'href="/reports"' not in client_for("centralist").get("/").get_data(as_text=True)
    anonymous = client_for(None).get("/reports")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_the_page_defaults_to_the_last_twelve_months_and_scopes_narrow(
    client_for: ClientFor, history: dict[str, int]
) -> None:
    client = client_for("viewer")
    default = client.get("/reports").get_data(as_text=True)
    assert '<option value="custom" selected>' in default
    assert len(re.findall(r'<tr data-month="', default)) == 12
    html = client.get("/reports?period=month&month=2026-11&region=RO&action_type=missing_person").get_data(
        as_text=True
    )
    assert _figure(html, "actions") == "1"
    assert 'data-region="MN"' not in html and 'data-region="RO"' in html
    # Region RO in the fourth quarter: a4 (31 October, Amsterdam) and a5.
    quarter = client.get("/reports?period=quarter&quarter=2026-Q4&region=RO").get_data(as_text=True)
    assert _figure(quarter, "actions") == "2"
    dutch = client.get("/reports?month=2026-11", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert "Opgelost dankzij Burgernet" in dutch and "Per actie: mediaan 300" in dutch
    custom = client.get("/reports?period=custom&from=2026-11-01&to=2026-11-20").get_data(as_text=True)
    assert _figure(custom, "actions") == "3"


BAD_PICKERS = [
    ("period=month&month=2026-13", "no such month"),
    ("period=custom&from=2026-11-20&to=2026-11-01", "is before from"),
    ("period=quarter&quarter=Q4", "quarter must look like"),
    ("period=month&month=2026-11&region=XX", "no region with code XX"),
    ("period=month&month=2026-11&action_type=burglary", "action type must be one of"),
    ("period=week", "period must be month, quarter, year or custom"),
]


def test_bad_pickers_get_a_clear_error_and_keep_the_input(
    client_for: ClientFor, history: dict[str, int]
) -> None:
    client = client_for("operator")
    for query, message in BAD_PICKERS:
        response = client.get(f"/reports?{query}", headers={"Accept-Language": "en"})
        assert response.status_code == 400, query
        html = response.get_data(as_text=True)
        assert 'id="report-error"' in html and message in html, query
        assert 'id="report-filter"' in html and 'id="summary"' not in html
    kept = client.get("/reports?period=quarter&quarter=Q4&region=RO").get_data(as_text=True)
    assert 'value="Q4"' in kept and '<option value="RO" selected>' in kept


def test_csv_and_xlsx_exports_hold_the_page_figures(client_for: ClientFor, history: dict[str, int]) -> None:
    client = client_for("operator")
    csv_response = client.get("/reports/export.csv?period=month&month=2026-11")
    assert csv_response.status_code == 200 and csv_response.mimetype == "text/csv"
    assert "burgernet-report-2026-11.csv" in csv_response.headers["Content-Disposition"]
    tables = parse_csv(csv_response.get_data(as_text=True))
    summary = {row["figure"]: row["value"] for row in tables["summary"]}
    assert (summary["actions"], summary["alerted"], summary["calls_about_actions"]) == ("4", "650", "20")
    hours = {int(row["hour"]): int(row["calls"]) for row in tables["busiest_hours"]}
    assert (hours[9], hours[18], sum(hours.values())) == (2, 2, 6)

    xlsx = client.get("/reports/export.xlsx?period=month&month=2026-11&region=MN")
    assert xlsx.status_code == 200
    assert "burgernet-report-2026-11-MN.xlsx" in xlsx.headers["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(xlsx.get_data()))
    figures = {row[0]: row[1] for row in workbook["summary"].iter_rows(min_row=3, values_only=True)}
    assert (figures["actions"], figures["inbound_calls"], figures["scope"]) == (3, 5, "MN")
    regions = list(workbook["by_region"].iter_rows(min_row=2, values_only=True))
    assert regions == [("region_code", "region_name", "2026-11", "total"), ("MN", "Midden-Nederland", 3, 3)]
    assert client.get("/reports/export.pdf?month=2026-11").status_code == 404


# --- /api/v1/reports -------------------------------------------------------------------------------


def _bearer(world: World, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[role]}"}


def test_api_report_in_json_with_offsets(app: Flask, world: World, history: dict[str, int]) -> None:
    client = app.test_client()
    response = client.get("/api/v1/reports?month=2026-11", headers=_bearer(world, "viewer"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["period"] == {
        "kind": "month",
        "label": "2026-11",
        "first_day": "2026-11-01",
        "last_day": "2026-11-30",
        "start": "2026-11-01T00:00:00+01:00",
        "end": "2026-12-01T00:00:00+01:00",
    }
    assert body["scope"] == {"region": None, "action_type": None, "label": "national"}
    assert (body["summary"]["actions"], body["summary"]["alerted"]) == (4, 650)
    assert body["summary"]["calls_per_1000_alerted"] == pytest.approx(30.77)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.?\d*\+0[12]:00", body["generated_at"])

    table = client.get(
        "/api/v1/reports/centralists?from=2026-11-01&to=2026-11-30&region=mn&action_type=missing_child",
        headers=_bearer(world, "operator"),
    ).get_json()
    assert table["scope"]["label"] == "MN / missing_child"
    assert {row["endpoint"]: row["team_calls"] for row in table["centralists"]} == {"c-mn-1": 3, "c-mn-2": 2}

    xlsx = client.get(
        "/api/v1/reports?quarter=2026-Q4&region=RO&format=xlsx", headers=_bearer(world, "admin")
    )
    workbook = load_workbook(io.BytesIO(xlsx.get_data()))
    figures = {row[0]: row[1] for row in workbook["summary"].iter_rows(min_row=3, values_only=True)}
    assert figures["actions"] == 2
    csv_text = client.get("/api/v1/reports?year=2026&format=csv", headers=_bearer(world, "admin")).get_data(
        as_text=True
    )
    assert len(parse_csv(csv_text)["by_month"]) == 12


BAD_API_QUERIES = [
    ("", "report.invalid_period"),
    ("month=2026-11&year=2026", "report.invalid_period"),
    ("month=11-2026", "report.invalid_period"),
    ("from=2026-11-01", "report.invalid_period"),
    ("from=2026-11-01&to=yesterday", "report.invalid_period"),
    ("month=2026-11&region=XX", "report.invalid_scope"),
    ("month=2026-11&action_type=burglary", "report.invalid_scope"),
    ("month=2026-11&format=pdf", "report.invalid_format"),
]


def test_api_refuses_bad_parameters_and_wrong_tokens(
    app: Flask, world: World, history: dict[str, int]
) -> None:
    client = app.test_client()
    for query, code in BAD_API_QUERIES:
        response = client.get(f"/api/v1/reports?{query}", headers=_bearer(world, "operator"))
        assert response.status_code == 400, query
        body = response.get_json()
        assert body["error_id"] == code and body["request_id"] and body["message"], query
    assert client.get("/api/v1/reports?month=2026-11").get_json()["error_id"] == "auth.unauthenticated"
    refused = client.get("/api/v1/reports?month=2026-11", headers=_bearer(world, "centralist"))
    assert (refused.status_code, refused.get_json()["error_id"]) == (403, "auth.forbidden")
    missing = client.get("/api/v1/reports/nothing?month=2026-11", headers=_bearer(world, "viewer"))
    assert missing.status_code == 404
    document = client.get("/api/v1/openapi.json").get_json()
    assert "/reports" in document["paths"] and "Report" in document["components"]["schemas"]

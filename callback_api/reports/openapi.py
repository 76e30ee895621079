"""The OpenAPI description of ``/api/v1/reports`` (merged into ``/api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

from burgernet.domain import ActionType
from burgernet.reports import MAX_CUSTOM_DAYS


def _query(name: str, description: str, example: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", **schema},
        "example": example,
    }


_PARAMETERS = [
    _query("month", "a month in Europe/Amsterdam", "2026-11", pattern=r"^\d{4}-\d{2}$"),
    _query("quarter", "a quarter", "2026-Q4", pattern=r"^\d{4}-?[Qq][1-4]$"),
    _query("year", "a year", "2026", pattern=r"^\d{4}$"),
    _query(
        "from",
        f"first day of a custom range (ISO date; with to, at most {MAX_CUSTOM_DAYS} days)",
        "2026-11-01",
    ),
    _query("to", "last day of a custom range, included (ISO date)", "2026-11-30"),
    _query("region", "a region code; national without it", "MN"),
    _query(
        "action_type",
        "one action type; every type without it",
        "missing_child",
        enum=[t.value for t in ActionType],
    ),
]
_ERRORS = {
    "400": {
        "description": "no period or more than one, a malformed date, an unknown region or type, or an "
        "unknown format (report.invalid_period, report.invalid_scope, report.invalid_format)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    },
    "401": {
        "description": "missing or invalid bearer token (auth.unauthenticated)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    },
    "403": {
        "description": "centralists may not read reports (auth.forbidden); admins, operators and viewers may",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    },
}
TABLES = (
    "summary",
    "by_month",
    "by_region",
    "outcomes",
    "reach",
    "alert_speed",
    "busiest_hours",
    "centralists",
)

REPORT_PATHS: dict[str, Any] = {
    "/reports": {
        "get": {
            "summary": "Management report for a period (one of month, quarter, year, from+to) and scope",
            "parameters": [
                *_PARAMETERS,
                _query(
                    "format", "json (default), or csv / xlsx as a file", "json", enum=["json", "csv", "xlsx"]
                ),
            ],
            "responses": {
                "200": {
                    "description": "the report; times in ISO 8601 with their offset (Europe/Amsterdam)",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Report"}},
                        "text/csv": {"schema": {"type": "string"}},
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                    },
                },
                **_ERRORS,
            },
        }
    },
    "/reports/{table}": {
        "get": {
            "summary": "One table of the report, with its period and scope",
            "parameters": [
                {
                    "name": "table",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": list(TABLES)},
                },
                *_PARAMETERS,
            ],
            "responses": {
                "200": {
                    "description": "{period, scope, <table>}",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "404": {
                    "description": "no such table (resource.not_found)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
                **_ERRORS,
            },
        }
    },
}

_NUMBER = {"type": "number", "nullable": True}
REPORT_SCHEMAS: dict[str, Any] = {
    "Report": {
        "type": "object",
        "description": "See the README section Reports for the definition of every figure.",
        "properties": {
            "period": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string", "enum": ["month", "quarter", "year", "custom"]},
                    "label": {"type": "string", "example": "2026-11"},
                    "first_day": {"type": "string", "format": "date"},
                    "last_day": {"type": "string", "format": "date"},
                    "start": {
                        "type": "string",
                        "format": "date-time",
                        "example": "2026-11-01T00:00:00+01:00",
                    },
                    "end": {"type": "string", "format": "date-time", "example": "2026-12-01T00:00:00+01:00"},
                },
            },
            "scope": {
                "type": "object",
                "properties": {
                    "region": {"type": "string", "nullable": True},
                    "action_type": {"type": "string", "nullable": True},
                    "label": {"type": "string"},
                },
            },
            "generated_at": {"type": "string", "format": "date-time"},
            "months": {"type": "array", "items": {"type": "string", "example": "2026-11"}},
            "summary": {
                "type": "object",
                "properties": {
                    "actions": {"type": "integer"},
                    "actions_closed": {"type": "integer"},
                    "solved_by_tip": {"type": "integer"},
                    "solved_ratio": _NUMBER,
                    "missing_solved_ratio": _NUMBER,
                    "alerted": {"type": "integer"},
                    "calls_about_actions": {"type": "integer"},
                    "calls_without_action": {"type": "integer"},
                    "calls_per_1000_alerted": _NUMBER,
                    "tips": {"type": "integer"},
                },
                "additionalProperties": True,
            },
            **{
                name: {"type": "array", "items": {"type": "object"}}
                for name in TABLES
                if name not in ("summary", "reach")
            },
            "reach": {"type": "object"},
        },
    }
}

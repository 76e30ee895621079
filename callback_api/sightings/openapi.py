"""The OpenAPI description of ``/api/v1/actions/{action_id}/sightings`` (merged into
``/api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

from burgernet.models import SIGHTING_RELIABILITIES
from burgernet.sightings import DIRECTIONS, MAX_DESCRIPTION
from callback_api.openapi_parts import error_response, integer_path_id

_ACTION_ID = integer_path_id("action_id")
_ERRORS = {
    "401": error_response("missing or invalid bearer token (auth.unauthenticated)"),
    "403": error_response(
        "the token's role may not do this (auth.forbidden), or the action is outside the user's "
        "region and team (access.need_to_know)"
    ),
    "404": error_response("no such action (action.not_found)"),
}
_TIME = {"type": "string", "format": "date-time", "description": "ISO 8601 with an offset"}
_SIGHTING_FIELDS: dict[str, Any] = {
    "seen_at": {**_TIME, "example": "2026-07-01T14:05:00+02:00"},
    "lat": {"type": "number", "minimum": 50.6, "maximum": 53.8, "example": 52.0931},
    "lon": {"type": "number", "minimum": 3.0, "maximum": 7.5, "example": 5.118},
    "reliability": {"type": "string", "enum": list(SIGHTING_RELIABILITIES)},
    "direction": {"type": "string", "nullable": True, "enum": [*DIRECTIONS, None], "description": "travel"},
    "description": {"type": "string", "maxLength": MAX_DESCRIPTION},
    "call_id": {"type": "integer", "nullable": True, "description": "the call it came from (same action)"},
    "statement_id": {
        "type": "integer",
        "nullable": True,
        "description": "an inquiry statement of this action whose photo is attached",
    },
}

SIGHTING_PATHS: dict[str, Any] = {
    "/actions/{action_id}/sightings": {
        "get": {
            "summary": "The action's sightings, most recently seen first (need-to-know, like its callbacks)",
            "parameters": [_ACTION_ID],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Sightings"}}},
                },
                **_ERRORS,
            },
        },
        "post": {
            "summary": "Record a sighting (audited; everyone on the action's page sees it at once)",
            "parameters": [_ACTION_ID],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewSighting"}}},
            },
            "responses": {
                "201": {
                    "description": "recorded",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Sighting"}}},
                },
                "409": error_response("the action has not started (sighting.action_not_started)"),
                "422": error_response("a field is missing or refused (input.invalid, sighting.invalid)"),
                **_ERRORS,
            },
        },
    }
}

SIGHTING_SCHEMAS: dict[str, Any] = {
    "NewSighting": {
        "type": "object",
        "required": ["seen_at", "lat", "lon", "reliability"],
        "properties": _SIGHTING_FIELDS,
    },
    "Sighting": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "action_id": {"type": "integer"},
            **_SIGHTING_FIELDS,
            # A sighting from the participant app may come without a place.
            "lat": {**_SIGHTING_FIELDS["lat"], "nullable": True},
            "lon": {**_SIGHTING_FIELDS["lon"], "nullable": True},
            "has_photo": {"type": "boolean"},
            "created_by": {"type": "string"},
            "created_at": _TIME,
            "source": {
                "type": "string",
                "enum": ["panel", "app"],
                "description": "app: sent by a participant",
            },
            "has_reply_channel": {
                "type": "boolean",
                "description": "an app sighting whose phone can be asked a question back (in the panel)",
            },
        },
    },
    "Sightings": {
        "type": "object",
        "properties": {
            "action_id": {"type": "integer"},
            "sightings": {"type": "array", "items": {"$ref": "#/components/schemas/Sighting"}},
        },
    },
}

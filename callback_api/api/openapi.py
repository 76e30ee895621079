"""The OpenAPI 3 description of ``/api/v1`` (served at ``/api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

from burgernet.action_types import URGENCIES
from burgernet.actions import UPDATE_MAX_CHARS
from burgernet.domain import DELIVERY_STATUSES, OUTCOME_KINDS, ActionStatus, ActionType, AreaKind, Channel
from callback_api.approvals.openapi import APPROVAL_PATHS, APPROVAL_SCHEMAS
from callback_api.openapi_parts import error_response, integer_path_id, ok_response
from callback_api.reports.openapi import REPORT_PATHS, REPORT_SCHEMAS
from callback_api.sightings.openapi import SIGHTING_PATHS, SIGHTING_SCHEMAS

_CHANNELS = [channel.value for channel in Channel]


ERRORS = {
    "401": error_response("missing or invalid bearer token (auth.unauthenticated)"),
    "403": error_response("the token's role may not do this (auth.forbidden)"),
}
ACTION_ID = integer_path_id("action_id")
BROADCAST_ID = integer_path_id("broadcast_id")
_COUNTS = {
    "type": "object",
    "description": "deliveries per status; statuses without deliveries are left out",
    "additionalProperties": {"type": "integer"},
    "example": {"answered": 40, "no_answer": 3, "queued": 57},
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Burgernet API",
            "version": "1",
            "description": "Actions, their callbacks and broadcasts. Every error is JSON: status, "
            "error_id (a stable code such as action.not_found), message, and request_id (also in "
            "the X-Request-Id header; quote it when reporting a problem).",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            **REPORT_PATHS,
            **SIGHTING_PATHS,
            **APPROVAL_PATHS,
            "/actions": {
                "get": {
                    "summary": "List actions, newest first, a page at a time",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": [s.value for s in ActionStatus]},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
                        },
                        {
                            "name": "before",
                            "in": "query",
                            "required": False,
                            "description": "only actions with a lower id (next_before of the previous page)",
                            "schema": {"type": "integer"},
                        },
                    ],
                    "responses": {
                        "200": ok_response("ActionList"),
                        "400": error_response("unknown status or bad limit (request.invalid)"),
                        **ERRORS,
                    },
                },
                "post": {
                    "summary": "Create an action (draft, or started at once with start: true)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/NewAction"}}
                        },
                    },
                    "responses": {
                        "201": ok_response("Action", "created"),
                        "400": error_response("not a JSON object (request.invalid)"),
                        "422": error_response("invalid action (input.invalid, area.invalid, action.invalid)"),
                        **ERRORS,
                    },
                },
            },
            "/actions/{action_id}": {
                "get": {
                    "summary": "One action",
                    "parameters": [ACTION_ID],
                    "responses": {
                        "200": ok_response("Action"),
                        "404": error_response("no such action (action.not_found)"),
                        **ERRORS,
                    },
                },
                "patch": {
                    "summary": "Correct the title or description of a draft or active action",
                    "parameters": [ACTION_ID],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "title": {"type": "string", "minLength": 1, "maxLength": 120},
                                        "description": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": ok_response("Action"),
                        "404": error_response("no such action (action.not_found)"),
                        "409": error_response("the action is closed (action.invalid_state)"),
                        "422": error_response(
                            "invalid title or another field (input.invalid, action.invalid)"
                        ),
                        **ERRORS,
                    },
                },
            },
            "/actions/{action_id}/start": {
                "post": {
                    "summary": "Start a draft action (one that needs four-eyes approval: request it, "
                    "POST /actions/{action_id}/approval)",
                    "parameters": [ACTION_ID],
                    "responses": {
                        "200": ok_response("Action"),
                        "404": error_response("no such action (action.not_found)"),
                        "409": error_response(
                            "not a draft (action.invalid_transition), or it needs a second person's "
                            "approval (approval.required)"
                        ),
                        **ERRORS,
                    },
                },
            },
            "/actions/{action_id}/close": {
                "post": {
                    "summary": "Close an action with an outcome kind, an internal note and a result message",
                    "parameters": [ACTION_ID],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["outcome_kind"],
                                    "properties": {
                                        "outcome_kind": {"type": "string", "enum": list(OUTCOME_KINDS)},
                                        "outcome": {
                                            "type": "string",
                                            "maxLength": 200,
                                            "description": "internal note (needed with 'other')",
                                        },
                                        "result_message": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": ok_response("Action"),
                        "404": error_response("no such action (action.not_found)"),
                        "409": error_response("already closed (action.invalid_transition)"),
                        "422": error_response(
                            "no or unknown outcome_kind (input.invalid); 'other' without a note"
                            " (action.invalid)"
                        ),
                        **ERRORS,
                    },
                },
            },
            "/actions/{action_id}/callbacks": {
                "get": {
                    "summary": "Calls about the action and tips left, with the callers' numbers "
                    "(need-to-know: not for viewers; a centralist only for actions of their region or "
                    "team; every read is audited)",
                    "parameters": [ACTION_ID],
                    "responses": {
                        "200": ok_response("Callbacks"),
                        "404": error_response("no such action (action.not_found)"),
                        **ERRORS,
                        "403": error_response(
                            "the token's role may not do this (auth.forbidden), or the action is "
                            "outside the user's region and team (access.need_to_know)"
                        ),
                    },
                },
            },
            "/actions/{action_id}/recording": {
                "post": {
                    "summary": "Upload the alert message as recorded by a centralist (replaces the TTS)",
                    "parameters": [ACTION_ID],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["file"],
                                    "properties": {
                                        "file": {"type": "string", "format": "binary"},
                                        "lang": {"type": "string", "enum": ["nl", "en"]},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": ok_response("Stored"),
                        "404": error_response("no such action (action.not_found)"),
                        "422": error_response(
                            "no file, a bad lang, or no usable sound (input.invalid, recording.invalid)"
                        ),
                        **ERRORS,
                    },
                },
            },
            "/actions/{action_id}/broadcasts": {
                "get": {
                    "summary": "The action's broadcasts (alert, updates, result) with delivery counts",
                    "parameters": [ACTION_ID],
                    "responses": {
                        "200": ok_response("BroadcastList"),
                        "404": error_response("no such action (action.not_found)"),
                        **ERRORS,
                    },
                },
            },
            "/actions/{action_id}/updates": {
                "post": {
                    "summary": "Send an update about an active action to everyone its alert reached",
                    "description": "Queues an update broadcast; a worker sends it on the channel that "
                    "reached each person. Not for viewers.",
                    "parameters": [ACTION_ID],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["message"],
                                    "properties": {
                                        "message": {"type": "string", "maxLength": UPDATE_MAX_CHARS}
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": {
                            **ok_response("Broadcast", "queued; Location is the broadcast's URL"),
                            "headers": {"Location": {"schema": {"type": "string"}}},
                        },
                        "400": error_response("not a JSON object, or no message (request.invalid)"),
                        "404": error_response("no such action (action.not_found)"),
                        "409": error_response("the action is not active (action.invalid_state)"),
                        **ERRORS,
                    },
                },
            },
            "/broadcasts/{broadcast_id}": {
                "get": {
                    "summary": "One broadcast: progress, counts per status and channel, milestone times",
                    "parameters": [BROADCAST_ID],
                    "responses": {
                        "200": ok_response("Broadcast"),
                        "404": error_response("no such broadcast (broadcast.not_found)"),
                        **ERRORS,
                    },
                },
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                **REPORT_SCHEMAS,
                **SIGHTING_SCHEMAS,
                **APPROVAL_SCHEMAS,
                "Error": {
                    "type": "object",
                    "required": ["status", "error_id", "message", "request_id"],
                    "properties": {
                        "status": {"type": "integer"},
                        "error_id": {
                            "type": "string",
                            "description": "stable code of the error kind",
                            "example": "action.not_found",
                        },
                        "message": {"type": "string"},
                        "request_id": {"type": "string", "format": "uuid"},
                    },
                },
                "Action": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "action_type": {"type": "string", "enum": [t.value for t in ActionType]},
                        "title": {"type": "string"},
                        "status": {"type": "string", "enum": [s.value for s in ActionStatus]},
                        "region_code": {"type": "string"},
                        "area_kind": {"type": "string", "enum": [k.value for k in AreaKind]},
                        "team": {"type": "array", "items": {"type": "string"}},
                        "created_at": {"type": "string", "format": "date-time"},
                        "started_at": {"type": "string", "format": "date-time", "nullable": True},
                        "closed_at": {"type": "string", "format": "date-time", "nullable": True},
                        "outcome": {"type": "string", "nullable": True, "description": "internal note"},
                        "result_message": {"type": "string", "nullable": True},
                        "outcome_kind": {"type": "string", "enum": list(OUTCOME_KINDS), "nullable": True},
                        "channels": {"type": "array", "items": {"type": "string", "enum": _CHANNELS}},
                        "urgency": {"type": "string", "enum": list(URGENCIES)},
                    },
                },
                "ActionList": {
                    "type": "object",
                    "properties": {
                        "actions": {"type": "array", "items": {"$ref": "#/components/schemas/Action"}},
                        "next_before": {
                            "type": "integer",
                            "nullable": True,
                            "description": "pass as ?before= for the next, older page; null on the last page",
                        },
                    },
                },
                "Area": {
                    "type": "object",
                    "required": ["kind"],
                    "properties": {
                        "kind": {"type": "string", "enum": [k.value for k in AreaKind]},
                        "lon": {"type": "number"},
                        "lat": {"type": "number"},
                        "radius_m": {"type": "number"},
                        "geojson": {
                            "type": "object",
                            "description": "GeoJSON Polygon or MultiPolygon, WGS84",
                        },
                        "postcodes": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "NewAction": {
                    "type": "object",
                    "required": ["type", "title", "region", "area"],
                    "properties": {
                        "type": {"type": "string", "enum": [t.value for t in ActionType]},
                        "title": {"type": "string", "maxLength": 120},
                        "description": {"type": "string"},
                        "region": {"type": "string", "example": "MN"},
                        "area": {"$ref": "#/components/schemas/Area"},
                        "team": {
                            "type": "array",
                            "items": {"type": "string"},
                            "example": ["c-mn-1", "c-mn-2"],
                        },
                        "channels": {
                            "type": "array",
                            "items": {"type": "string", "enum": _CHANNELS},
                            "description": "the channels the alert uses; default: the type's template",
                        },
                        "urgency": {
                            "type": "string",
                            "enum": list(URGENCIES),
                            "description": "the broadcasts' queue priority; default: the type's template",
                        },
                        "start": {"type": "boolean", "default": False},
                    },
                },
                "Stored": {
                    "type": "object",
                    "properties": {
                        "action_id": {"type": "integer"},
                        "lang": {"type": "string", "enum": ["nl", "en"], "nullable": True},
                        "seconds": {"type": "number", "description": "length of the stored recording"},
                    },
                },
                "Broadcast": {
                    "type": "object",
                    "properties": {
                        "broadcast_id": {"type": "integer"},
                        "action_id": {"type": "integer"},
                        "kind": {"type": "string", "enum": ["alert", "update", "result"]},
                        "status": {"type": "string", "enum": ["pending", "running", "done", "cancelled"]},
                        "priority": {
                            "type": "integer",
                            "enum": [0, 1, 2],
                            "description": "0 AMBER Alert, 1 urgent, 2 information (lower goes first)",
                        },
                        "total": {"type": "integer", "description": "deliveries (0 until a worker fans out)"},
                        "handled": {"type": "integer", "description": "deliveries in a final status"},
                        "by_status": {
                            **_COUNTS,
                            "description": "deliveries per status: " + ", ".join(DELIVERY_STATUSES),
                        },
                        "by_channel": {
                            "type": "object",
                            "description": "per channel (voice, sms, email): deliveries per status",
                            "additionalProperties": _COUNTS,
                        },
                        "seconds_to": {
                            "type": "object",
                            "description": "seconds from the start of the fan-out to 50, 90 and 100 % "
                            "handled; a milestone not reached yet is left out",
                            "additionalProperties": {"type": "number"},
                            "example": {"50%": 1.8, "90%": 6.2},
                        },
                        "created_at": {"type": "string", "format": "date-time"},
                        "started_at": {"type": "string", "format": "date-time", "nullable": True},
                        "finished_at": {"type": "string", "format": "date-time", "nullable": True},
                    },
                },
                "BroadcastList": {
                    "type": "object",
                    "properties": {
                        "action_id": {"type": "integer"},
                        "broadcasts": {"type": "array", "items": {"$ref": "#/components/schemas/Broadcast"}},
                    },
                },
                "Callbacks": {
                    "type": "object",
                    "properties": {
                        "action_id": {"type": "integer"},
                        "calls": {"type": "array", "items": {"type": "object"}},
                        "tips": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
    }

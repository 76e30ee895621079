"""The OpenAPI description of four-eyes approval (``/api/v1/approvals…``,
``/api/v1/actions/{action_id}/approval``), merged into ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

from burgernet.approvals import REASON_MAX_CHARS
from callback_api.openapi_parts import error_response, integer_path_id, ok_response

_REQUEST_ID = integer_path_id("request_id")
_ACTION_ID = integer_path_id("action_id")
_AUTH = {
    "401": error_response("missing or invalid bearer token (auth.unauthenticated)"),
    "403": error_response("the token's role may not do this (auth.forbidden)"),
}
_DECIDER = {
    "401": _AUTH["401"],
    "403": error_response(
        "the token's role may not do this (auth.forbidden); the user asked for this start "
        "(approval.self_approval) or has no approver flag (approval.not_approver)"
    ),
    "404": error_response("no such request (approval.not_found)"),
    "409": error_response(
        "decided already (approval.already_decided), expired (approval.expired), or the action "
        "is no longer a draft (action.invalid_transition)"
    ),
}
_TIME = {"type": "string", "format": "date-time"}

APPROVAL_PATHS: dict[str, Any] = {
    "/actions/{action_id}/approval": {
        "post": {
            "summary": "Ask a second person to start a draft that needs approval (AMBER Alert, national, "
            "or a type configured so); the request holds actions.approval_minutes",
            "parameters": [_ACTION_ID],
            "responses": {
                "201": {
                    **ok_response("Approval", "requested; Location is the request's URL"),
                    "headers": {"Location": {"schema": {"type": "string"}}},
                },
                "404": error_response("no such action (action.not_found)"),
                "409": error_response(
                    "a request is waiting already (approval.pending), or the action is not a draft "
                    "(approval.already_decided)"
                ),
                "422": error_response("the action needs no approval: start it (approval.not_needed)"),
                **_AUTH,
            },
        },
    },
    "/approvals": {
        "get": {
            "summary": "Requests waiting for an approver, oldest first (expired ones are left out)",
            "responses": {"200": ok_response("ApprovalList"), **_AUTH},
        },
    },
    "/approvals/{request_id}": {
        "get": {
            "summary": "One request and what became of it",
            "parameters": [_REQUEST_ID],
            "responses": {
                "200": ok_response("Approval"),
                "404": error_response("no such request (approval.not_found)"),
                **_AUTH,
            },
        },
    },
    "/approvals/{request_id}/approve": {
        "post": {
            "summary": "Approve: the action starts, with the approver as its actor (both names audited)",
            "parameters": [_REQUEST_ID],
            "responses": {"200": ok_response("Approved"), **_DECIDER},
        },
    },
    "/approvals/{request_id}/refuse": {
        "post": {
            "summary": "Refuse with a reason: the action stays a draft",
            "parameters": [_REQUEST_ID],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["reason"],
                            "properties": {"reason": {"type": "string", "maxLength": REASON_MAX_CHARS}},
                        }
                    }
                },
            },
            "responses": {
                "200": ok_response("Approval"),
                "400": error_response("not a JSON object (request.invalid)"),
                "422": error_response("no reason (input.invalid, approval.reason_required)"),
                **_DECIDER,
            },
        },
    },
}

APPROVAL_SCHEMAS: dict[str, Any] = {
    "Approval": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "action_id": {"type": "integer"},
            "action_title": {"type": "string"},
            "action_type": {"type": "string"},
            "area_kind": {"type": "string"},
            "region_code": {"type": "string"},
            "requested_by": {"type": "string"},
            "requested_at": _TIME,
            "expires_at": _TIME,
            "recipients": {
                "type": "object",
                "description": "what the alert would reach when asked: per channel, and people (each once)",
                "additionalProperties": {"type": "integer"},
                "example": {"voice": 800, "sms": 2300, "email": 900, "people": 2600},
            },
            "eta_seconds": {
                "type": "integer",
                "nullable": True,
                "description": "estimated seconds to reach them, when asked; null when not estimated",
            },
            "status": {"type": "string", "enum": ["pending", "approved", "refused", "expired"]},
            "decided_by": {"type": "string", "nullable": True},
            "decided_at": {**_TIME, "nullable": True},
            "reason": {"type": "string", "nullable": True},
            "seconds_left": {"type": "integer", "description": "while pending: until it expires"},
        },
    },
    "ApprovalList": {
        "type": "object",
        "properties": {"approvals": {"type": "array", "items": {"$ref": "#/components/schemas/Approval"}}},
    },
    "Approved": {
        "type": "object",
        "properties": {
            "approval": {"$ref": "#/components/schemas/Approval"},
            "action": {"$ref": "#/components/schemas/Action"},
        },
    },
}

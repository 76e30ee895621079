"""REST API ``/api/v1``: actions, their callbacks and broadcasts, for control-room systems.

Authentication is a bearer token per user (``Authorization: Bearer <token>``; the database
keeps only its SHA-256), so the API is exempt from CSRF: a browser never sends the token by
itself. Roles are those of the panel. Every error is JSON: ``status``, ``error_id`` (a stable
code such as ``action.not_found``), ``message`` and ``request_id`` (also in the log and the
``X-Request-Id`` header), see :mod:`callback_api.errors` and ``app.py``. The views raise typed
errors and let the app turn them into that body.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, g, jsonify, request, url_for

from burgernet.actions import UPDATE_MAX_CHARS, ActionStateError, ActionView, ApprovalRequired
from burgernet.domain import OUTCOME_KINDS, ActionStatus, Role
from callback_api.access import Reader
from callback_api.actions.services import ActionPanelService, BroadcastNotFound
from callback_api.api.openapi import openapi_document
from callback_api.api.services import TokenAuth
from callback_api.areas import area_from_fields
from callback_api.auth.services import UserInfo
from callback_api.errors import InputInvalid, RequestInvalid
from callback_api.errors import error_body as error_body
from callback_api.local_time import iso_utc
from callback_api.security import ACTION_ROLES, ALL_ROLES
from callback_api.state import panel

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _actions() -> ActionPanelService:
    state = panel()
    return ActionPanelService(state.context, state.settings, state.broadcasts)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):  # ISO 8601 with an offset, also for SQLite's naive UTC values
        return iso_utc(value)
    if isinstance(value, tuple | list):
        return [_json(item) for item in value]
    return value


def _view(view: Any) -> dict[str, Any]:
    return {key: _json(value) for key, value in dataclasses.asdict(view).items()}


def _require(roles: frozenset[Role]) -> UserInfo:
    info = TokenAuth(panel().context).user(request.headers.get("Authorization", ""), roles)
    g.api_user = info
    return info


def _source() -> str:
    return f"api {request.remote_addr or 'unknown'}"[:80]


def _reader(info: UserInfo) -> Reader:
    return Reader(info.username, info.role, info.centralist_id, _source())


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise RequestInvalid("the body must be a JSON object (Content-Type: application/json)")
    return data


def _existing(action_id: int) -> ActionView:
    """The action, or ActionNotFound (404 action.not_found)."""
    return panel().context.actions.get(action_id)


@bp.route("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())


@bp.route("/actions", methods=["GET"])
def list_actions() -> Response:
    _require(ALL_ROLES)
    status = request.args.get("status") or None
    if status is not None and status not in {s.value for s in ActionStatus}:
        raise RequestInvalid(f"status must be one of {', '.join(s.value for s in ActionStatus)}")
    limit_text = request.args.get("limit", "100")
    before_text = request.args.get("before")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 500:
        raise RequestInvalid("limit must be a number from 1 to 500")
    if before_text is not None and not before_text.isdigit():
        raise RequestInvalid("before must be an action id")
    limit = int(limit_text)
    before = int(before_text) if before_text is not None else None
    views = panel().context.actions.list_actions(status, limit=limit + 1, before_id=before)
    page = views[:limit]
    # Newest first; pass next_before as ?before= for the next (older) page.
    next_before = page[-1].id if len(views) > limit else None
    return jsonify({"actions": [_view(v) for v in page], "next_before": next_before})


@bp.route("/actions", methods=["POST"])
def create_action() -> tuple[Response, int]:
    """Create a draft (422 area.invalid or action.invalid), started at once with ``start``
    (409 action.invalid_transition)."""
    info = _require(ACTION_ROLES)
    body = _body()
    area = body.get("area")
    if not isinstance(area, dict):
        raise InputInvalid("area must be an object with a kind (circle, polygon, postcodes, national)")
    team = body.get("team", [])
    if not isinstance(team, list) or not all(isinstance(member, str) for member in team):
        raise InputInvalid("team must be a list of centralist endpoints")
    channels = body.get("channels")
    if channels is not None and (
        not isinstance(channels, list) or not all(isinstance(channel, str) for channel in channels)
    ):
        raise InputInvalid("channels must be a list of channels (voice, sms, email)")
    urgency = body.get("urgency")
    if urgency is not None and not isinstance(urgency, str):
        raise InputInvalid("urgency must be one of amber, urgent, information")
    actions = panel().context.actions
    view = actions.create(
        action_type=str(body.get("type", "")),
        title=str(body.get("title", "")),
        description=str(body.get("description", "")),
        region_code=str(body.get("region", "")),
        area=area_from_fields(str(area.get("kind", "")), area),
        team=team,
        channels=channels,
        urgency=urgency,
        actor=info.username,
        source=_source(),
    )
    if body.get("start"):
        try:
            view = actions.start(view.id, actor=info.username, source=_source())
        except ApprovalRequired:
            # The draft stays; say which one, so the client can ask for the approval.
            raise ApprovalRequired(
                f"action {view.id} was created as a draft: it needs a second person's approval to "
                f"start; request it with POST /api/v1/actions/{view.id}/approval"
            ) from None
    return jsonify(_view(view)), 201


@bp.route("/actions/<int:action_id>", methods=["GET"])
def get_action(action_id: int) -> Response:
    _require(ALL_ROLES)
    return jsonify(_view(_existing(action_id)))


@bp.route("/actions/<int:action_id>", methods=["PATCH"])
def edit_action(action_id: int) -> Response:
    """Correct the title or description of a draft or active action."""
    info = _require(ACTION_ROLES)
    # A closed action is a conflict whatever the body says.
    if _existing(action_id).status == ActionStatus.CLOSED.value:
        raise ActionStateError(f"action {action_id} is closed and can no longer be changed")
    body = _body()
    unknown = set(body) - {"title", "description"}
    if unknown:
        raise InputInvalid(f"only title and description can be changed, not {', '.join(sorted(unknown))}")
    for field in ("title", "description"):
        if field in body and not isinstance(body[field], str):
            raise InputInvalid(f"{field} must be a string")
    view = panel().context.actions.edit(
        action_id,
        title=body.get("title"),
        description=body.get("description"),
        actor=info.username,
        source=_source(),
    )
    return jsonify(_view(view))


@bp.route("/actions/<int:action_id>/start", methods=["POST"])
def start_action(action_id: int) -> Response:
    info = _require(ACTION_ROLES)
    _existing(action_id)
    return jsonify(_view(panel().context.actions.start(action_id, actor=info.username, source=_source())))


@bp.route("/actions/<int:action_id>/close", methods=["POST"])
def close_action(action_id: int) -> Response:
    info = _require(ACTION_ROLES)
    _existing(action_id)
    body = _body()
    # Since the structured outcomes the kind is required (a client that sends only the free text gets this
    # error, not a silent "other"); "outcome" is the internal note, needed with "other".
    outcome_kind = body.get("outcome_kind")
    if outcome_kind not in OUTCOME_KINDS:
        raise InputInvalid(f"outcome_kind is required: one of {', '.join(OUTCOME_KINDS)}")
    outcome = body.get("outcome", "")
    if not isinstance(outcome, str):
        raise InputInvalid("outcome (the internal note) must be a string")
    view = panel().context.actions.close(
        action_id,
        outcome_kind=str(outcome_kind),
        outcome=outcome,
        result_message=str(body.get("result_message", "")),
        actor=info.username,
        source=_source(),
    )
    return jsonify(_view(view))


@bp.route("/actions/<int:action_id>/callbacks", methods=["GET"])
def callbacks(action_id: int) -> Response:
    """Calls about the action and the tips left, with the numbers: need-to-know (not for
    viewers; a centralist only for their region's actions or a team they are on); audited."""
    info = _require(ACTION_ROLES)
    _existing(action_id)
    found_calls, found_tips = _actions().callbacks(action_id, _reader(info))
    tips = []
    for tip in found_tips:
        item = _view(tip)
        item.pop("recording_path", None)  # a server path; the audio is served by the panel
        item["audio_url"] = f"/tips/{tip.id}/audio"
        tips.append(item)
    calls = []
    for call in found_calls:
        item = _view(call)
        item.pop("recording_path", None)
        calls.append(item)
    return jsonify({"action_id": action_id, "calls": calls, "tips": tips})


@bp.route("/actions/<int:action_id>/recording", methods=["POST"])
def upload_recording(action_id: int) -> tuple[Response, int]:
    """The alert message as recorded by a centralist (multipart ``file``, optional ``lang``)."""
    info = _require(ACTION_ROLES)
    _existing(action_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InputInvalid("send the recording as a multipart form field named 'file'")
    lang = request.form.get("lang") or None
    if lang not in (None, "nl", "en"):
        raise InputInvalid("lang must be nl or en (or left out for every language)")
    seconds = _actions().store_recording(
        action_id, upload.read(), upload.filename, lang, actor=info.username, source=_source()
    )
    return jsonify({"action_id": action_id, "lang": lang, "seconds": round(seconds, 2)}), 201


@bp.route("/actions/<int:action_id>/broadcasts", methods=["GET"])
def action_broadcasts(action_id: int) -> Response:
    """The action's alert, updates and result message with their delivery counts (no personal data)."""
    _require(ALL_ROLES)
    _existing(action_id)
    return jsonify({"action_id": action_id, "broadcasts": _actions().broadcast_documents(action_id)})


@bp.route("/broadcasts/<int:broadcast_id>", methods=["GET"])
def get_broadcast(broadcast_id: int) -> Response:
    _require(ALL_ROLES)
    return jsonify(_actions().broadcast_document(broadcast_id))


@bp.route("/actions/<int:action_id>/updates", methods=["POST"])
def send_update(action_id: int) -> tuple[Response, int, dict[str, str]]:
    """An update about an active action to everyone its alert reached; 201 with the broadcast."""
    info = _require(ACTION_ROLES)
    _existing(action_id)
    message = _body().get("message")
    if not isinstance(message, str) or not message.strip():
        raise RequestInvalid("message is required: the text of the update")
    if len(message) > UPDATE_MAX_CHARS:
        raise RequestInvalid(f"message is longer than {UPDATE_MAX_CHARS} characters")
    # The message was checked above: what the service may still refuse is the action's state
    # (not active: 409 action.invalid_state).
    broadcast_id = panel().context.actions.send_update(
        action_id, message, actor=info.username, source=_source()
    )
    try:
        body = _actions().broadcast_document(broadcast_id)
    except BroadcastNotFound:
        body = {"broadcast_id": broadcast_id, "action_id": action_id}
    location = url_for("api.get_broadcast", broadcast_id=broadcast_id)
    return jsonify(body), 201, {"Location": location}

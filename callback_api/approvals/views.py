"""Four-eyes approval: ask for it from an action's page, the approvers' list with Approve and
Refuse (``/approvals``), and the same in the API (``/api/v1/...``, bearer token like the rest
of it). Views parse, call :mod:`burgernet.approvals` through :mod:`.services`, and render."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from burgernet.actions import ActionError, ActionView
from burgernet.approvals import ApprovalError, ApprovalService, ApprovalView
from callback_api.api.services import TokenAuth
from callback_api.approvals.forms import RefuseForm
from callback_api.approvals.services import approval_service, refusal_status
from callback_api.auth.services import UserInfo
from callback_api.errors import InputInvalid, RequestInvalid, current_request_id, error_body
from callback_api.forms import ConfirmForm
from callback_api.i18n import translate
from callback_api.local_time import iso_utc
from callback_api.security import ACTION_ROLES, audit_source, roles_required, user
from callback_api.state import panel

log = logging.getLogger(__name__)
bp = Blueprint("approvals", __name__)
api_bp = Blueprint("approvals_api", __name__, url_prefix="/api/v1")


def service() -> ApprovalService:
    return approval_service(panel().context)


# --- panel ---------------------------------------------------------------------------------------------
@bp.route("/approvals")
@roles_required(ACTION_ROLES)
def index() -> str:
    """Requests waiting for an approver: what the alert would reach, who asked, time left."""
    approvals = service()
    return render_template(
        "approvals/index.html",
        requests=approvals.pending(),
        approver=approvals.user_is_approver(user().username),
        me=user().username,
        confirm=ConfirmForm(),
        refuse_form=RefuseForm(),
    )


@bp.route("/actions/<int:action_id>/approval", methods=["POST"])
@roles_required(ACTION_ROLES)
def request_start(action_id: int) -> Response:
    """Ask a second person to start this draft (instead of Start, for actions that need it)."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        view = service().request_start(action_id, actor=user().username, source=audit_source())
    except ApprovalError as exc:
        flash(str(exc), "error")
    else:
        minutes = max(1, round((view.expires_at - view.requested_at).total_seconds() / 60))
        flash(
            translate(
                "Approval requested: an approver must approve within %(minutes)s minutes.", minutes=minutes
            ),
            "success",
        )
    return redirect(url_for("actions.detail", action_id=action_id))


@bp.route("/approvals/<int:request_id>/approve", methods=["POST"])
@roles_required(ACTION_ROLES)
def approve(request_id: int) -> Response:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        view = service().approve(request_id, approver=user().username, source=audit_source())
    except (ApprovalError, ActionError) as exc:
        flash(translate("Not approved: %(why)s", why=str(exc)), "error")
        return redirect(url_for("approvals.index"))
    flash(translate("Approved: action %(id)s started.", id=view.id), "success")
    return redirect(url_for("actions.detail", action_id=view.id))


@bp.route("/approvals/<int:request_id>/refuse", methods=["POST"])
@roles_required(ACTION_ROLES)
def refuse(request_id: int) -> Response:
    form = RefuseForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        flash(translate("Say why the start is refused."), "error")
        return redirect(url_for("approvals.index"))
    try:
        view = service().refuse(
            request_id, approver=user().username, reason=form.reason.data or "", source=audit_source()
        )
    except ApprovalError as exc:
        flash(translate("Not refused: %(why)s", why=str(exc)), "error")
        return redirect(url_for("approvals.index"))
    flash(translate("Refused: action %(id)s stays a draft.", id=view.action_id), "success")
    return redirect(url_for("approvals.index"))


# --- API -----------------------------------------------------------------------------------------------
def _api_user() -> UserInfo:
    return TokenAuth(panel().context).user(request.headers.get("Authorization", ""), ACTION_ROLES)


def _source() -> str:
    return f"api {request.remote_addr or 'unknown'}"[:80]


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, tuple | list):
        return [_value(item) for item in value]
    return value


def _refused(error: ApprovalError) -> tuple[Response, int]:
    """Not this user's decision: 403 with the domain's code; else the app's own answer."""
    status = refusal_status(error)
    if status is None:
        raise error
    log.info(
        "request %s: %s %s → %s %s", current_request_id(), request.method, request.path, status, error.code
    )
    return jsonify(error_body(status, str(error), error.code)), status


def document(view: ApprovalView | ActionView) -> dict[str, Any]:
    """As JSON: every time ISO 8601 with an offset (UTC)."""
    return {key: _value(value) for key, value in dataclasses.asdict(view).items()}


@api_bp.route("/approvals", methods=["GET"])
def api_pending() -> Response:
    """Requests waiting for an approver, oldest first."""
    _api_user()
    return jsonify({"approvals": [document(view) for view in service().pending()]})


@api_bp.route("/approvals/<int:request_id>", methods=["GET"])
def api_get(request_id: int) -> Response:
    _api_user()
    return jsonify(document(service().get(request_id)))


@api_bp.route("/actions/<int:action_id>/approval", methods=["POST"])
def api_request(action_id: int) -> tuple[Response, int, dict[str, str]]:
    """Ask for approval to start a draft that needs it; 201 with the request."""
    info = _api_user()
    view = service().request_start(action_id, actor=info.username, source=_source())
    return jsonify(document(view)), 201, {"Location": url_for("approvals_api.api_get", request_id=view.id)}


@api_bp.route("/approvals/<int:request_id>/approve", methods=["POST"])
def api_approve(request_id: int) -> Response | tuple[Response, int]:
    """Approve: the action starts, the approver as its actor."""
    info = _api_user()
    approvals = service()
    try:
        action = approvals.approve(request_id, approver=info.username, source=_source())
    except ApprovalError as exc:
        return _refused(exc)
    return jsonify({"approval": document(approvals.get(request_id)), "action": document(action)})


@api_bp.route("/approvals/<int:request_id>/refuse", methods=["POST"])
def api_refuse(request_id: int) -> Response | tuple[Response, int]:
    """Refuse with a reason: the action stays a draft."""
    info = _api_user()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise RequestInvalid("the body must be a JSON object (Content-Type: application/json)")
    reason = body.get("reason")
    if not isinstance(reason, str):
        raise InputInvalid("reason is required: why the start is refused")
    try:
        view = service().refuse(request_id, approver=info.username, reason=reason, source=_source())
    except ApprovalError as exc:
        return _refused(exc)
    return jsonify(document(view))

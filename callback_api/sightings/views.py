"""Sightings in the panel (``/actions/<id>/sightings…``) and the API (``/api/v1/actions/<id>/sightings``).

A sighting sent from the participant app that still has its reply channel gets a small form
"Ask back" in the list: the question goes to that phone as one push (``…/<sid>/ask``).

The form posts to the same URL from the action page (its script sends it with fetch and shows
errors in place) or from the standalone form page (``…/sightings/new``, linked from the call
card): without a script a refused sighting comes back on the standalone page with what was typed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, send_file, url_for
from werkzeug.wrappers import Response

from broadcasting.service import InvalidQuestion, NoReplyChannel
from burgernet.errors import DomainError
from burgernet.sightings import SightingView
from callback_api.access import Reader
from callback_api.api.services import TokenAuth
from callback_api.errors import InputInvalid, RequestInvalid, status_of
from callback_api.i18n import translate
from callback_api.local_time import PANEL_ZONE, iso_utc
from callback_api.security import ACTION_ROLES, ALL_ROLES, audit_source, reader, roles_required, user
from callback_api.sightings.services import AskBackUnavailable, SightingPanelService, parse_form
from callback_api.state import panel

bp = Blueprint("sightings", __name__)
api_bp = Blueprint("sightings_api", __name__, url_prefix="/api/v1")


def service() -> SightingPanelService:
    state = panel()
    return SightingPanelService(state.context, state.settings, state.broadcasts)


def document(view: SightingView) -> dict[str, Any]:
    """A sighting as JSON: times ISO 8601 with an offset (UTC)."""
    body = view.as_dict()
    body["seen_at"] = iso_utc(view.seen_at)
    body["created_at"] = iso_utc(view.created_at)
    return body


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _form_page(action_id: int, values: dict[str, str], error: str | None = None) -> str:
    who = reader()
    return render_template(
        "sightings/new.html",
        action=panel().context.actions.get(action_id),
        choices=service().choices(who, action_id),
        values=values,
        error=error,
    )


def default_values(call_id: str | None = None) -> dict[str, str]:
    return {"seen_at": datetime.now(PANEL_ZONE).strftime("%Y-%m-%dT%H:%M"), "call_id": call_id or ""}


@bp.route("/actions/<int:action_id>/sightings/new")
@roles_required(ACTION_ROLES)
def new(action_id: int) -> str:
    return _form_page(action_id, default_values(request.args.get("call")))


@bp.route("/actions/<int:action_id>/sightings", methods=["POST"])
@roles_required(ACTION_ROLES)
def record(action_id: int) -> Response | tuple[Response, int] | tuple[str, int]:
    values = {key: str(value) for key, value in request.form.items() if key != "csrf_token"}
    try:
        view = service().record(
            reader(), action_id, parse_form(values), actor=user().username, source=audit_source()
        )
    except DomainError as exc:
        if _wants_json():
            return jsonify({"error": str(exc), "error_id": exc.code}), status_of(exc)
        return _form_page(action_id, values, str(exc)), status_of(exc)
    if _wants_json():
        return jsonify(document(view)), 201
    flash(translate("Sighting recorded."), "success")
    return redirect(url_for("actions.detail", action_id=action_id) + "#sightings-title")


@bp.route("/actions/<int:action_id>/sightings.json")
@roles_required(ALL_ROLES)
def markers(action_id: int) -> Response:
    """The action's sightings for its map (need-to-know: 403 without); only those with a place
    (an app sighting may have none: it is in the list, not on the map)."""
    located = [v for v in service().list(reader(), action_id) if v.lat is not None and v.lon is not None]
    return jsonify({"sightings": [document(v) for v in located]})


@bp.route("/actions/<int:action_id>/sightings/list")
@roles_required(ALL_ROLES)
def listing(action_id: int) -> str:
    """The sightings section's list alone: what the action page fetches when one is added."""
    return render_template(
        "sightings/_list.html", sightings=service().list(reader(), action_id), action_id=action_id
    )


@bp.route("/actions/<int:action_id>/sightings/<int:sighting_id>/photo")
@roles_required(ACTION_ROLES)
def photo(action_id: int, sighting_id: int) -> Response:
    return send_file(service().photo(reader(), action_id, sighting_id), max_age=0)


@bp.route("/actions/<int:action_id>/sightings/<int:sighting_id>/ask", methods=["POST"])
@roles_required(ACTION_ROLES)
def ask_back(action_id: int, sighting_id: int) -> Response | tuple[Response, int]:
    """Ask the participant a question back, on the phone the sighting came from."""
    question = str(request.form.get("question") or "")
    back = redirect(url_for("actions.detail", action_id=action_id) + "#sightings-title")
    try:
        service().ask_back(reader(), action_id, sighting_id, question, user=user().username)
    except (InvalidQuestion, NoReplyChannel, AskBackUnavailable) as exc:
        if _wants_json():
            return jsonify({"error": str(exc), "error_id": exc.code}), status_of(exc)
        flash(translate("The question was not sent: %(why)s", why=str(exc)), "error")
        return back
    if _wants_json():
        return jsonify({"sent": True}), 202
    flash(translate("Question sent to the participant's phone."), "success")
    return back


# --- API ----------------------------------------------------------------------------------------------------
def _api_reader(roles: frozenset[Any]) -> Reader:
    info = TokenAuth(panel().context).user(request.headers.get("Authorization", ""), roles)
    return Reader(
        info.username, info.role, info.centralist_id, f"api {request.remote_addr or 'unknown'}"[:80]
    )


@api_bp.route("/actions/<int:action_id>/sightings", methods=["GET"])
def api_list(action_id: int) -> Response:
    """The action's sightings, most recently seen first (need-to-know, like its callbacks)."""
    who = _api_reader(ACTION_ROLES)
    return jsonify(
        {"action_id": action_id, "sightings": [document(v) for v in service().list(who, action_id)]}
    )


@api_bp.route("/actions/<int:action_id>/sightings", methods=["POST"])
def api_record(action_id: int) -> tuple[Response, int, dict[str, str]]:
    """Record a sighting: seen_at (ISO 8601 with an offset), lat, lon, reliability; optional
    direction, description, call_id, statement_id. 201 with the sighting."""
    who = _api_reader(ACTION_ROLES)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise RequestInvalid("the body must be a JSON object (Content-Type: application/json)")
    seen_at = body.get("seen_at")
    if not isinstance(seen_at, str):
        raise InputInvalid("seen_at is required: ISO 8601 with an offset, e.g. 2026-07-01T14:05:00+02:00")
    try:
        if datetime.fromisoformat(seen_at).tzinfo is None:
            raise InputInvalid("seen_at needs an offset (…+02:00 or …Z)")
    except ValueError:
        raise InputInvalid(f"seen_at is not ISO 8601: {seen_at!r}") from None
    for field in ("lat", "lon"):
        if not isinstance(body.get(field), int | float):
            raise InputInvalid(f"{field} is required: a number (WGS84)")
    values = {
        "seen_at": seen_at,
        "lat": str(body["lat"]),
        "lon": str(body["lon"]),
        "reliability": str(body.get("reliability", "")),
        "direction": str(body.get("direction") or ""),
        "description": str(body.get("description") or ""),
        "call_id": str(body.get("call_id") or ""),
        "statement_id": str(body.get("statement_id") or ""),
    }
    view = service().record(who, action_id, parse_form(values), actor=who.username, source=who.source)
    location = url_for("sightings_api.api_list", action_id=action_id)
    return jsonify(document(view)), 201, {"Location": location}

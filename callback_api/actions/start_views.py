"""The new-action page's helpers (JSON for static/action_start.js): the search box, the team
with its live state, the preview per channel and language, and the voice preview's sound; and
the dashboard's overview of the active actions with their counters.

Routes hang on the actions blueprint, so they keep the ``/actions/...`` URLs and the
``actions.*`` endpoint names.
"""

from __future__ import annotations

import dataclasses

from flask import jsonify, request, send_file
from werkzeug.wrappers import Response

from burgernet.domain import Channel, Language
from burgernet.message_templates import TemplateError
from callback_api.actions.overview import OverviewService
from callback_api.actions.start import StartService
from callback_api.actions.views import bp
from callback_api.areas import AreaInputError, area_from_fields
from callback_api.i18n import translate
from callback_api.security import ACTION_ROLES, ALL_ROLES, roles_required, user
from callback_api.state import panel
from recordings.convert import AudioError

MAX_QUERY = 200
# A team member's state as the operator reads it (the dashboard's words where they exist).
STATE_LABELS = {
    "available": "Available",
    "in a call": "In a call",
    "off duty": "Off duty",
    "offline": "Offline",
    "on duty": "On duty",
}


def start_service() -> StartService:
    state = panel()
    return StartService(state.context, state.settings)


@bp.route("/actions/places")
@roles_required(ACTION_ROLES)
def places() -> Response:
    """The search box: a postcode (PC4, PC6), a street and number, or a place name."""
    query = (request.args.get("q") or "")[:MAX_QUERY]
    return jsonify({"query": query, "results": start_service().places(query)})


@bp.route("/actions/team.json")
@roles_required(ACTION_ROLES)
def team() -> Response:
    """The region's centralists with their live state; the signed-in user's endpoint first."""
    service = start_service()
    own = service.own_endpoint(user().info.centralist_id)
    members = service.team(request.args.get("region", ""), own)
    rows = [{**dataclasses.asdict(m), "state_label": translate(STATE_LABELS[m.state])} for m in members]
    return jsonify({"members": rows, "reachable": sum(1 for m in members if m.reachable)})


def _preview_fields() -> dict[str, object]:
    form = request.form
    channels = [c for c in form.getlist("channels") if c in {ch.value for ch in Channel}]
    return {
        "action_type": form.get("action_type", ""),
        "title": form.get("title", ""),
        "description": form.get("description", ""),
        "region_code": form.get("region", ""),
        "area": area_from_fields(form.get("area_kind", ""), form),
        "channels": channels,
        "urgency": form.get("urgency", ""),
    }


@bp.route("/actions/preview", methods=["POST"])
@roles_required(ACTION_ROLES)
def preview() -> Response | tuple[Response, int]:
    """Every message of the alert, per channel and language, with the recipients per channel
    and the active actions of the same type that overlap (form fields; CSRF in X-CSRFToken)."""
    try:
        result = start_service().preview(**_preview_fields())  # type: ignore[arg-type]
    except (AreaInputError, TemplateError) as exc:
        return jsonify({"error": str(exc)}), 400
    return jsonify(result.as_dict())


@bp.route("/actions/preview/voice", methods=["POST"])
@roles_required(ACTION_ROLES)
def voice_preview() -> Response | tuple[Response, int]:
    """The voice message of one language, spoken (the same rendering as the preview's text)."""
    language = request.form.get("lang", "")
    if language not in {lang.value for lang in Language}:
        return jsonify({"error": "lang is nl or en"}), 400
    service = start_service()
    try:
        fields = _preview_fields()
        fields["channels"] = [Channel.VOICE.value]
        result = service.preview(**fields)  # type: ignore[arg-type]
        text = next(m.body for m in result.messages if m.language == language)
        path = service.voice_preview(language, text)
    except (AreaInputError, TemplateError) as exc:
        return jsonify({"error": str(exc)}), 400
    except AudioError as exc:
        return jsonify({"error": f"the text could not be spoken: {exc}"}), 503
    return send_file(path, mimetype="audio/wav", max_age=0)


@bp.route("/actions/overview.json")
@roles_required(ALL_ROLES)
def overview() -> Response:
    """The dashboard's side panel: each active action's reached people, calls and tips, and the
    tips no action was found for."""
    state = panel()
    return jsonify(OverviewService(state.context, state.broadcasts).overview().as_dict())

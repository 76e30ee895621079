"""The dashboard: active actions on a map, centralist availability, broadcasts under way, the
live call feed (SSE)."""

from __future__ import annotations

import dataclasses

from flask import Blueprint, Response, jsonify, render_template

from callback_api.dashboard.services import DashboardService
from callback_api.i18n import translate
from callback_api.security import ALL_ROLES, roles_required
from callback_api.state import panel

bp = Blueprint("dashboard", __name__)


def service() -> DashboardService:
    state = panel()
    return DashboardService(state.context, state.broadcasts)


@bp.route("/")
@roles_required(ALL_ROLES)
def index() -> str:
    return render_template("dashboard.html", broadcast_labels=_broadcast_labels())


def _broadcast_labels() -> dict[str, str]:
    """The words dashboard.js puts next to the progress bars, in the user's language."""
    words = ("alert", "update", "result", "pending", "running", "done", "cancelled")
    return {
        **{word: translate(word) for word in words},
        "progress": translate(
            "%(handled)s of %(total)s handled (%(percent)s %%)",
            handled="{handled}",
            total="{total}",
            percent="{percent}",
        ),
    }


@bp.route("/dashboard/broadcasts.json")
@roles_required(ALL_ROLES)
def current_broadcasts() -> Response:
    """Broadcasts of active actions still pending or running: the bars before live events move them."""
    return jsonify({"broadcasts": service().broadcasts_under_way()})


@bp.route("/dashboard/actions.geojson")
@roles_required(ALL_ROLES)
def active_actions() -> Response:
    return jsonify({"type": "FeatureCollection", "features": service().active_action_features()})


@bp.route("/dashboard/regions.geojson")
@roles_required(ALL_ROLES)
def regions() -> Response:
    response = jsonify({"type": "FeatureCollection", "features": service().region_features()})
    response.cache_control.max_age = 300
    return response


@bp.route("/dashboard/presence.json")
@roles_required(ALL_ROLES)
def presence() -> Response:
    return jsonify([dataclasses.asdict(row) for row in service().presence()])

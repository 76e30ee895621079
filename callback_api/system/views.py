"""The system status page (admins and operators) and ``/healthz`` (anyone: the supervisor,
a load balancer; it names no secret and no personal data)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template

from burgernet.domain import Role
from callback_api.security import roles_required
from callback_api.state import panel
from callback_api.system.services import PanelHealth, SystemStatusService

bp = Blueprint("system", __name__)

# The people who act on a restart: the admin (telecom side) and the operators (coordinators).
SYSTEM_ROLES = frozenset({Role.ADMIN, Role.OPERATOR})


@bp.route("/system")
@roles_required(SYSTEM_ROLES)
def status() -> str:
    return render_template("system.html", status=SystemStatusService(panel().context).status())


@bp.route("/healthz")
def healthz() -> Response:
    checker: PanelHealth = current_app.extensions["burgernet.health"]
    response = jsonify(checker.report())
    response.headers["Cache-Control"] = "no-store"
    return response

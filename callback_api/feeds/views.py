"""Public AMBER Alert feeds (CAP 1.2, Atom, JSON Feed) and the full-screen display page.

Public on purpose: screens, matrix boards and websites poll them without an account. Only AMBER
Alerts are published, and a child's photo only while the alert is active.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify, render_template, send_file
from sqlalchemy import select

from burgernet.db import session_scope
from burgernet.domain import ActionStatus, ActionType
from burgernet.models import Action
from burgernet.phone import free_number_display
from callback_api.feeds.services import (
    AmberAlert,
    amber_alerts,
    atom_document,
    cap_document,
)
from callback_api.feeds.services import json_feed as build_json_feed
from callback_api.photos import photo_file
from callback_api.state import panel

bp = Blueprint("feeds", __name__)

POLL_SECONDS = 30


def _alerts() -> list[AmberAlert]:
    with session_scope(panel().context.sessions) as session:
        return amber_alerts(session)


def _public(response: Response) -> Response:
    response.cache_control.public = True
    response.cache_control.max_age = POLL_SECONDS
    response.headers["Access-Control-Allow-Origin"] = "*"  # websites may poll from the browser
    return response


@bp.route("/feeds/amber.cap.xml")
def cap_latest() -> Response:
    """The current AMBER Alert (or the latest all-clear) as one CAP 1.2 message; 404 when none."""
    alerts = _alerts()
    if not alerts:
        abort(404, "no AMBER Alert")
    return _public(Response(cap_document(alerts[0], panel().settings), mimetype="application/cap+xml"))


@bp.route("/feeds/amber/<int:action_id>.cap.xml")
def cap_one(action_id: int) -> Response:
    alert = next((a for a in _alerts() if a.id == action_id), None)
    if alert is None:
        abort(404)
    return _public(Response(cap_document(alert, panel().settings), mimetype="application/cap+xml"))


@bp.route("/feeds/amber.atom")
def atom() -> Response:
    return _public(Response(atom_document(_alerts(), panel().settings), mimetype="application/atom+xml"))


@bp.route("/feeds/amber.json")
def json_feed() -> Response:
    response = jsonify(build_json_feed(_alerts(), panel().settings))
    response.mimetype = "application/feed+json"
    return _public(response)


@bp.route("/feeds/amber/<int:action_id>/photo")
def photo(action_id: int) -> Response:
    with session_scope(panel().context.sessions) as session:
        stored = session.scalar(
            select(Action.photo_path).where(
                Action.id == action_id,
                Action.action_type == ActionType.AMBER_ALERT.value,
                Action.status == ActionStatus.ACTIVE.value,
            )
        )
    path = photo_file(panel().settings, stored)
    if path is None:
        abort(404)
    return _public(send_file(path, max_age=POLL_SECONDS))


@bp.route("/amber")
@bp.route("/amber/<int:action_id>")
def display(action_id: int | None = None) -> Response:
    alerts = _alerts()
    if action_id is not None:
        alerts = [a for a in alerts if a.id == action_id]
        if not alerts:
            abort(404)
    number = free_number_display(panel().settings.asterisk.free_number)
    html = render_template("amber_display.html", alerts=alerts, number=number, poll_seconds=POLL_SECONDS)
    response = Response(html, mimetype="text/html")
    response.headers["X-Burgernet-Frameable"] = "1"  # screens may embed this page (see app.py)
    return response

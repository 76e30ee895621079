"""Public AMBER Alert feeds (CAP 1.2, Atom, JSON Feed) and the full-screen display page.

Public on purpose: screens, matrix boards and websites poll them without an account. Only AMBER
Alerts are published, and a child's photo only while the alert is active.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify, render_template, send_file

from burgernet.phone import free_number_display
from callback_api.feeds.services import FeedService, atom_document, cap_document
from callback_api.feeds.services import json_feed as build_json_feed
from callback_api.state import panel

bp = Blueprint("feeds", __name__)

POLL_SECONDS = 30


def service() -> FeedService:
    state = panel()
    return FeedService(state.context, state.settings)


def _public(response: Response) -> Response:
    response.cache_control.public = True
    response.cache_control.max_age = POLL_SECONDS
    response.headers["Access-Control-Allow-Origin"] = "*"  # websites may poll from the browser
    return response


@bp.route("/feeds/amber.cap.xml")
def cap_latest() -> Response:
    """The current AMBER Alert (or the latest all-clear) as one CAP 1.2 message; 404 when none."""
    alerts = service().alerts()
    if not alerts:
        abort(404, "no AMBER Alert")
    return _public(Response(cap_document(alerts[0], panel().settings), mimetype="application/cap+xml"))


@bp.route("/feeds/amber/<int:action_id>.cap.xml")
def cap_one(action_id: int) -> Response:
    alert = service().alert(action_id)
    if alert is None:
        abort(404)
    return _public(Response(cap_document(alert, panel().settings), mimetype="application/cap+xml"))


@bp.route("/feeds/amber.atom")
def atom() -> Response:
    document = atom_document(service().alerts(), panel().settings)
    return _public(Response(document, mimetype="application/atom+xml"))


@bp.route("/feeds/amber.json")
def json_feed() -> Response:
    response = jsonify(build_json_feed(service().alerts(), panel().settings))
    response.mimetype = "application/feed+json"
    return _public(response)


@bp.route("/feeds/amber/<int:action_id>/photo")
def photo(action_id: int) -> Response:
    path = service().photo(action_id)
    if path is None:
        abort(404)
    return _public(send_file(path, max_age=POLL_SECONDS))


@bp.route("/amber")
@bp.route("/amber/<int:action_id>")
def display(action_id: int | None = None) -> Response:
    alerts = service().alerts()
    if action_id is not None:
        alerts = [a for a in alerts if a.id == action_id]
        if not alerts:
            abort(404)
    number = free_number_display(panel().settings.asterisk.free_number)
    html = render_template("amber_display.html", alerts=alerts, number=number, poll_seconds=POLL_SECONDS)
    response = Response(html, mimetype="text/html")
    response.headers["X-Burgernet-Frameable"] = "1"  # screens may embed this page (see app.py)
    return response

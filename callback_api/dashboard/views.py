"""The dashboard: active actions on a map, centralist availability, broadcasts under way, the
live call feed (SSE)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, stream_with_context
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from burgernet.db import session_scope
from burgernet.domain import ActionStatus, Role
from burgernet.models import Action, Centralist, Region
from callback_api.actions import broadcasts
from callback_api.areas import action_feature
from callback_api.i18n import translate
from callback_api.security import ALL_ROLES, roles_required, user
from callback_api.state import panel

bp = Blueprint("dashboard", __name__)

HEARTBEAT_SECONDS = 15.0
# Fields of live events that carry a caller's number: hidden from viewers.
PERSONAL_FIELDS = frozenset({"caller", "caller_number", "number", "phone", "callback_number"})


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
    state = panel()
    return jsonify({"broadcasts": broadcasts.under_way(state.context.sessions, state.broadcasts)})


@bp.route("/dashboard/actions.geojson")
@roles_required(ALL_ROLES)
def active_actions() -> Response:
    with session_scope(panel().context.sessions) as session:
        rows = session.scalars(
            select(Action)
            .where(Action.status == ActionStatus.ACTIVE.value)
            .options(selectinload(Action.region))
            .order_by(Action.id)
        )
        features = [action_feature(session, action) for action in rows]
    return jsonify({"type": "FeatureCollection", "features": features})


@bp.route("/dashboard/regions.geojson")
@roles_required(ALL_ROLES)
def regions() -> Response:
    with session_scope(panel().context.sessions) as session:
        features = [
            {"type": "Feature", "geometry": json.loads(boundary), "properties": {"code": code, "name": name}}
            for code, name, boundary in session.execute(
                select(Region.code, Region.name, Region.boundary_geojson).order_by(Region.code)
            )
            if boundary
        ]
    response = jsonify({"type": "FeatureCollection", "features": features})
    response.cache_control.max_age = 300
    return response


@bp.route("/dashboard/presence.json")
@roles_required(ALL_ROLES)
def presence() -> Response:
    live = panel().context.live.presence()
    with session_scope(panel().context.sessions) as session:
        rows = session.execute(
            select(Centralist.sip_endpoint, Centralist.name, Centralist.on_duty, Region.code)
            .join(Region, Region.id == Centralist.region_id)
            .order_by(Region.code, Centralist.sip_endpoint)
        ).all()
    return jsonify(
        [
            {
                "endpoint": endpoint,
                "name": name,
                "on_duty": bool(on_duty),
                "region": region,
                "presence": live[endpoint].value if endpoint in live else "unknown",
            }
            for endpoint, name, on_duty, region in rows
        ]
    )


def _sse(event: dict[str, Any]) -> str:
    kind = str(event.get("type", "message")).replace("\n", " ")[:40]
    return f"event: {kind}\ndata: {json.dumps(event, default=str)}\n\n"


def event_stream(mask_personal: bool) -> Iterator[str]:
    """Redis pub/sub → server-sent events, with a heartbeat so proxies keep the stream open."""
    live = panel().context.live
    pubsub = live.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(live.keys.events)
    try:
        # Sent once subscribed: a client (or test) knows no event published after this is lost.
        yield "retry: 3000\n: subscribed\n\n"
        last = time.monotonic()
        while True:
            message = pubsub.get_message(timeout=1.0)
            if message is None:
                if time.monotonic() - last >= HEARTBEAT_SECONDS:
                    last = time.monotonic()
                    yield ": keepalive\n\n"
                continue
            try:
                event = json.loads(message["data"])
            except (TypeError, ValueError):
                continue
            if not isinstance(event, dict):
                continue
            if mask_personal:
                event = {k: ("****" if k in PERSONAL_FIELDS else v) for k, v in event.items()}
            last = time.monotonic()
            yield _sse(event)
    finally:
        pubsub.close()


@bp.route("/events")
@roles_required(ALL_ROLES)
def events() -> Response:
    stream = event_stream(mask_personal=user().role is Role.VIEWER)
    response = Response(stream_with_context(stream), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response

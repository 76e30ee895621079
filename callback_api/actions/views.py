"""Actions: list, create, start, close; the detail page with timeline, calls, tips, the map and
the broadcasts (live progress, updates to everyone the alert reached)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from broadcasting.recipients import count_inside
from burgernet.actions import ActionError, ActionView
from burgernet.calls import CallLog, CallView, TipView
from burgernet.db import session_scope
from burgernet.domain import ActionStatus, Role
from burgernet.models import Action, ActionCentralist, AuditEvent, Centralist, Region, Tip
from burgernet.repositories import action_area
from callback_api.actions import broadcasts as broadcast_views
from callback_api.actions.broadcasts import UPDATE_MAX_CHARS
from callback_api.actions.recordings import store_alert_recording
from callback_api.areas import (
    AreaInputError,
    action_feature,
    area_from_fields,
    routing_area,
    split_list,
)
from callback_api.forms import ActionForm, CloseForm, ConfirmForm, RecordingForm
from callback_api.i18n import current_language, translate
from callback_api.photos import PhotoError, check_photo, photo_file, store_photo
from callback_api.security import ACTION_ROLES, ALL_ROLES, audit_source, can, roles_required, user
from callback_api.state import panel
from recordings.convert import AudioError
from recordings.messages import recorded_message_path

bp = Blueprint("actions", __name__)
# Actions per page of the list, and calls shown on an action's page (newest).
PAGE_SIZE = 100
CALLS_SHOWN = 200


class UpdateForm(FlaskForm):
    """An update about an active action, to everyone its alert reached (CSRF like every form)."""

    message = TextAreaField(
        "Update to everyone the alert reached", validators=[DataRequired(), Length(max=UPDATE_MAX_CHARS)]
    )


@dataclass(frozen=True)
class TimelineEntry:
    at: Any
    actor: str
    verb: str
    detail: dict[str, Any]
    source: str | None


def mask_number(number: str | None) -> str:
    """Viewers see that someone called, not who: ``+3161234****``."""
    if not number:
        return ""
    return number[:-4] + "****" if len(number) > 6 else "****"


def _regions() -> list[tuple[str, str]]:
    with session_scope(panel().context.sessions) as session:
        return [
            (code, f"{code} — {name}")
            for code, name in session.execute(select(Region.code, Region.name).order_by(Region.code))
        ]


def _centralists() -> list[tuple[str, str, str]]:
    with session_scope(panel().context.sessions) as session:
        rows = session.execute(
            select(Centralist.sip_endpoint, Centralist.name, Region.code)
            .join(Region, Region.id == Centralist.region_id)
            .order_by(Region.code, Centralist.sip_endpoint)
        )
        return [(endpoint, name, code) for endpoint, name, code in rows]


def _action_or_404(action_id: int) -> ActionView:
    try:
        return panel().context.actions.get(action_id)
    except ActionError:
        abort(404)


@bp.route("/actions")
@roles_required(ALL_ROLES)
def index() -> str:
    status = request.args.get("status") or None
    if status not in {None, *(s.value for s in ActionStatus)}:
        abort(400, "unknown status")
    before = request.args.get("before", type=int)
    actions = panel().context.actions.list_actions(status, limit=PAGE_SIZE + 1, before_id=before)
    older = actions[PAGE_SIZE - 1].id if len(actions) > PAGE_SIZE else None
    return render_template("actions/index.html", actions=actions[:PAGE_SIZE], status=status, older=older)


@bp.route("/actions/new", methods=["GET", "POST"])
@roles_required(ACTION_ROLES)
def new() -> str | Response | tuple[str, int]:
    form = ActionForm()
    form.fill_choices(_regions(), current_language())
    if request.method == "GET":
        return render_template("actions/new.html", form=form, centralists=_centralists(), errors=[])
    errors: list[str] = []
    if not form.validate_on_submit():
        errors = [f"{form[name].label.text}: {', '.join(msgs)}" for name, msgs in form.errors.items()]
        return render_template("actions/new.html", form=form, centralists=_centralists(), errors=errors), 400
    state = panel()
    photo = None
    upload: Any = form.photo.data  # a werkzeug FileStorage, or None
    try:
        area = area_from_fields(
            form.area_kind.data or "",
            {
                "lon": form.lon.data,
                "lat": form.lat.data,
                "radius_m": form.radius_m.data,
                "geojson": form.geojson.data,
                "postcodes": form.postcodes.data,
            },
        )
        if upload is not None and upload.filename:
            photo = check_photo(upload.read())  # before anything is created: a bad photo loses nothing
        view = state.context.actions.create(
            action_type=form.action_type.data or "",
            title=form.title.data or "",
            description=form.description.data or "",
            region_code=form.region.data or "",
            area=area,
            team=split_list(form.team.data or ""),
            actor=user().username,
            source=audit_source(),
        )
    except (AreaInputError, PhotoError, ActionError) as exc:
        errors.append(str(exc))
        return render_template("actions/new.html", form=form, centralists=_centralists(), errors=errors), 400
    if photo is not None:
        store_photo(
            state.settings,
            state.context.sessions,
            view.id,
            photo,
            actor=user().username,
            source=audit_source(),
        )
    flash(translate("Action %(id)s created.", id=view.id), "success")
    if form.start_now.data:
        try:
            state.context.actions.start(view.id, actor=user().username, source=audit_source())
            flash(translate("Action %(id)s started.", id=view.id), "success")
        except ActionError as exc:
            flash(str(exc), "error")
    return redirect(url_for("actions.detail", action_id=view.id))


def _timeline(action_id: int) -> list[TimelineEntry]:
    with session_scope(panel().context.sessions) as session:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity == "action", AuditEvent.entity_id == str(action_id))
            .order_by(AuditEvent.at, AuditEvent.id)
        )
        return [
            TimelineEntry(e.at, e.actor, e.verb, json.loads(e.detail) if e.detail else {}, e.source)
            for e in rows
        ]


def _details(action_id: int) -> dict[str, Any]:
    with session_scope(panel().context.sessions) as session:
        action = session.scalar(
            select(Action)
            .where(Action.id == action_id)
            .options(
                selectinload(Action.region),
                selectinload(Action.team).selectinload(ActionCentralist.centralist),
            )
        )
        if action is None:
            abort(404)
        return {
            "description": action.description,
            "region_name": action.region.name,
            "has_photo": bool(action.photo_path),
            "team": [(m.centralist.sip_endpoint, m.centralist.name) for m in action.team],
            "area": {
                "postcodes": action.postcodes,
                "radius_m": action.radius_m,
                "center": (action.center_lon, action.center_lat),
            },
        }


@bp.route("/actions/<int:action_id>")
@roles_required(ALL_ROLES)
def detail(action_id: int) -> str:
    view = _action_or_404(action_id)
    log = CallLog(panel().context.sessions)
    # A long search gathers thousands of calls: the page shows the latest, the API has them all.
    calls: list[CallView] = log.for_action(action_id, limit=CALLS_SHOWN)
    calls_total = log.count_for_action(action_id) if len(calls) == CALLS_SHOWN else len(calls)
    tips: list[TipView] = CallLog(panel().context.sessions).tips(action_id) if can(ACTION_ROLES) else []
    return render_template(
        "actions/detail.html",
        action=view,
        details=_details(action_id),
        timeline=_timeline(action_id),
        calls=calls,
        calls_total=calls_total,
        tips=tips,
        mask=user().role is Role.VIEWER,
        mask_number=mask_number,
        confirm=ConfirmForm(),
        close_form=CloseForm(),
        recording_form=RecordingForm(),
        has_recording=recorded_message_path(action_id, settings=panel().settings).is_file(),
        broadcasts=broadcast_views.of_action(panel().broadcasts, action_id),
        update_form=UpdateForm(),
        update_max_chars=UPDATE_MAX_CHARS,
    )


@bp.route("/actions/<int:action_id>/broadcasts")
@roles_required(ALL_ROLES)
def broadcasts(action_id: int) -> str:
    """The broadcasts section alone: what the detail page fetches when the live feed says so."""
    view = _action_or_404(action_id)
    return render_template(
        "actions/_broadcasts.html",
        action=view,
        broadcasts=broadcast_views.of_action(panel().broadcasts, action_id),
    )


@bp.route("/actions/<int:action_id>/updates", methods=["POST"])
@roles_required(ACTION_ROLES)
def send_update(action_id: int) -> Response | tuple[str, int]:
    view = _action_or_404(action_id)
    form = UpdateForm()
    if not form.validate_on_submit():
        if form.message.errors and form.message.data and form.message.data.strip():
            flash(translate("The update is longer than %(max)s characters.", max=UPDATE_MAX_CHARS), "error")
        else:
            flash(translate("Write the update first."), "error")
        return detail(action_id), 400
    if view.status != ActionStatus.ACTIVE.value:
        # Checked here for a clear message in the user's language; the service checks again.
        flash(
            translate(
                "Only an active action can send updates; this action is %(status)s.",
                status=translate(view.status),
            ),
            "error",
        )
        return detail(action_id), 409
    try:
        broadcast_id = panel().context.actions.send_update(
            action_id, form.message.data or "", actor=user().username, source=audit_source()
        )
    except ActionError as exc:
        flash(translate("The update was not sent: %(why)s", why=str(exc)), "error")
        return detail(action_id), 409
    flash(
        translate("Update %(id)s queued: it goes to everyone the alert reached.", id=broadcast_id), "success"
    )
    return redirect(url_for("actions.detail", action_id=action_id, _anchor="broadcasts-title"))


@bp.route("/actions/<int:action_id>/start", methods=["POST"])
@roles_required(ACTION_ROLES)
def start(action_id: int) -> Response:
    _action_or_404(action_id)
    try:
        panel().context.actions.start(action_id, actor=user().username, source=audit_source())
        flash(translate("Action %(id)s started.", id=action_id), "success")
    except ActionError as exc:
        flash(str(exc), "error")
    return redirect(url_for("actions.detail", action_id=action_id))


@bp.route("/actions/<int:action_id>/close", methods=["POST"])
@roles_required(ACTION_ROLES)
def close(action_id: int) -> Response:
    _action_or_404(action_id)
    form = CloseForm()
    if not form.validate_on_submit():
        flash(
            translate("Outcome") + ": " + "; ".join(m for msgs in form.errors.values() for m in msgs), "error"
        )
        return redirect(url_for("actions.detail", action_id=action_id))
    try:
        panel().context.actions.close(
            action_id,
            outcome=form.outcome.data or "",
            result_message=form.result_message.data or "",
            actor=user().username,
            source=audit_source(),
        )
        flash(translate("Action %(id)s closed.", id=action_id), "success")
    except ActionError as exc:
        flash(str(exc), "error")
    return redirect(url_for("actions.detail", action_id=action_id))


@bp.route("/actions/<int:action_id>/recording", methods=["POST"])
@roles_required(ACTION_ROLES)
def upload_recording(action_id: int) -> Response | tuple[str, int]:
    """A centralist's own recording of the alert message: it replaces the text-to-speech."""
    _action_or_404(action_id)
    form = RecordingForm()
    upload = form.recording.data
    if not form.validate_on_submit() or upload is None or not upload.filename:
        flash(translate("Choose a sound file to upload."), "error")
        return redirect(url_for("actions.detail", action_id=action_id))
    lang = form.lang.data or None
    try:
        seconds = store_alert_recording(
            action_id, upload.read(), upload.filename, lang, actor=user().username, source=audit_source()
        )
    except AudioError as exc:
        flash(translate("The recording was not stored: %(why)s", why=str(exc)), "error")
        return detail(action_id), 400
    flash(
        translate(
            "Recording stored (%(seconds)s s); alert calls play it instead of the spoken text.",
            seconds=f"{seconds:.1f}",
        ),
        "success",
    )
    return redirect(url_for("actions.detail", action_id=action_id))


@bp.route("/actions/<int:action_id>/recording.wav")
@roles_required(ACTION_ROLES)
def recording_audio(action_id: int) -> Response:
    path = recorded_message_path(action_id, request.args.get("lang") or None, settings=panel().settings)
    if not path.is_file():
        abort(404)
    return send_file(path, mimetype="audio/wav", conditional=True, max_age=0)


@bp.route("/actions/<int:action_id>/area.json")
@roles_required(ALL_ROLES)
def area(action_id: int) -> Response:
    with session_scope(panel().context.sessions) as session:
        action = session.get(Action, action_id)
        if action is None:
            abort(404)
        return jsonify(action_feature(session, action))


@bp.route("/actions/<int:action_id>/recipients.json")
@roles_required(ALL_ROLES)
def recipients(action_id: int) -> Response:
    with session_scope(panel().context.sessions) as session:
        action = session.get(Action, action_id)
        if action is None:
            abort(404)
        return jsonify({"action_id": action_id, "recipients": count_inside(session, action_area(action))})


@bp.route("/actions/recipients-preview", methods=["POST"])
@roles_required(ACTION_ROLES)
def recipients_preview() -> Response | tuple[Response, int]:
    """The live count while an area is being drawn (form fields; CSRF token in X-CSRFToken)."""
    try:
        spec = area_from_fields(request.form.get("area_kind", ""), request.form)
        target = routing_area(spec)
    except AreaInputError as exc:
        return jsonify({"error": str(exc)}), 400
    with session_scope(panel().context.sessions) as session:
        return jsonify({"recipients": count_inside(session, target)})


@bp.route("/actions/<int:action_id>/photo")
@roles_required(ALL_ROLES)
def photo(action_id: int) -> Response:
    with session_scope(panel().context.sessions) as session:
        stored = session.scalar(select(Action.photo_path).where(Action.id == action_id))
    path = photo_file(panel().settings, stored)
    if path is None:
        abort(404)
    return send_file(path, max_age=0)


def tip_audio_file(recording_path: str) -> Path | None:
    """The tip's WAV, only inside the recordings folder (the path comes from the database)."""
    root = panel().settings.recordings_dir.resolve()
    path = Path(recording_path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


@bp.route("/tips/<int:tip_id>/audio")
@roles_required(ACTION_ROLES)
def tip_audio(tip_id: int) -> Response:
    with session_scope(panel().context.sessions) as session:
        recording = session.scalar(select(Tip.recording_path).where(Tip.id == tip_id))
    path = tip_audio_file(recording) if recording else None
    if path is None:
        abort(404)
    # conditional=True: byte ranges, so the browser's player can seek.
    return send_file(path, mimetype="audio/wav", conditional=True, max_age=0)

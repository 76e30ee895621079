"""Actions: list, create, start, close; the detail page with timeline, calls, tips, the map and
the broadcasts (live progress, updates to everyone the alert reached).

An unknown action id raises :class:`burgernet.actions.ActionNotFound`, which the app answers
with the 404 page (see ``app.py``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from burgernet.action_types import URGENCIES
from burgernet.actions import UPDATE_MAX_CHARS, ActionError, ActionStateError, ActionView, ApprovalRequired
from burgernet.approvals import ApprovalError
from burgernet.domain import ActionStatus, outcome_words
from callback_api.access import Reader, mask_number
from callback_api.actions.forms import ActionForm, AssignTipForm, CloseForm, RecordingForm, UpdateForm
from callback_api.actions.services import ActionPanelService, RecordingRefused, TipNotAssigned
from callback_api.actions.start import DEFAULT_TYPE, StartService, start_from_template
from callback_api.approvals.services import approval_service
from callback_api.areas import AreaInputError, area_from_fields, split_list
from callback_api.forms import ConfirmForm
from callback_api.i18n import current_language, translate
from callback_api.photos import PhotoError
from callback_api.security import ACTION_ROLES, ALL_ROLES, audit_source, can, reader, roles_required, user
from callback_api.sightings.services import SightingPanelService
from callback_api.sightings.views import default_values
from callback_api.state import panel

bp = Blueprint("actions", __name__)
# Actions per page of the list, and calls shown on an action's page (newest).
PAGE_SIZE = 100
CALLS_SHOWN = 200


def service() -> ActionPanelService:
    state = panel()
    return ActionPanelService(state.context, state.settings, state.broadcasts)


def sighting_service() -> SightingPanelService:
    state = panel()
    return SightingPanelService(state.context, state.settings)


def start_service() -> StartService:
    state = panel()
    return StartService(state.context, state.settings)


def _action(action_id: int) -> ActionView:
    return panel().context.actions.get(action_id)


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


def _chosen_channels(form: ActionForm) -> tuple[str, ...] | None:
    """The channels ticked; None (the template's) when the post had no channel boxes at all.

    The page marks that it offered the boxes: none ticked there is an error, not "all"."""
    chosen = tuple(form.channels.data or ())
    return chosen if chosen or request.form.get("channels_offered") else None


@bp.route("/actions/new", methods=["GET", "POST"])
@roles_required(ACTION_ROLES)
def new() -> str | Response | tuple[str, int]:
    actions = service()
    form = ActionForm()
    form.fill_choices(actions.region_choices(), current_language())
    starting = start_service()

    def page(errors: list[str]) -> str:
        return render_template(
            "actions/new.html",
            form=form,
            centralists=actions.centralist_choices(),
            errors=errors,
            type_templates=starting.templates(),
            urgencies=[(level, level) for level in URGENCIES],
            own_endpoint=starting.own_endpoint(user().info.centralist_id),
        )

    if request.method == "GET":
        # A new action starts from its type's template (?type=vehicle; the first type without).
        start_from_template(form, starting.template(request.args.get("type") or DEFAULT_TYPE))
        return page([])
    if not form.validate_on_submit():
        return page(
            [f"{form[name].label.text}: {', '.join(msgs)}" for name, msgs in form.errors.items()]
        ), 400
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
        view = actions.create(
            action_type=form.action_type.data or "",
            title=form.title.data or "",
            description=form.description.data or "",
            region_code=form.region.data or "",
            area=area,
            team=split_list(form.team.data or ""),
            photo=upload.read() if upload is not None and upload.filename else None,
            channels=_chosen_channels(form),
            urgency=form.urgency.data or None,
            actor=user().username,
            source=audit_source(),
        )
    except (AreaInputError, PhotoError, ActionError) as exc:
        return page([str(exc)]), 400
    flash(translate("Action %(id)s created.", id=view.id), "success")
    if form.start_now.data:
        try:
            panel().context.actions.start(view.id, actor=user().username, source=audit_source())
            flash(translate("Action %(id)s started.", id=view.id), "success")
        except ApprovalRequired:
            # Four eyes (burgernet.approvals): "create and start" asks a second person instead.
            try:
                approval_service(panel().context).request_start(
                    view.id, actor=user().username, source=audit_source()
                )
                flash(
                    translate(
                        "Approval requested instead of a start: action %(id)s needs a second person.",
                        id=view.id,
                    ),
                    "success",
                )
            except ApprovalError as exc:
                flash(str(exc), "error")
        except ActionError as exc:
            flash(str(exc), "error")
    return redirect(url_for("actions.detail", action_id=view.id))


@bp.route("/actions/<int:action_id>")
@roles_required(ALL_ROLES)
def detail(action_id: int) -> str:
    view = _action(action_id)
    actions = service()
    who = reader()
    # A long search gathers thousands of calls: the page shows the latest, the API has them all.
    calls = actions.calls(action_id, who, limit=CALLS_SHOWN)
    calls_total = actions.call_count(action_id) if len(calls) == CALLS_SHOWN else len(calls)
    # Need-to-know: the service masks the numbers and leaves out the tips of other regions.
    personal = actions.may_read_personal(who, action_id)
    return render_template(
        "actions/detail.html",
        action=view,
        details=actions.details(action_id),
        timeline=actions.timeline(action_id),
        calls=calls,
        calls_total=calls_total,
        tips=actions.tips(action_id, who),
        personal=personal,
        mask=not personal,
        mask_number=mask_number,
        confirm=ConfirmForm(),
        close_form=_close_form(),
        outcome_kind_label=_outcome_kind_label(view.outcome_kind),
        recording_form=RecordingForm(),
        has_recording=actions.recording(action_id) is not None,
        broadcasts=actions.broadcasts(action_id),
        eta_if_started=actions.eta_if_started(action_id) if view.status == ActionStatus.DRAFT.value else None,
        update_form=UpdateForm(),
        update_max_chars=UPDATE_MAX_CHARS,
        **_sighting_context(action_id, who, personal),
        **_approval_context(view),
    )


def _approval_context(view: ActionView) -> dict[str, Any]:
    """A draft that needs four-eyes approval shows "Request approval" instead of "Start", and
    the state of its latest request (callback_api.approvals)."""
    if view.status != ActionStatus.DRAFT.value:
        return {"needs_approval": False, "approval": None}
    approvals = approval_service(panel().context)
    return {
        "needs_approval": approvals.action_needs_approval(view.id),
        "approval": approvals.latest_for_action(view.id),
    }


def _sighting_context(action_id: int, who: Reader, personal: bool) -> dict[str, Any]:
    """The sightings section: the list (need-to-know), and the form for who may work the action."""
    sightings = sighting_service()
    return {
        "sightings": panel().context.sightings.for_action(action_id) if personal else [],
        "sighting_choices": sightings.choices(who, action_id) if personal and can(ACTION_ROLES) else None,
        "sighting_values": default_values(),
        "action_id": action_id,
    }


def _calls_context(action_id: int, who: Reader) -> dict[str, Any]:
    actions = service()
    calls = actions.calls(action_id, who, limit=CALLS_SHOWN)
    calls_total = actions.call_count(action_id) if len(calls) == CALLS_SHOWN else len(calls)
    personal = actions.may_read_personal(who, action_id)
    return {"calls": calls, "calls_total": calls_total, "mask": not personal, "mask_number": mask_number}


@bp.route("/actions/<int:action_id>/calls.part")
@roles_required(ALL_ROLES)
def calls_part(action_id: int) -> str:
    """The calls table alone: what the live action page fetches on call events."""
    _action(action_id)
    return render_template("actions/_calls.html", **_calls_context(action_id, reader()))


@bp.route("/actions/<int:action_id>/tips.part")
@roles_required(ALL_ROLES)
def tips_part(action_id: int) -> str:
    """The tips table alone (none without need-to-know): fetched on tip events."""
    _action(action_id)
    return render_template("actions/_tips.html", tips=service().tips(action_id, reader()))


@bp.route("/actions/<int:action_id>/broadcasts")
@roles_required(ALL_ROLES)
def broadcasts(action_id: int) -> str:
    """The broadcasts section alone: what the detail page fetches when the live feed says so."""
    view = _action(action_id)
    return render_template(
        "actions/_broadcasts.html", action=view, broadcasts=service().broadcasts(action_id)
    )


@bp.route("/actions/<int:action_id>/updates", methods=["POST"])
@roles_required(ACTION_ROLES)
def send_update(action_id: int) -> Response | tuple[str, int]:
    view = _action(action_id)
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
    try:
        panel().context.actions.start(action_id, actor=user().username, source=audit_source())
        flash(translate("Action %(id)s started.", id=action_id), "success")
    except ActionStateError as exc:
        flash(str(exc), "error")
    return redirect(url_for("actions.detail", action_id=action_id))


def _close_form() -> CloseForm:
    form = CloseForm()
    form.fill_choices(current_language(), translate("Choose how the action ended"))
    return form


def _outcome_kind_label(outcome_kind: str | None) -> str:
    return outcome_words(outcome_kind, current_language())


@bp.route("/actions/<int:action_id>/close", methods=["POST"])
@roles_required(ACTION_ROLES)
def close(action_id: int) -> Response:
    _action(action_id)
    form = _close_form()
    if not form.validate_on_submit():
        errors = [
            f"{translate(str(form[name].label.text))}: {', '.join(msgs)}"
            for name, msgs in form.errors.items()
        ]
        flash("; ".join(errors), "error")
        return redirect(url_for("actions.detail", action_id=action_id))
    try:
        panel().context.actions.close(
            action_id,
            outcome_kind=form.outcome_kind.data or "",
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
    _action(action_id)
    form = RecordingForm()
    upload = form.recording.data
    if not form.validate_on_submit() or upload is None or not upload.filename:
        flash(translate("Choose a sound file to upload."), "error")
        return redirect(url_for("actions.detail", action_id=action_id))
    try:
        seconds = service().store_recording(
            action_id,
            upload.read(),
            upload.filename,
            form.lang.data or None,
            actor=user().username,
            source=audit_source(),
        )
    except RecordingRefused as exc:
        flash(translate("The recording was not stored: %(why)s", why=exc.reason), "error")
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
    path = service().recording(action_id, request.args.get("lang") or None)
    if path is None:
        abort(404)
    return send_file(path, mimetype="audio/wav", conditional=True, max_age=0)


@bp.route("/actions/<int:action_id>/area.json")
@roles_required(ALL_ROLES)
def area(action_id: int) -> Response:
    return jsonify(service().area_feature(action_id))


@bp.route("/actions/<int:action_id>/recipients.json")
@roles_required(ALL_ROLES)
def recipients(action_id: int) -> Response:
    return jsonify({"action_id": action_id, "recipients": service().recipients(action_id)})


@bp.route("/actions/recipients-preview", methods=["POST"])
@roles_required(ACTION_ROLES)
def recipients_preview() -> Response | tuple[Response, int]:
    """The live count while an area is being drawn (form fields; CSRF token in X-CSRFToken)."""
    try:
        count = service().recipients_preview(
            area_from_fields(request.form.get("area_kind", ""), request.form)
        )
    except AreaInputError as exc:
        return jsonify({"error": str(exc)}), 400
    return jsonify({"recipients": count})


@bp.route("/actions/<int:action_id>/photo")
@roles_required(ALL_ROLES)
def photo(action_id: int) -> Response:
    path = service().photo(action_id)
    if path is None:
        abort(404)
    return send_file(path, max_age=0)


@bp.route("/tips/<int:tip_id>/audio")
@roles_required(ACTION_ROLES)
def tip_audio(tip_id: int) -> Response:
    path = service().tip_audio(tip_id, reader())
    if path is None:
        abort(404)
    # conditional=True: byte ranges, so the browser's player can seek.
    return send_file(path, mimetype="audio/wav", conditional=True, max_age=0)


def _assign_form(actions: ActionPanelService) -> AssignTipForm:
    form = AssignTipForm()
    form.action_id.choices = [
        SelectChoice(view.id, f"{view.id}: {view.title} ({view.status})")
        for view in actions.assignable_actions(reader())
    ]
    return form


@bp.route("/tips")
@roles_required(ACTION_ROLES)
def unassigned_tips() -> str:
    """Tips no action could be found for (mostly recorded while FastAGI was down), to assign."""
    actions = service()
    who = reader()
    return render_template(
        "actions/tips.html",
        tips=actions.unassigned_tips(who),
        personal=actions.may_read_personal(who, None),
        form=_assign_form(actions),
    )


@bp.route("/tips/<int:tip_id>/assign", methods=["POST"])
@roles_required(ACTION_ROLES)
def assign_tip(tip_id: int) -> Response | tuple[str, int]:
    actions = service()
    actions.require_tip_assigner(reader())  # 403 before anything about the form is said
    form = _assign_form(actions)
    if not form.validate_on_submit() or form.action_id.data is None:
        flash(translate("Choose an action."), "error")
        return redirect(url_for("actions.unassigned_tips"))
    try:
        actions.assign_tip(tip_id, form.action_id.data, reader())
    except TipNotAssigned as exc:
        flash(str(exc), "error")
        return redirect(url_for("actions.unassigned_tips"))
    flash(translate("Tip %(tip)s assigned to action %(id)s.", tip=tip_id, id=form.action_id.data), "success")
    return redirect(url_for("actions.unassigned_tips"))

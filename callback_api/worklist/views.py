"""The call-back worklist pages. Each step posts a form (CSRF); ``static/worklist.js`` sends it
with fetch and redraws the list, and the list follows the live stream (``worklist_changed``)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, flash, jsonify, redirect, render_template, request, send_file, url_for
from werkzeug.wrappers import Response

from burgernet.callbacks import CALLBACK_RESULTS, WorklistItem
from burgernet.errors import DomainError
from callback_api.errors import status_of
from callback_api.i18n import translate
from callback_api.local_time import iso_utc
from callback_api.security import ACTION_ROLES, audit_source, reader, roles_required
from callback_api.state import panel
from callback_api.worklist.services import WorklistPanelService, scope_of

bp = Blueprint("worklist", __name__)


def service() -> WorklistPanelService:
    state = panel()
    return WorklistPanelService(state.context, state.settings)


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _page_context() -> dict[str, object]:
    who = reader()
    worklist = service()
    return {
        "items": worklist.open_items(who),
        "done": worklist.done_items(who),
        "own": worklist.own_centralist(who),
        "me": who.username,
        "results": CALLBACK_RESULTS,
        "claim_minutes": panel().settings.web.callback_claim_minutes,
        "now": datetime.now(UTC),
    }


@bp.route("/worklist")
@roles_required(ACTION_ROLES)
def index() -> str:
    return render_template("worklist/index.html", **_page_context())


@bp.route("/worklist/list.part")
@roles_required(ACTION_ROLES)
def list_part() -> str:
    """The lists alone: what worklist.js fetches after a step or a live event."""
    return render_template("worklist/_items.html", **_page_context())


def _item_json(item: WorklistItem) -> dict[str, object]:
    return {
        "id": item.id,
        "claimed_by": item.claimed_by,
        "claim_expires_at": iso_utc(item.claim_expires_at) if item.claim_expires_at else None,
        "result": item.result,
        "done_at": iso_utc(item.done_at) if item.done_at else None,
    }


def _answer(
    message: str, item: WorklistItem | None = None, status: int = 200
) -> Response | tuple[Response, int]:
    if _wants_json():
        return jsonify({"message": message, "item": _item_json(item) if item else None}), status
    flash(message, "success" if status < 400 else "error")
    return redirect(url_for("worklist.index"))


def _refused(exc: DomainError) -> Response | tuple[Response, int]:
    status = status_of(exc)  # 404 not yours to see, 409 someone else has it, 422 refused input
    if _wants_json():
        return jsonify({"error": str(exc), "error_id": exc.code}), status
    flash(str(exc), "error")
    return redirect(url_for("worklist.index"))


@bp.route("/worklist/<int:item_id>/claim", methods=["POST"])
@roles_required(ACTION_ROLES)
def claim(item_id: int) -> Response | tuple[Response, int]:
    who = reader()
    try:
        item = service().callbacks.claim(item_id, scope_of(who), actor=who.username, source=audit_source())
    except DomainError as exc:
        return _refused(exc)
    return _answer(translate("Call-back %(id)s is yours.", id=item_id), item)


@bp.route("/worklist/<int:item_id>/release", methods=["POST"])
@roles_required(ACTION_ROLES)
def release(item_id: int) -> Response | tuple[Response, int]:
    who = reader()
    try:
        service().callbacks.release(item_id, actor=who.username, source=audit_source())
    except DomainError as exc:
        return _refused(exc)
    return _answer(translate("Call-back %(id)s is back in the list.", id=item_id))


@bp.route("/worklist/<int:item_id>/call", methods=["POST"])
@roles_required(ACTION_ROLES)
def call(item_id: int) -> Response | tuple[Response, int]:
    who = reader()
    try:
        service().callbacks.call(
            item_id, scope_of(who), centralist_id=who.centralist_id, actor=who.username, source=audit_source()
        )
    except DomainError as exc:
        return _refused(exc)
    return _answer(translate("Your phone rings now; the citizen is called when you answer."))


@bp.route("/worklist/<int:item_id>/done", methods=["POST"])
@roles_required(ACTION_ROLES)
def done(item_id: int) -> Response | tuple[Response, int]:
    who = reader()
    try:
        item = service().callbacks.finish(
            item_id,
            scope_of(who),
            result=request.form.get("result", ""),
            note=request.form.get("note", ""),
            actor=who.username,
            source=audit_source(),
        )
    except DomainError as exc:
        return _refused(exc)
    return _answer(translate("Call-back %(id)s done.", id=item_id), item)


@bp.route("/worklist/<int:item_id>/audio")
@roles_required(ACTION_ROLES)
def audio(item_id: int) -> Response:
    path = service().tip_audio(reader(), item_id)
    return send_file(path, mimetype="audio/wav", conditional=True, max_age=0)


@bp.route("/me/on-duty", methods=["POST"])
@roles_required(ACTION_ROLES)
def on_duty() -> Response | tuple[Response, int]:
    wanted = request.form.get("on_duty") == "yes"
    own = service().set_on_duty(reader(), wanted, source=audit_source())
    message = translate("You are on duty.") if own.on_duty else translate("You are off duty.")
    if _wants_json():
        return jsonify({"message": message, "on_duty": own.on_duty})
    flash(message, "success")
    back = request.form.get("next", "")
    # Only a path on this site: never an open redirect.
    return redirect(back if back.startswith("/") and not back.startswith("//") else url_for("worklist.index"))

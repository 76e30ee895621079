"""Participants: search, edit, opt-out, erase on request, CSV import and export (admin/operator)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from werkzeug.utils import secure_filename
from werkzeug.wrappers import Response as BaseResponse

from burgernet.db import session_scope
from burgernet.imports import ImportFileError, import_participants
from callback_api.forms import ConfirmForm, ImportForm, ParticipantForm
from callback_api.i18n import translate
from callback_api.people import services as people
from callback_api.security import PEOPLE_ROLES, audit_source, roles_required, user
from callback_api.state import panel

bp = Blueprint("people", __name__, url_prefix="/people")


@bp.route("")
@roles_required(PEOPLE_ROLES)
def index() -> str | tuple[str, int]:
    query = request.args.get("q", "").strip()
    results: list[people.ParticipantRow] = []
    error = None
    if query:
        try:
            results = people.search(panel().context.sessions, query)
        except people.ParticipantError as exc:
            error = str(exc)
    status = 400 if error else 200
    return render_template(
        "people/index.html", query=query, results=results, error=error, limit=people.SEARCH_LIMIT
    ), status


@bp.route("/<int:participant_id>", methods=["GET", "POST"])
@roles_required(PEOPLE_ROLES)
def detail(participant_id: int) -> str | BaseResponse | tuple[str, int]:
    row = people.get(panel().context.sessions, participant_id)
    if row is None:
        abort(404)
    form = ParticipantForm(obj=row)
    errors: list[str] = []
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                people.edit(
                    panel().context.sessions,
                    participant_id,
                    people.ParticipantEdit(
                        postcode=form.postcode.data or "",
                        house_number=form.house_number.data,
                        email=form.email.data,
                        language=form.language.data or "nl",
                        channel_voice=bool(form.channel_voice.data),
                        channel_sms=bool(form.channel_sms.data),
                        channel_email=bool(form.channel_email.data),
                        inquiry_opt_in=bool(form.inquiry_opt_in.data),
                    ),
                    actor=user().username,
                    source=audit_source(),
                )
                flash(translate("Saved."), "success")
                return redirect(url_for("people.detail", participant_id=participant_id))
            except people.ParticipantError as exc:
                errors.append(str(exc))
        else:
            errors = [f"{form[name].label.text}: {', '.join(msgs)}" for name, msgs in form.errors.items()]
    status = 400 if errors else 200
    return render_template(
        "people/detail.html", row=row, form=form, errors=errors, confirm=ConfirmForm()
    ), status


@bp.route("/<int:participant_id>/opt-out", methods=["POST"])
@roles_required(PEOPLE_ROLES)
def opt_out(participant_id: int) -> BaseResponse:
    wanted = request.form.get("opted_out") == "1"
    if not people.set_opt_out(
        panel().context.sessions, participant_id, wanted, actor=user().username, source=audit_source()
    ):
        abort(404)
    flash(translate("Saved."), "success")
    return redirect(url_for("people.detail", participant_id=participant_id))


@bp.route("/<int:participant_id>/erase", methods=["POST"])
@roles_required(PEOPLE_ROLES)
def erase(participant_id: int) -> str:
    try:
        report = people.erase(
            panel().context.sessions,
            panel().context.live,
            participant_id,
            actor=user().username,
            source=audit_source(),
        )
    except people.ParticipantError:
        abort(404)
    return render_template("people/erased.html", report=report)


@bp.route("/import", methods=["GET", "POST"])
@roles_required(PEOPLE_ROLES)
def import_csv() -> str | tuple[str, int]:
    form = ImportForm()
    if request.method == "GET":
        return render_template("people/import.html", form=form, report=None, error=None)
    upload = form.file.data if form.validate_on_submit() else None
    if upload is None or not getattr(upload, "filename", ""):
        return render_template(
            "people/import.html", form=form, report=None, error=translate("CSV file") + ": ?"
        ), 400
    name = secure_filename(upload.filename) or "participants.csv"
    with tempfile.TemporaryDirectory(prefix="bn-import-") as folder:
        path = Path(folder) / name
        upload.save(path)
        try:
            with session_scope(panel().context.sessions) as session:
                report = import_participants(
                    session,
                    path,
                    skip_bad=bool(form.skip_bad.data),
                    actor=user().username,
                    source=audit_source(),
                )
        except ImportFileError as exc:
            return render_template(
                "people/import.html", form=form, report=None, error=str(exc).replace(str(path), name)
            ), 400
    status = 200 if report.committed else 400
    return render_template("people/import.html", form=form, report=report, error=None), status


@bp.route("/export.csv")
@roles_required(PEOPLE_ROLES)
def export_csv() -> Response:
    rows = people.export_csv(panel().context.sessions, actor=user().username, source=audit_source())
    response = Response(rows, mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=participants.csv"
    response.headers["Cache-Control"] = "no-store"
    return response

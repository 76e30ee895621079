"""Participants: search, edit, opt-out, erase on request, one person's data as JSON (GDPR art. 15),
CSV import and export (admin/operator). Searches and exports are audited reads.

An unknown participant raises :class:`~callback_api.people.services.ParticipantNotFound`, which
the app answers with the 404 page (see ``app.py``).
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from werkzeug.utils import secure_filename
from werkzeug.wrappers import Response as BaseResponse

from callback_api.forms import ConfirmForm
from callback_api.i18n import translate
from callback_api.limits import IMPORT_BYTES, body_limit
from callback_api.people.forms import ImportForm, ParticipantForm
from callback_api.people.services import (
    SEARCH_LIMIT,
    ImportRefused,
    ParticipantEdit,
    ParticipantError,
    ParticipantRow,
    PeopleService,
)
from callback_api.security import PEOPLE_ROLES, audit_source, roles_required, user
from callback_api.state import panel

bp = Blueprint("people", __name__, url_prefix="/people")


def service() -> PeopleService:
    return PeopleService(panel().context)


@bp.route("")
@roles_required(PEOPLE_ROLES)
def index() -> str | tuple[str, int]:
    query = request.args.get("q", "").strip()
    results: list[ParticipantRow] = []
    error = None
    if query:
        try:
            results = service().search(query, actor=user().username, source=audit_source())
        except ParticipantError as exc:
            error = str(exc)
    status = 400 if error else 200
    return render_template(
        "people/index.html", query=query, results=results, error=error, limit=SEARCH_LIMIT
    ), status


@bp.route("/<int:participant_id>", methods=["GET", "POST"])
@roles_required(PEOPLE_ROLES)
def detail(participant_id: int) -> str | BaseResponse | tuple[str, int]:
    people = service()
    row = people.get(participant_id)
    form = ParticipantForm(obj=row)
    errors: list[str] = []
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                people.edit(
                    participant_id,
                    ParticipantEdit(
                        postcode=form.postcode.data or "",
                        house_number=form.house_number.data,
                        email=form.email.data,
                        language=form.language.data or "nl",
                        channel_voice=bool(form.channel_voice.data),
                        channel_sms=bool(form.channel_sms.data),
                        channel_email=bool(form.channel_email.data),
                        inquiry_opt_in=bool(form.inquiry_opt_in.data),
                        night_alerts=bool(form.night_alerts.data),
                    ),
                    actor=user().username,
                    source=audit_source(),
                )
                flash(translate("Saved."), "success")
                return redirect(url_for("people.detail", participant_id=participant_id))
            except ParticipantError as exc:
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
    service().set_opt_out(participant_id, wanted, actor=user().username, source=audit_source())
    flash(translate("Saved."), "success")
    return redirect(url_for("people.detail", participant_id=participant_id))


@bp.route("/<int:participant_id>/erase", methods=["POST"])
@roles_required(PEOPLE_ROLES)
def erase(participant_id: int) -> str:
    report = service().erase(participant_id, actor=user().username, source=audit_source())
    return render_template("people/erased.html", report=report)


@bp.route("/<int:participant_id>/export.json")
@roles_required(PEOPLE_ROLES)
def export_json(participant_id: int) -> Response:
    """Everything stored about one participant (GDPR art. 15), as a JSON download; audited."""
    document = service().export_json(participant_id, actor=user().username, source=audit_source())
    response = Response(json.dumps(document, ensure_ascii=False, indent=2), mimetype="application/json")
    response.headers["Content-Disposition"] = f"attachment; filename=participant-{participant_id}.json"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/import", methods=["GET", "POST"])
@roles_required(PEOPLE_ROLES)
@body_limit(IMPORT_BYTES)  # participant CSVs of a few million rows
def import_csv() -> str | tuple[str, int]:
    form = ImportForm()
    if request.method == "GET":
        return render_template("people/import.html", form=form, report=None, error=None)
    upload = form.file.data if form.validate_on_submit() else None
    if upload is None or not getattr(upload, "filename", ""):
        return render_template(
            "people/import.html", form=form, report=None, error=translate("CSV file") + ": ?"
        ), 400
    try:
        report = service().import_file(
            upload.save,
            secure_filename(upload.filename) or "participants.csv",
            skip_bad=bool(form.skip_bad.data),
            actor=user().username,
            source=audit_source(),
        )
    except ImportRefused as exc:
        return render_template("people/import.html", form=form, report=None, error=str(exc)), 400
    status = 200 if report.committed else 400
    return render_template("people/import.html", form=form, report=report, error=None), status


@bp.route("/export.csv")
@roles_required(PEOPLE_ROLES)
def export_csv() -> Response:
    rows = service().export_csv(actor=user().username, source=audit_source())
    response = Response(rows, mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=participants.csv"
    response.headers["Cache-Control"] = "no-store"
    return response

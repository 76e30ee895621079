"""Centralists: everyone signed in reads them; admins add, edit, (de)activate them and make new
SIP passwords; admins and operators put them on or off duty. Each change tells the running
Asterisk (see :mod:`callback_api.settings.services`) and the page says whether one heard it.

A new SIP password is shown once, on the page that answers the POST (never flashed: the flash
would travel in the session cookie), and that page is not cached."""

from __future__ import annotations

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse
from wtforms import SelectChoice

from burgernet.centralists import CentralistError
from burgernet.domain import Role
from callback_api.forms import ConfirmForm
from callback_api.security import ALL_ROLES, audit_source, roles_required, user
from callback_api.settings.centralists.forms import CentralistForm
from callback_api.settings.centralists.services import CentralistAdminService, NewPassword
from callback_api.settings.regions.services import RegionService
from callback_api.settings.views import ADMIN_ONLY, DUTY_ROLES, bp, form_errors, reload_note
from callback_api.state import panel


def service() -> CentralistAdminService:
    return CentralistAdminService(panel().context)


def _regions() -> RegionService:
    state = panel()
    return RegionService(state.context, state.settings)


def _show_password(new: NewPassword, centralist_id: int) -> BaseResponse:
    response = make_response(
        render_template("settings/centralist_password.html", new=new, centralist_id=centralist_id)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _region_choices() -> list[SelectChoice]:
    return [SelectChoice(r.code, f"{r.code} {r.name}") for r in _regions().list_all()]


@bp.route("/centralists")
@roles_required(ALL_ROLES)
def centralist_list() -> str:
    region = request.args.get("region", "").strip().upper() or None
    return render_template(
        "settings/centralists.html",
        rows=service().list_all(region),
        region=region,
        regions=_regions().list_all(),
        confirm=ConfirmForm(),
        DUTY_ROLES=DUTY_ROLES,
        ADMIN_ONLY=ADMIN_ONLY,
    )


@bp.route("/centralists/new", methods=["GET", "POST"])
@roles_required(ADMIN_ONLY)
def centralist_new() -> str | BaseResponse | tuple[str, int]:
    form = CentralistForm()
    form.region.choices = _region_choices()
    if request.method == "GET" and request.args.get("region"):
        form.region.data = request.args["region"]
    errors: list[str] = []
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                row, password, outcome = service().add(
                    endpoint=form.endpoint.data or "",
                    name=form.name.data or "",
                    region_code=form.region.data or "",
                    contact=form.contact.data or None,
                    actor=user().username,
                    source=audit_source(),
                )
                reload_note(outcome)
                return _show_password(password, row.id)
            except CentralistError as exc:
                errors.append(str(exc))
        else:
            errors = form_errors(form)
    return render_template("settings/centralist_form.html", form=form, row=None, errors=errors), (
        400 if errors else 200
    )


@bp.route("/centralists/<int:centralist_id>", methods=["GET", "POST"])
@roles_required(ALL_ROLES)
def centralist_edit(centralist_id: int) -> str | BaseResponse | tuple[str, int]:
    centralists = service()
    row = centralists.get(centralist_id)
    form = CentralistForm(
        data={"name": row.name, "endpoint": row.endpoint, "region": row.region_code, "on_duty": row.on_duty}
        if request.method == "GET"
        else None
    )
    form.region.choices = _region_choices()
    errors: list[str] = []
    if request.method == "POST":
        if user().role is not Role.ADMIN:
            abort(403)
        if form.validate_on_submit():
            try:
                _saved, password, outcome = centralists.edit(
                    centralist_id,
                    name=form.name.data or "",
                    endpoint=form.endpoint.data or "",
                    region_code=form.region.data or "",
                    on_duty=bool(form.on_duty.data),
                    actor=user().username,
                    source=audit_source(),
                )
                reload_note(outcome)
                if password is not None:  # renamed: the old account's password went with it
                    return _show_password(password, centralist_id)
                return redirect(url_for("settings.centralist_edit", centralist_id=centralist_id))
            except CentralistError as exc:
                errors.append(str(exc))
        else:
            errors = form_errors(form)
    return render_template(
        "settings/centralist_form.html", form=form, row=row, errors=errors, confirm=ConfirmForm()
    ), (400 if errors else 200)


@bp.route("/centralists/<int:centralist_id>/duty", methods=["POST"])
@roles_required(DUTY_ROLES)
def centralist_duty(centralist_id: int) -> BaseResponse:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    centralists = service()
    centralists.get(centralist_id)  # an unknown centralist is a 404, not a message
    try:
        outcome = centralists.set_on_duty(
            centralist_id, request.form.get("on_duty") == "1", actor=user().username, source=audit_source()
        )
    except CentralistError as exc:
        flash(str(exc), "error")
        return redirect(url_for("settings.centralist_list"))
    reload_note(outcome)
    if request.form.get("back") == "edit":
        return redirect(url_for("settings.centralist_edit", centralist_id=centralist_id))
    return redirect(url_for("settings.centralist_list"))


@bp.route("/centralists/<int:centralist_id>/active", methods=["POST"])
@roles_required(ADMIN_ONLY)
def centralist_active(centralist_id: int) -> BaseResponse:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    outcome = service().set_active(
        centralist_id, request.form.get("active") == "1", actor=user().username, source=audit_source()
    )
    reload_note(outcome)
    return redirect(url_for("settings.centralist_edit", centralist_id=centralist_id))


@bp.route("/centralists/<int:centralist_id>/password", methods=["POST"])
@roles_required(ADMIN_ONLY)
def centralist_password(centralist_id: int) -> BaseResponse:
    """A new SIP password: the old one stops working as soon as Asterisk reloads."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        password, outcome = service().new_password(
            centralist_id, actor=user().username, source=audit_source()
        )
    except CentralistError as exc:
        flash(str(exc), "error")
        return redirect(url_for("settings.centralist_edit", centralist_id=centralist_id))
    reload_note(outcome)
    return _show_password(password, centralist_id)

"""Regions: everyone signed in reads them, admins create and edit them."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from burgernet.domain import Role
from callback_api.i18n import translate
from callback_api.security import ALL_ROLES, audit_source, roles_required, user
from callback_api.settings.regions.forms import RegionForm
from callback_api.settings.regions.services import RegionError, RegionInput, RegionService
from callback_api.settings.views import ADMIN_ONLY, bp, form_errors, reload_note
from callback_api.state import panel


def service() -> RegionService:
    state = panel()
    return RegionService(state.context, state.settings)


def _input(form: RegionForm) -> RegionInput:
    return RegionInput(form.code.data or "", form.name.data or "", form.boundary.data or "")


@bp.route("/regions")
@roles_required(ALL_ROLES)
def region_list() -> str:
    return render_template("settings/regions.html", rows=service().list_all())


@bp.route("/regions/new", methods=["GET", "POST"])
@roles_required(ADMIN_ONLY)
def region_new() -> str | BaseResponse | tuple[str, int]:
    form = RegionForm()
    errors: list[str] = []
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                row = service().create(_input(form), actor=user().username, source=audit_source())
                flash(translate("Region %(code)s created.", code=row.code), "success")
                return redirect(url_for("settings.region_list"))
            except RegionError as exc:
                errors.append(str(exc))
        else:
            errors = form_errors(form)
    return render_template("settings/region_form.html", form=form, row=None, errors=errors), (
        400 if errors else 200
    )


@bp.route("/regions/<int:region_id>", methods=["GET", "POST"])
@roles_required(ALL_ROLES)
def region_edit(region_id: int) -> str | BaseResponse | tuple[str, int]:
    regions = service()
    row = regions.get(region_id)
    form = RegionForm(
        data={"code": row.code, "name": row.name, "boundary": row.boundary_geojson or ""}
        if request.method == "GET"
        else None
    )
    errors: list[str] = []
    if request.method == "POST":
        if user().role is not Role.ADMIN:
            abort(403)
        if form.validate_on_submit():
            try:
                _saved, reload = regions.update(
                    region_id, _input(form), actor=user().username, source=audit_source()
                )
                if reload is not None:
                    reload_note(reload)
                else:
                    flash(translate("Saved."), "success")
                return redirect(url_for("settings.region_edit", region_id=region_id))
            except RegionError as exc:
                errors.append(str(exc))
        else:
            errors = form_errors(form)
    return render_template("settings/region_form.html", form=form, row=row, errors=errors), (
        400 if errors else 200
    )

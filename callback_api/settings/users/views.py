"""Panel users, for admins only. A new password or API token is shown once, in the answer to
the request that made it, and never flashed (the cookie would carry it)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse
from wtforms import SelectChoice

from callback_api.auth.services import UserError
from callback_api.forms import ConfirmForm
from callback_api.i18n import translate
from callback_api.security import audit_source, roles_required, user
from callback_api.settings.centralists.services import CentralistAdminService
from callback_api.settings.users.forms import UserForm, UserRoleForm
from callback_api.settings.users.services import UserAdminService, UserRow
from callback_api.settings.views import ADMIN_ONLY, bp, form_errors
from callback_api.state import panel


def service() -> UserAdminService:
    return UserAdminService(panel().context)


def _centralist_choices() -> list[SelectChoice]:
    rows = CentralistAdminService(panel().context).list_all()
    return [SelectChoice("", "—")] + [
        SelectChoice(c.endpoint, f"{c.endpoint} ({c.name}, {c.region_code})") for c in rows if c.active
    ]


@bp.route("/users", methods=["GET", "POST"])
@roles_required(ADMIN_ONLY)
def user_list() -> str | BaseResponse | tuple[str, int]:
    users = service()
    form = UserForm()
    form.centralist.choices = _centralist_choices()
    errors: list[str] = []
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                info = users.create(
                    username=form.username.data or "",
                    role=form.role.data or "",
                    password=form.password.data or "",
                    centralist_endpoint=form.centralist.data or None,
                    actor=user().username,
                    source=audit_source(),
                )
                flash(translate("User %(name)s created.", name=info.username), "success")
                return redirect(url_for("settings.user_list"))
            except UserError as exc:
                errors.append(str(exc))
        else:
            errors = form_errors(form)
    return render_template("settings/users.html", rows=users.list_all(), form=form, errors=errors), (
        400 if errors else 200
    )


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@roles_required(ADMIN_ONLY)
def user_edit(user_id: int) -> str | BaseResponse | tuple[str, int]:
    users = service()
    row = users.get(user_id)
    form = UserRoleForm(
        data={"role": row.role.value, "centralist": row.centralist_endpoint or ""}
        if request.method == "GET"
        else None
    )
    form.centralist.choices = _centralist_choices()
    errors: list[str] = []
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                users.set_role(
                    user_id,
                    role=form.role.data or "",
                    centralist_endpoint=form.centralist.data or None,
                    actor=user().username,
                    source=audit_source(),
                )
                flash(translate("Saved."), "success")
                return redirect(url_for("settings.user_edit", user_id=user_id))
            except UserError as exc:
                errors.append(str(exc))
        else:
            errors = form_errors(form)
    return _user_page(row, form, errors)


def _user_page(
    row: UserRow,
    form: UserRoleForm,
    errors: list[str],
    *,
    secret: str | None = None,
    secret_label: str | None = None,
) -> tuple[str, int]:
    html = render_template(
        "settings/user.html",
        row=row,
        form=form,
        errors=errors,
        confirm=ConfirmForm(),
        secret=secret,
        secret_label=secret_label,
    )
    return html, 400 if errors else 200


def _user_action(user_id: int) -> UserRow:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return service().get(user_id)


def _role_form(row: UserRow) -> UserRoleForm:
    form = UserRoleForm(data={"role": row.role.value, "centralist": row.centralist_endpoint or ""})
    form.centralist.choices = _centralist_choices()
    return form


@bp.route("/users/<int:user_id>/active", methods=["POST"])
@roles_required(ADMIN_ONLY)
def user_active(user_id: int) -> BaseResponse | tuple[str, int]:
    row = _user_action(user_id)
    try:
        service().set_active(
            user_id, request.form.get("active") == "1", actor=user().username, source=audit_source()
        )
    except UserError as exc:
        return _user_page(row, _role_form(row), [str(exc)])
    flash(translate("Saved."), "success")
    return redirect(url_for("settings.user_edit", user_id=user_id))


@bp.route("/users/<int:user_id>/approver", methods=["POST"])
@roles_required(ADMIN_ONLY)
def user_approver(user_id: int) -> BaseResponse | tuple[str, int]:
    """The approver flag: may approve another person's start of an AMBER Alert or national action."""
    row = _user_action(user_id)
    try:
        service().set_approver(
            user_id, request.form.get("approver") == "1", actor=user().username, source=audit_source()
        )
    except UserError as exc:
        return _user_page(row, _role_form(row), [str(exc)])
    flash(translate("Saved."), "success")
    return redirect(url_for("settings.user_edit", user_id=user_id))


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@roles_required(ADMIN_ONLY)
def user_password(user_id: int) -> tuple[str, int]:
    row = _user_action(user_id)
    password = service().reset_password(user_id, actor=user().username, source=audit_source())
    return _user_page(row, _role_form(row), [], secret=password, secret_label=translate("New password"))


@bp.route("/users/<int:user_id>/token", methods=["POST"])
@roles_required(ADMIN_ONLY)
def user_token(user_id: int) -> tuple[str, int]:
    users = service()
    row = _user_action(user_id)
    try:
        token = users.new_token(user_id, actor=user().username, source=audit_source())
    except UserError as exc:
        return _user_page(row, _role_form(row), [str(exc)])
    row = users.get(user_id)
    return _user_page(row, _role_form(row), [], secret=token, secret_label=translate("New API token"))


@bp.route("/users/<int:user_id>/token/revoke", methods=["POST"])
@roles_required(ADMIN_ONLY)
def user_token_revoke(user_id: int) -> BaseResponse:
    _user_action(user_id)
    service().revoke_token(user_id, actor=user().username, source=audit_source())
    flash(translate("Saved."), "success")
    return redirect(url_for("settings.user_edit", user_id=user_id))

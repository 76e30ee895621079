"""Settings: regions, centralists, panel users and message templates.

Who may do what: everyone signed in reads regions and centralists; only admins change them
(telecom admin work: a centralist is a SIP account on Asterisk). Admins and operators put
centralists on or off duty and edit message templates. Users are admin-only. A changed
centralist is picked up by the running Asterisk through the telephony service
(:mod:`asterisk_conf.reload`); the page says when no telephony service heard the request.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import BooleanField, PasswordField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from asterisk_conf.reload import request_reload
from burgernet.domain import ACTION_TYPE_LABELS, ActionType, Language, Role
from burgernet.message_templates import PLACEHOLDERS, SMS_LIMIT, RenderedMessage
from burgernet.phone import free_number_display
from callback_api.forms import ConfirmForm
from callback_api.i18n import current_language, translate
from callback_api.security import ALL_ROLES, PEOPLE_ROLES, audit_source, roles_required, user
from callback_api.settings import centralists as centralist_admin
from callback_api.settings import regions, templates
from callback_api.settings import users as user_admin
from callback_api.settings.centralists import CentralistError, ReloadOutcome
from callback_api.settings.regions import RegionError, RegionInput
from callback_api.settings.users import UserError
from callback_api.state import panel

bp = Blueprint("settings", __name__, url_prefix="/settings")

ADMIN_ONLY = frozenset({Role.ADMIN})
# Shifts and the words sent to participants: the coordinators' work as well as the admin's.
DUTY_ROLES = PEOPLE_ROLES
TEMPLATE_ROLES = PEOPLE_ROLES


# --- forms ------------------------------------------------------------------------------------------
class RegionForm(FlaskForm):
    code = StringField("Code", validators=[Length(max=8)])
    name = StringField("Name", validators=[Length(max=80)])
    boundary = TextAreaField("Boundary (GeoJSON Polygon or MultiPolygon)", validators=[Optional()])


class CentralistForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=120)])
    endpoint = StringField("SIP endpoint", validators=[Length(max=40)])
    region = SelectField("Region", choices=[])
    on_duty = BooleanField("On duty")
    password = PasswordField("SIP password (empty: the default)", validators=[Optional(), Length(max=80)])
    contact = StringField("Fixed contact (sip:…, for phones that do not register)", validators=[Optional()])


class UserForm(FlaskForm):
    username = StringField("Username", validators=[Length(max=80)])
    role = SelectField("Role", choices=[SelectChoice(r.value, r.value) for r in Role])
    password = PasswordField("Password", validators=[Length(max=200)])
    # Checked by the service ("no centralist with endpoint ..."); empty means none.
    centralist = SelectField("Centralist", choices=[], validate_choice=False)


class UserRoleForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice(r.value, r.value) for r in Role])
    # Checked by the service ("no centralist with endpoint ..."); empty means none.
    centralist = SelectField("Centralist", choices=[], validate_choice=False)


class TemplateForm(FlaskForm):
    subject = StringField("Subject", validators=[Optional()])
    body = TextAreaField("Text")


def _region_choices() -> list[SelectChoice]:
    return [
        SelectChoice(r.code, f"{r.code} {r.name}") for r in regions.list_regions(panel().context.sessions)
    ]


def _centralist_choices() -> list[SelectChoice]:
    rows = centralist_admin.list_centralists(panel().context.sessions)
    return [SelectChoice("", "—")] + [
        SelectChoice(c.endpoint, f"{c.endpoint} ({c.name}, {c.region_code})") for c in rows if c.active
    ]


def _form_errors(form: FlaskForm) -> list[str]:
    return [f"{translate(form[name].label.text)}: {', '.join(msgs)}" for name, msgs in form.errors.items()]


def _reload_note(outcome: ReloadOutcome) -> None:
    if outcome.listeners:
        flash(translate("Saved. Asterisk loads the change within seconds."), "success")
    else:
        flash(
            translate(
                "Saved, but no telephony service is listening: run 'burgernet asterisk reload' "
                "so that Asterisk loads the change."
            ),
            "error",
        )


@bp.route("")
@roles_required(ALL_ROLES)
def index() -> BaseResponse:
    return redirect(url_for("settings.region_list"))


# --- regions ----------------------------------------------------------------------------------------
@bp.route("/regions")
@roles_required(ALL_ROLES)
def region_list() -> str:
    return render_template("settings/regions.html", rows=regions.list_regions(panel().context.sessions))


@bp.route("/regions/new", methods=["GET", "POST"])
@roles_required(ADMIN_ONLY)
def region_new() -> str | BaseResponse | tuple[str, int]:
    form = RegionForm()
    errors: list[str] = []
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                row = regions.create_region(
                    panel().context.sessions,
                    RegionInput(form.code.data or "", form.name.data or "", form.boundary.data or ""),
                    actor=user().username,
                    source=audit_source(),
                )
                panel().context.live.invalidate_actions()
                flash(translate("Region %(code)s created.", code=row.code), "success")
                return redirect(url_for("settings.region_list"))
            except RegionError as exc:
                errors.append(str(exc))
        else:
            errors = _form_errors(form)
    return render_template("settings/region_form.html", form=form, row=None, errors=errors), (
        400 if errors else 200
    )


@bp.route("/regions/<int:region_id>", methods=["GET", "POST"])
@roles_required(ALL_ROLES)
def region_edit(region_id: int) -> str | BaseResponse | tuple[str, int]:
    context = panel().context
    row = regions.get_region(context.sessions, region_id)
    if row is None:
        abort(404)
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
            settings = panel().settings
            try:
                saved, code_changed = regions.update_region(
                    context.sessions,
                    region_id,
                    RegionInput(form.code.data or "", form.name.data or "", form.boundary.data or ""),
                    protected_codes=frozenset({settings.default_region, settings.asterisk.fallback_region}),
                    actor=user().username,
                    source=audit_source(),
                )
                context.live.invalidate_actions()
                if code_changed:
                    listeners = request_reload(
                        context.live, reason=f"region {saved.code} renamed", actor=user().username
                    )
                    _reload_note(ReloadOutcome(listeners))
                else:
                    flash(translate("Saved."), "success")
                return redirect(url_for("settings.region_edit", region_id=region_id))
            except RegionError as exc:
                errors.append(str(exc))
        else:
            errors = _form_errors(form)
    return render_template("settings/region_form.html", form=form, row=row, errors=errors), (
        400 if errors else 200
    )


# --- centralists ------------------------------------------------------------------------------------
@bp.route("/centralists")
@roles_required(ALL_ROLES)
def centralist_list() -> str:
    region = request.args.get("region", "").strip().upper() or None
    rows = centralist_admin.list_centralists(panel().context.sessions, region)
    return render_template(
        "settings/centralists.html",
        rows=rows,
        region=region,
        regions=regions.list_regions(panel().context.sessions),
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
                row, outcome = centralist_admin.add(
                    panel().context,
                    endpoint=form.endpoint.data or "",
                    name=form.name.data or "",
                    region_code=form.region.data or "",
                    password=form.password.data or None,
                    contact=form.contact.data or None,
                    actor=user().username,
                    source=audit_source(),
                )
                _reload_note(outcome)
                return redirect(url_for("settings.centralist_list", region=row.region_code))
            except CentralistError as exc:
                errors.append(str(exc))
        else:
            errors = _form_errors(form)
    return render_template("settings/centralist_form.html", form=form, row=None, errors=errors), (
        400 if errors else 200
    )


@bp.route("/centralists/<int:centralist_id>", methods=["GET", "POST"])
@roles_required(ALL_ROLES)
def centralist_edit(centralist_id: int) -> str | BaseResponse | tuple[str, int]:
    context = panel().context
    row = centralist_admin.get(context.sessions, centralist_id)
    if row is None:
        abort(404)
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
                _saved, outcome = centralist_admin.edit(
                    context,
                    centralist_id,
                    name=form.name.data or "",
                    endpoint=form.endpoint.data or "",
                    region_code=form.region.data or "",
                    on_duty=bool(form.on_duty.data),
                    actor=user().username,
                    source=audit_source(),
                )
                _reload_note(outcome)
                return redirect(url_for("settings.centralist_edit", centralist_id=centralist_id))
            except CentralistError as exc:
                errors.append(str(exc))
        else:
            errors = _form_errors(form)
    return render_template(
        "settings/centralist_form.html", form=form, row=row, errors=errors, confirm=ConfirmForm()
    ), (400 if errors else 200)


@bp.route("/centralists/<int:centralist_id>/duty", methods=["POST"])
@roles_required(DUTY_ROLES)
def centralist_duty(centralist_id: int) -> BaseResponse:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        outcome = centralist_admin.set_on_duty(
            panel().context,
            centralist_id,
            request.form.get("on_duty") == "1",
            actor=user().username,
            source=audit_source(),
        )
    except CentralistError as exc:
        if centralist_admin.get(panel().context.sessions, centralist_id) is None:
            abort(404)
        flash(str(exc), "error")
        return redirect(url_for("settings.centralist_list"))
    _reload_note(outcome)
    if request.form.get("back") == "edit":
        return redirect(url_for("settings.centralist_edit", centralist_id=centralist_id))
    return redirect(url_for("settings.centralist_list"))


@bp.route("/centralists/<int:centralist_id>/active", methods=["POST"])
@roles_required(ADMIN_ONLY)
def centralist_active(centralist_id: int) -> BaseResponse:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if centralist_admin.get(panel().context.sessions, centralist_id) is None:
        abort(404)
    outcome = centralist_admin.set_active(
        panel().context,
        centralist_id,
        request.form.get("active") == "1",
        actor=user().username,
        source=audit_source(),
    )
    _reload_note(outcome)
    return redirect(url_for("settings.centralist_edit", centralist_id=centralist_id))


# --- users ------------------------------------------------------------------------------------------
@bp.route("/users", methods=["GET", "POST"])
@roles_required(ADMIN_ONLY)
def user_list() -> str | BaseResponse | tuple[str, int]:
    form = UserForm()
    form.centralist.choices = _centralist_choices()
    errors: list[str] = []
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                info = user_admin.create(
                    panel().context.sessions,
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
            errors = _form_errors(form)
    rows = user_admin.list_users(panel().context.sessions)
    return render_template("settings/users.html", rows=rows, form=form, errors=errors), (
        400 if errors else 200
    )


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@roles_required(ADMIN_ONLY)
def user_edit(user_id: int) -> str | BaseResponse | tuple[str, int]:
    sessions = panel().context.sessions
    row = user_admin.get_user(sessions, user_id)
    if row is None:
        abort(404)
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
                user_admin.set_role(
                    sessions,
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
            errors = _form_errors(form)
    return _user_page(row, form, errors)


def _user_page(
    row: user_admin.UserRow,
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


def _user_action(user_id: int) -> user_admin.UserRow:
    if not ConfirmForm().validate_on_submit():
        abort(400)
    row = user_admin.get_user(panel().context.sessions, user_id)
    if row is None:
        abort(404)
    return row


def _role_form(row: user_admin.UserRow) -> UserRoleForm:
    form = UserRoleForm(data={"role": row.role.value, "centralist": row.centralist_endpoint or ""})
    form.centralist.choices = _centralist_choices()
    return form


@bp.route("/users/<int:user_id>/active", methods=["POST"])
@roles_required(ADMIN_ONLY)
def user_active(user_id: int) -> BaseResponse | tuple[str, int]:
    row = _user_action(user_id)
    try:
        user_admin.set_active(
            panel().context.sessions,
            user_id,
            request.form.get("active") == "1",
            actor=user().username,
            source=audit_source(),
        )
    except UserError as exc:
        return _user_page(row, _role_form(row), [str(exc)])
    flash(translate("Saved."), "success")
    return redirect(url_for("settings.user_edit", user_id=user_id))


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@roles_required(ADMIN_ONLY)
def user_password(user_id: int) -> tuple[str, int]:
    row = _user_action(user_id)
    password = user_admin.reset_password(
        panel().context.sessions, user_id, actor=user().username, source=audit_source()
    )
    # Shown in this answer only: never flashed (the session cookie would carry it).
    return _user_page(row, _role_form(row), [], secret=password, secret_label=translate("New password"))


@bp.route("/users/<int:user_id>/token", methods=["POST"])
@roles_required(ADMIN_ONLY)
def user_token(user_id: int) -> tuple[str, int]:
    row = _user_action(user_id)
    try:
        token = user_admin.new_token(
            panel().context.sessions, user_id, actor=user().username, source=audit_source()
        )
    except UserError as exc:
        return _user_page(row, _role_form(row), [str(exc)])
    row = user_admin.get_user(panel().context.sessions, user_id) or row
    return _user_page(row, _role_form(row), [], secret=token, secret_label=translate("New API token"))


@bp.route("/users/<int:user_id>/token/revoke", methods=["POST"])
@roles_required(ADMIN_ONLY)
def user_token_revoke(user_id: int) -> BaseResponse:
    _user_action(user_id)
    user_admin.revoke_token(panel().context.sessions, user_id, actor=user().username, source=audit_source())
    flash(translate("Saved."), "success")
    return redirect(url_for("settings.user_edit", user_id=user_id))


# --- message templates ------------------------------------------------------------------------------
def _type_label(action_type: str) -> str:
    return ACTION_TYPE_LABELS[ActionType(action_type)][Language(current_language())]


@bp.route("/templates")
@roles_required(TEMPLATE_ROLES)
def template_list() -> str:
    return render_template(
        "settings/templates.html", cells=templates.grid(panel().context.sessions), type_label=_type_label
    )


@bp.route("/templates/<action_type>/<kind>/<channel>/<language>", methods=["GET", "POST"])
@roles_required(TEMPLATE_ROLES)
def template_edit(
    action_type: str, kind: str, channel: str, language: str
) -> str | BaseResponse | tuple[str, int]:
    key = templates.TemplateKey(action_type, kind, channel, language)
    try:
        key.check()
    except templates.TemplateError:
        abort(404)
    sessions = panel().context.sessions
    current = templates.load(sessions, key)
    form = TemplateForm(
        data={"subject": current.subject or "", "body": current.body} if request.method == "GET" else None
    )
    errors: list[str] = []
    rendered: RenderedMessage | None = None
    free_number = free_number_display(panel().settings.asterisk.free_number)
    if request.method == "POST":
        if not form.validate_on_submit():
            errors = _form_errors(form) or [
                translate("The form expired or was not sent from this site. Please try again.")
            ]
        elif request.form.get("do") == "reset":
            templates.reset(sessions, key, actor=user().username, source=audit_source())
            flash(translate("The default text applies again."), "success")
            return redirect(url_for("settings.template_edit", **key.__dict__))
        else:
            try:
                rendered = templates.preview(key, form.subject.data, form.body.data or "", free_number)
                if request.form.get("do") == "save":
                    templates.save(
                        sessions,
                        key,
                        subject=form.subject.data,
                        body=form.body.data or "",
                        actor=user().username,
                        source=audit_source(),
                    )
                    flash(translate("Saved."), "success")
                    return redirect(url_for("settings.template_edit", **key.__dict__))
            except templates.TemplateError as exc:
                errors.append(str(exc))
                rendered = None
    else:
        rendered = templates.preview(key, current.subject, current.body, free_number)
    html = render_template(
        "settings/template_form.html",
        key=key,
        form=form,
        errors=errors,
        rendered=rendered,
        customised=current.customised,
        placeholders=PLACEHOLDERS,
        sms_limit=SMS_LIMIT,
        type_label=_type_label,
    )
    return html, 400 if errors else 200

"""Neighbourhood inquiries: the panel pages (operators, admins) and the residents' public form.

Panel: list and detail for every logged-in role; the statements only for those with
need-to-know (:mod:`callback_api.access`: national roles, and centralists for inquiries linked to
an action of their region or team; never viewers), every read audited; creating, sending links
and follow-ups for admins and operators. Sending only asks the broadcast workers: the page says
the e-mails are queued, and its figures follow as they go out. Public: one page per personal
link, ``/inquiry/<token>``, no login but a CSRF token like every other form, and a body limit
the size of the largest photo (:mod:`callback_api.limits`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from burgernet.areas import AreaSpec
from burgernet.domain import Role
from burgernet.inquiries import LOCAL_TZ
from callback_api.areas import AreaInputError, area_from_fields
from callback_api.forms import ConfirmForm
from callback_api.i18n import translate
from callback_api.inquiry.forms import SAME_AREA_AS_ACTION, FollowUpForm, InquiryForm, StatementForm
from callback_api.inquiry.services import (
    InquiryError,
    InquiryNotFound,
    InquiryService,
    InquiryView,
    local_time,
    parse_local_datetime,
)
from callback_api.inquiry.statements import LinkGone, LinkNotFound, PublicLink, StatementService
from callback_api.limits import body_limit
from callback_api.photos import MAX_PHOTO_BYTES, PhotoError, check_photo
from callback_api.security import ALL_ROLES, audit_source, reader, roles_required, user
from callback_api.state import panel

bp = Blueprint("inquiry", __name__)

# Who runs inquiries: they e-mail residents in bulk, like the people pages' bulk access.
INQUIRY_ROLES = frozenset({Role.ADMIN, Role.OPERATOR})
# Room for the form fields and multipart framing around the largest photo accepted.
MAX_PUBLIC_POST_BYTES = MAX_PHOTO_BYTES + 256 * 1024


def service() -> InquiryService:
    state = panel()
    return InquiryService(state.context, state.settings, state.broadcasts)


def statements_service() -> StatementService:
    state = panel()
    return StatementService(state.context, state.settings)


def _action_choices() -> list[SelectChoice]:
    return [SelectChoice("", "—")] + [
        SelectChoice(str(choice.id), f"{choice.id}: {choice.title} ({choice.status})")
        for choice in service().action_choices()
    ]


def _action_id(value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise InquiryError(translate("Choose an action from the list."))
    return int(value)


def _area_spec(kind: str, fields: Any) -> AreaSpec | None:
    """The drawn/pasted area, or None for "the same area as the linked action"."""
    if kind == SAME_AREA_AS_ACTION:
        return None
    try:
        return area_from_fields(kind, fields)
    except AreaInputError as exc:
        raise InquiryError(str(exc)) from None


def _form_errors(form: FlaskForm) -> list[str]:
    return [f"{translate(form[name].label.text)}: {', '.join(msgs)}" for name, msgs in form.errors.items()]


def _inquiry_or_404(inquiry_id: int) -> InquiryView:
    try:
        return service().get(inquiry_id)
    except InquiryNotFound:
        abort(404)


def _render_new(form: InquiryForm, errors: list[str], status: int = 200) -> tuple[str, int]:
    return render_template("inquiry/new.html", form=form, errors=errors), status


@bp.route("/inquiries")
@roles_required(ALL_ROLES)
def index() -> str:
    return render_template(
        "inquiry/index.html",
        inquiries=service().list_inquiries(),
        now=datetime.now(UTC),
        local_time=local_time,
        INQUIRY_ROLES=INQUIRY_ROLES,
    )


@bp.route("/inquiries/new", methods=["GET", "POST"])
@roles_required(INQUIRY_ROLES)
def new() -> Response | tuple[str, int]:
    form = InquiryForm()
    form.action_id.choices = _action_choices()
    if request.method == "GET":
        if request.args.get("action_id", "").isdigit():
            form.action_id.data = request.args["action_id"]
        week = datetime.now(UTC).astimezone(LOCAL_TZ) + timedelta(days=7)
        form.closes_at.data = week.strftime("%Y-%m-%dT%H:%M")
        return _render_new(form, [])
    if not form.validate_on_submit():
        return _render_new(form, _form_errors(form), 400)
    try:
        inquiry_id = service().create(
            title=form.title.data or "",
            question=form.question.data or "",
            area=_area_spec(form.area_kind.data or "", request.form),
            closes_at=parse_local_datetime(form.closes_at.data or ""),
            action_id=_action_id(form.action_id.data),
            actor=user().username,
            source=audit_source(),
        )
    except InquiryError as exc:
        return _render_new(form, [str(exc)], 400)
    flash(translate("Inquiry %(id)s created. Send the links when it is ready.", id=inquiry_id), "success")
    return redirect(url_for("inquiry.detail", inquiry_id=inquiry_id))


@bp.route("/inquiries/recipients-preview", methods=["POST"])
@roles_required(INQUIRY_ROLES)
def recipients_preview() -> Response | tuple[Response, int]:
    """Live count while the area is drawn: who "send links" would e-mail."""
    try:
        spec = _area_spec(request.form.get("area_kind", ""), request.form)
        action_id = None
        if spec is None:
            action_id = _action_id(request.form.get("action_id"))
            if action_id is None:
                raise InquiryError(translate("Choose an action from the list."))
        count = service().count_recipients(spec, action_id)
    except InquiryError as exc:
        return jsonify({"error": str(exc)}), 400
    return jsonify({"recipients": count})


@bp.route("/inquiries/<int:inquiry_id>")
@roles_required(ALL_ROLES)
def detail(inquiry_id: int) -> str:
    view = _inquiry_or_404(inquiry_id)
    inquiries = service()
    who = reader()
    # Need-to-know: the statements only for those who may read the linked action's personal data.
    personal = inquiries.may_read_statements(who, inquiry_id)
    return render_template(
        "inquiry/detail.html",
        inquiry=view,
        personal=personal,
        statements=inquiries.statements(inquiry_id, who) if personal else [],
        updates=inquiries.updates(inquiry_id),
        is_open=view.is_open(),
        local_time=local_time,
        send_form=ConfirmForm(),
        follow_up_form=FollowUpForm(),
        INQUIRY_ROLES=INQUIRY_ROLES,
    )


@bp.route("/inquiries/<int:inquiry_id>/area.json")
@roles_required(ALL_ROLES)
def area(inquiry_id: int) -> Response:
    _inquiry_or_404(inquiry_id)
    return jsonify(service().area_feature(inquiry_id))


@bp.route("/inquiries/<int:inquiry_id>/recipients.json")
@roles_required(ALL_ROLES)
def recipients(inquiry_id: int) -> Response:
    _inquiry_or_404(inquiry_id)
    return jsonify({"inquiry_id": inquiry_id, "recipients": service().count_recipients_of(inquiry_id)})


@bp.route("/inquiries/<int:inquiry_id>/send", methods=["POST"])
@roles_required(INQUIRY_ROLES)
def send_links(inquiry_id: int) -> Response:
    _inquiry_or_404(inquiry_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        service().send_links(inquiry_id, actor=user().username, source=audit_source())
    except InquiryError as exc:
        flash(str(exc), "error")
        return redirect(url_for("inquiry.detail", inquiry_id=inquiry_id))
    flash(translate("The links are queued for sending."), "success")
    return redirect(url_for("inquiry.detail", inquiry_id=inquiry_id))


@bp.route("/inquiries/<int:inquiry_id>/follow-up", methods=["POST"])
@roles_required(INQUIRY_ROLES)
def follow_up(inquiry_id: int) -> Response:
    _inquiry_or_404(inquiry_id)
    form = FollowUpForm()
    if not form.validate_on_submit():
        flash(translate("Write the update first."), "error")
        return redirect(url_for("inquiry.detail", inquiry_id=inquiry_id))
    try:
        service().send_follow_up(
            inquiry_id, form.message.data or "", actor=user().username, source=audit_source()
        )
    except InquiryError as exc:
        flash(str(exc), "error")
        return redirect(url_for("inquiry.detail", inquiry_id=inquiry_id))
    flash(translate("The update is queued for sending."), "success")
    return redirect(url_for("inquiry.detail", inquiry_id=inquiry_id))


@bp.route("/inquiries/<int:inquiry_id>/statements/<int:statement_id>/photo")
@roles_required(ALL_ROLES)
def statement_photo(inquiry_id: int, statement_id: int) -> Response:
    path = service().statement_photo(inquiry_id, statement_id, reader())
    if path is None:
        abort(404)
    return send_file(path, max_age=0)


# The residents' side: no login, the personal token is the key. ---------------------------------


def _private(response: Response) -> Response:
    # The token is in the URL: keep the page out of caches, search engines and Referer headers.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _link_problem(exc: InquiryError) -> Response:
    status = 410 if isinstance(exc, LinkGone) else 404
    title = translate("This link can no longer be used") if status == 410 else translate("Unknown link")
    html = render_template("inquiry/link_error.html", status=status, title=title, message=translate(str(exc)))
    return _private(Response(html, status=status, mimetype="text/html"))


def _public_form(link: PublicLink, form: StatementForm, errors: list[str], status: int) -> Response:
    html = render_template(
        "inquiry/public_form.html",
        link=link,
        form=form,
        errors=errors,
        closes=local_time(link.closes_at),
        max_photo_mb=MAX_PHOTO_BYTES // (1024 * 1024),
    )
    return _private(Response(html, status=status, mimetype="text/html"))


def _public_too_large(token: str) -> Response:
    """A body over the public form's limit, refused before it is read: nothing of it is kept."""
    try:
        link = statements_service().open_link(token)
    except (LinkGone, LinkNotFound) as exc:
        return _link_problem(exc)
    too_big = translate("The photo is larger than %(mb)s MB.", mb=MAX_PHOTO_BYTES // (1024 * 1024))
    return _public_form(link, StatementForm(formdata=None), [too_big], 413)


@bp.route("/inquiry/<token>", methods=["GET", "POST"])
@body_limit(MAX_PUBLIC_POST_BYTES, refusal=_public_too_large)
def public_form(token: str) -> Response:
    statements = statements_service()
    try:
        link = statements.open_link(token)
    except (LinkGone, LinkNotFound) as exc:
        return _link_problem(exc)
    if request.method == "GET":
        return _public_form(link, StatementForm(), [], 200)
    form = StatementForm()
    if not form.validate_on_submit():
        return _public_form(link, form, _form_errors(form), 400)
    upload: Any = form.photo.data
    try:
        photo = check_photo(upload.read()) if upload is not None and upload.filename else None
    except PhotoError as exc:
        message = translate("The photo was not accepted: %(why)s", why=str(exc))
        return _public_form(link, form, [message], 400)
    try:
        statements.submit(token, form.text.data or "", photo, source=audit_source())
    except (LinkGone, LinkNotFound) as exc:
        return _link_problem(exc)
    except InquiryError as exc:
        return _public_form(link, form, [str(exc)], 400)
    html = render_template("inquiry/public_done.html", link=link)
    return _private(Response(html, status=200, mimetype="text/html"))

"""Neighbourhood inquiries: the panel pages (operators, admins) and the residents' public form.

Panel: list and detail for every logged-in role (statements included: the people searching
need them); creating, sending links and follow-ups for admins and operators. Public: one page
per personal link, ``/inquiry/<token>``, no login but a CSRF token like every other form.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import RadioField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import Role
from burgernet.mailer import Mailer
from burgernet.models import Action
from callback_api.areas import AreaInputError, area_from_fields
from callback_api.i18n import translate
from callback_api.inquiry import services as inquiries
from callback_api.inquiry.services import InquiryError, LinkGone, LinkNotFound
from callback_api.photos import MAX_PHOTO_BYTES, PhotoError, check_photo
from callback_api.security import ALL_ROLES, audit_source, roles_required, user
from callback_api.state import panel

bp = Blueprint("inquiry", __name__)

# Who runs inquiries: they e-mail residents in bulk, like the people pages' bulk access.
INQUIRY_ROLES = frozenset({Role.ADMIN, Role.OPERATOR})
SAME_AREA_AS_ACTION = "action"
# Room for the form fields and multipart framing around the largest photo accepted.
MAX_PUBLIC_POST_BYTES = MAX_PHOTO_BYTES + 256 * 1024


class InquiryForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=inquiries.MAX_TITLE_CHARS)])
    question = TextAreaField(
        "Question to the residents", validators=[DataRequired(), Length(max=inquiries.MAX_TEXT_CHARS)]
    )
    action_id = SelectField("Linked action (optional)", choices=[], validate_choice=False)
    area_kind = RadioField(
        "Area",
        choices=[
            SelectChoice(value, value) for value in ("circle", "polygon", "postcodes", SAME_AREA_AS_ACTION)
        ],
        default="circle",
    )
    lon = StringField("Longitude", validators=[Optional()])
    lat = StringField("Latitude", validators=[Optional()])
    radius_m = StringField("Radius (metres)", validators=[Optional()])
    geojson = TextAreaField("GeoJSON polygon: paste it, or draw it on the map", validators=[Optional()])
    postcodes = StringField("Postcodes, separated by commas", validators=[Optional(), Length(max=5000)])
    closes_at = StringField("Closing date", validators=[DataRequired(), Length(max=40)])


class FollowUpForm(FlaskForm):
    message = TextAreaField(
        "Update to everyone who received a link",
        validators=[DataRequired(), Length(max=inquiries.MAX_TEXT_CHARS)],
    )


class SendLinksForm(FlaskForm):
    """A bare POST: only the CSRF token."""


class StatementForm(FlaskForm):
    text = TextAreaField("Your statement", validators=[DataRequired(), Length(max=inquiries.MAX_TEXT_CHARS)])
    photo = FileField("Photo (optional; JPEG, PNG or WebP, at most 8 MB)")


def _action_choices() -> list[SelectChoice]:
    with session_scope(panel().context.sessions) as session:
        rows = session.execute(
            select(Action.id, Action.title, Action.status).order_by(Action.id.desc()).limit(200)
        ).all()
    return [SelectChoice("", "—")] + [
        SelectChoice(str(action_id), f"{action_id}: {title} ({status})") for action_id, title, status in rows
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


def _inquiry_or_404(inquiry_id: int) -> inquiries.InquiryView:
    try:
        return inquiries.get_inquiry(panel().context.sessions, inquiry_id)
    except InquiryError:
        abort(404)


def _mailer() -> Mailer:
    return Mailer(panel().settings.smtp)


def _render_new(form: InquiryForm, errors: list[str], status: int = 200) -> tuple[str, int]:
    return render_template("inquiry/new.html", form=form, errors=errors), status


@bp.route("/inquiries")
@roles_required(ALL_ROLES)
def index() -> str:
    return render_template(
        "inquiry/index.html",
        inquiries=inquiries.list_inquiries(panel().context.sessions),
        now=datetime.now(UTC),
        local_time=inquiries.local_time,
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
        week = datetime.now(UTC).astimezone(inquiries.LOCAL_TZ) + timedelta(days=7)
        form.closes_at.data = week.strftime("%Y-%m-%dT%H:%M")
        return _render_new(form, [])
    if not form.validate_on_submit():
        errors = _form_errors(form)
        return _render_new(form, errors, 400)
    try:
        inquiry_id = inquiries.create_inquiry(
            panel().context.sessions,
            title=form.title.data or "",
            question=form.question.data or "",
            area=_area_spec(form.area_kind.data or "", request.form),
            closes_at=inquiries.parse_local_datetime(form.closes_at.data or ""),
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
    """Live count while the area is drawn: opted-in participants with an e-mail address inside."""
    try:
        spec = _area_spec(request.form.get("area_kind", ""), request.form)
        if spec is None:
            action_id = _action_id(request.form.get("action_id"))
            if action_id is None:
                raise InquiryError(translate("Choose an action from the list."))
            with session_scope(panel().context.sessions) as session:
                spec = inquiries.action_area_spec(session, action_id)
        count = inquiries.count_eligible(panel().context.sessions, spec)
    except InquiryError as exc:
        return jsonify({"error": str(exc)}), 400
    return jsonify({"recipients": count})


@bp.route("/inquiries/<int:inquiry_id>")
@roles_required(ALL_ROLES)
def detail(inquiry_id: int) -> str:
    view = _inquiry_or_404(inquiry_id)
    sessions = panel().context.sessions
    return render_template(
        "inquiry/detail.html",
        inquiry=view,
        statements=inquiries.statements(sessions, inquiry_id),
        updates=inquiries.updates(sessions, inquiry_id),
        is_open=view.is_open(),
        local_time=inquiries.local_time,
        send_form=SendLinksForm(),
        follow_up_form=FollowUpForm(),
        INQUIRY_ROLES=INQUIRY_ROLES,
    )


@bp.route("/inquiries/<int:inquiry_id>/area.json")
@roles_required(ALL_ROLES)
def area(inquiry_id: int) -> Response:
    _inquiry_or_404(inquiry_id)
    return jsonify(inquiries.area_feature(panel().context.sessions, inquiry_id))


@bp.route("/inquiries/<int:inquiry_id>/recipients.json")
@roles_required(ALL_ROLES)
def recipients(inquiry_id: int) -> Response:
    _inquiry_or_404(inquiry_id)
    count = inquiries.count_eligible_for(panel().context.sessions, inquiry_id)
    return jsonify({"inquiry_id": inquiry_id, "recipients": count})


def _report(report: inquiries.SendReport) -> None:
    flash(translate("E-mails sent: %(sent)s.", sent=report.sent), "success")
    if report.retry_later:
        flash(
            translate(
                "%(count)s e-mails could not be sent now (mail server unavailable); send again later.",
                count=report.retry_later,
            ),
            "error",
        )
    if report.refused:
        flash(
            translate("%(count)s addresses were refused by the mail server.", count=report.refused), "error"
        )


@bp.route("/inquiries/<int:inquiry_id>/send", methods=["POST"])
@roles_required(INQUIRY_ROLES)
def send_links(inquiry_id: int) -> Response:
    _inquiry_or_404(inquiry_id)
    if not SendLinksForm().validate_on_submit():
        abort(400)
    try:
        report = inquiries.send_links(
            panel().context.sessions,
            _mailer(),
            inquiry_id=inquiry_id,
            base_url=panel().settings.web.public_base_url,
            actor=user().username,
            source=audit_source(),
        )
    except InquiryError as exc:
        flash(str(exc), "error")
        return redirect(url_for("inquiry.detail", inquiry_id=inquiry_id))
    flash(translate("New personal links: %(count)s.", count=report.new_links), "success")
    _report(report)
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
        report = inquiries.send_follow_up(
            panel().context.sessions,
            _mailer(),
            inquiry_id=inquiry_id,
            message=form.message.data or "",
            actor=user().username,
            source=audit_source(),
        )
    except InquiryError as exc:
        flash(str(exc), "error")
        return redirect(url_for("inquiry.detail", inquiry_id=inquiry_id))
    _report(report)
    return redirect(url_for("inquiry.detail", inquiry_id=inquiry_id))


@bp.route("/inquiries/<int:inquiry_id>/statements/<int:statement_id>/photo")
@roles_required(ALL_ROLES)
def statement_photo(inquiry_id: int, statement_id: int) -> Response:
    path = inquiries.statement_photo(panel().context.sessions, panel().settings, inquiry_id, statement_id)
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


def _public_form(link: inquiries.PublicLink, form: StatementForm, errors: list[str], status: int) -> Response:
    html = render_template(
        "inquiry/public_form.html",
        link=link,
        form=form,
        errors=errors,
        closes=inquiries.local_time(link.closes_at),
        max_photo_mb=MAX_PHOTO_BYTES // (1024 * 1024),
    )
    return _private(Response(html, status=status, mimetype="text/html"))


@bp.route("/inquiry/<token>", methods=["GET", "POST"])
def public_form(token: str) -> Response:
    sessions = panel().context.sessions
    try:
        link = inquiries.open_link(sessions, token)
    except InquiryError as exc:
        return _link_problem(exc)
    if request.method == "GET":
        return _public_form(link, StatementForm(), [], 200)
    if (request.content_length or 0) > MAX_PUBLIC_POST_BYTES:
        # Refused before the body is read: nothing of it is kept.
        too_big = translate("The photo is larger than %(mb)s MB.", mb=MAX_PHOTO_BYTES // (1024 * 1024))
        return _public_form(link, StatementForm(formdata=None), [too_big], 413)
    form = StatementForm()
    if not form.validate_on_submit():
        errors = _form_errors(form)
        return _public_form(link, form, errors, 400)
    upload: Any = form.photo.data
    try:
        photo = check_photo(upload.read()) if upload is not None and upload.filename else None
    except PhotoError as exc:
        message = translate("The photo was not accepted: %(why)s", why=str(exc))
        return _public_form(link, form, [message], 400)
    try:
        inquiries.submit_statement(
            sessions, panel().settings, token, form.text.data or "", photo, source=audit_source()
        )
    except (LinkGone, LinkNotFound) as exc:
        return _link_problem(exc)
    except InquiryError as exc:
        return _public_form(link, form, [str(exc)], 400)
    html = render_template("inquiry/public_done.html", link=link)
    return _private(Response(html, status=200, mimetype="text/html"))

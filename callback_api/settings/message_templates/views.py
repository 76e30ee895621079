"""Message templates, for admins and operators: the words sent to participants."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from burgernet.domain import ACTION_TYPE_LABELS, ActionType, Language
from burgernet.message_templates import (
    INQUIRY,
    SMS_LIMIT,
    RenderedMessage,
    TemplateError,
    TemplateKey,
    placeholders_for,
)
from callback_api.i18n import current_language, translate
from callback_api.security import audit_source, roles_required, user
from callback_api.settings.message_templates.forms import TemplateForm
from callback_api.settings.message_templates.services import TemplateAdminService
from callback_api.settings.views import TEMPLATE_ROLES, bp, form_errors
from callback_api.state import panel


def service() -> TemplateAdminService:
    state = panel()
    return TemplateAdminService(state.context, state.settings)


def _type_label(action_type: str) -> str:
    if action_type == INQUIRY:
        return translate("Neighbourhood inquiry")
    return ACTION_TYPE_LABELS[ActionType(action_type)][Language(current_language())]


@bp.route("/templates")
@roles_required(TEMPLATE_ROLES)
def template_list() -> str:
    return render_template("settings/templates.html", cells=service().grid(), type_label=_type_label)


@bp.route("/templates/<action_type>/<kind>/<channel>/<language>", methods=["GET", "POST"])
@roles_required(TEMPLATE_ROLES)
def template_edit(
    action_type: str, kind: str, channel: str, language: str
) -> str | BaseResponse | tuple[str, int]:
    templates = service()
    key = TemplateKey(action_type, kind, channel, language)
    current = templates.load(key)  # an unknown key is a 404
    form = TemplateForm(
        data={"subject": current.subject or "", "body": current.body} if request.method == "GET" else None
    )
    errors: list[str] = []
    rendered: RenderedMessage | None = None
    if request.method == "POST":
        if not form.validate_on_submit():
            errors = form_errors(form) or [
                translate("The form expired or was not sent from this site. Please try again.")
            ]
        elif request.form.get("do") == "reset":
            templates.reset(key, actor=user().username, source=audit_source())
            flash(translate("The default text applies again."), "success")
            return redirect(url_for("settings.template_edit", **key.__dict__))
        else:
            try:
                rendered = templates.preview(key, form.subject.data, form.body.data or "")
                if request.form.get("do") == "save":
                    templates.save(
                        key,
                        subject=form.subject.data,
                        body=form.body.data or "",
                        actor=user().username,
                        source=audit_source(),
                    )
                    flash(translate("Saved."), "success")
                    return redirect(url_for("settings.template_edit", **key.__dict__))
            except TemplateError as exc:
                errors.append(str(exc))
                rendered = None
    else:
        rendered = templates.preview(key, current.subject, current.body)
    html = render_template(
        "settings/template_form.html",
        key=key,
        form=form,
        errors=errors,
        rendered=rendered,
        customised=current.customised,
        placeholders=placeholders_for(key),
        sms_limit=SMS_LIMIT,
        type_label=_type_label,
    )
    return html, 400 if errors else 200

"""Action types, for admins and operators: radius, channels, urgency and text blocks a new
action of each type starts with (:mod:`burgernet.action_types`)."""

from __future__ import annotations

from dataclasses import replace

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from burgernet.action_types import ActionTypeTemplates
from burgernet.domain import ACTION_TYPE_LABELS, ActionType, Language
from callback_api.forms import ConfirmForm
from callback_api.i18n import current_language, translate
from callback_api.security import audit_source, roles_required, user
from callback_api.settings.action_types.forms import ActionTypeForm
from callback_api.settings.action_types.services import ActionTypeTemplateError, action_type_templates
from callback_api.settings.views import TEMPLATE_ROLES, bp, form_errors
from callback_api.state import panel


def templates() -> ActionTypeTemplates:
    return action_type_templates(panel().context)


def _label(action_type: str) -> str:
    return ACTION_TYPE_LABELS[ActionType(action_type)][Language(current_language())]


@bp.route("/action-types")
@roles_required(TEMPLATE_ROLES)
def action_type_list() -> str:
    return render_template("settings/action_types.html", rows=templates().all(), type_label=_label)


@bp.route("/action-types/<action_type>", methods=["GET", "POST"])
@roles_required(TEMPLATE_ROLES)
def action_type_edit(action_type: str) -> str | BaseResponse | tuple[str, int]:
    store = templates()
    current = store.get(action_type)  # an unknown type: the domain error's 4xx page
    form = ActionTypeForm(data=current.as_dict() if request.method == "GET" else None)
    errors: list[str] = []
    if request.method == "POST":
        if request.form.get("do") == "reset" and ConfirmForm().validate_on_submit():
            store.reset(action_type, actor=user().username, source=audit_source())
            flash(translate("The default applies again."), "success")
            return redirect(url_for("settings.action_type_edit", action_type=action_type))
        if form.validate_on_submit():
            try:
                store.save(
                    replace(
                        current,
                        radius_m=form.radius_m.data or 0,
                        channels=tuple(form.channels.data or ()),
                        urgency=form.urgency.data or "",
                        title_block=form.title_block.data or "",
                        description_block=form.description_block.data or "",
                        needs_approval=bool(form.needs_approval.data),
                    ),
                    actor=user().username,
                    source=audit_source(),
                )
                flash(translate("Saved."), "success")
                return redirect(url_for("settings.action_type_list"))
            except ActionTypeTemplateError as exc:
                errors.append(str(exc))
        else:
            errors = form_errors(form)
    page = render_template(
        "settings/action_type_form.html",
        form=form,
        template=current,
        label=_label(action_type),
        errors=errors,
    )
    return (page, 400) if errors else page

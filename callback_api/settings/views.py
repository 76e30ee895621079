"""The settings blueprint: the page helpers and role sets its sub-features share.

Each sub-feature (``regions``, ``centralists``, ``users``, ``message_templates``) is a folder of
its own like a top-level feature, and hangs its routes on this one ``settings`` blueprint, so
that every settings page keeps its ``/settings/...`` URL and ``settings.*`` endpoint name.

Who may do what: everyone signed in reads regions and centralists; only admins change them
(telecom admin work: a centralist is a SIP account on Asterisk). Admins and operators put
centralists on or off duty and edit message templates. Users are admin-only.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse

from burgernet.domain import Role
from callback_api.i18n import translate
from callback_api.security import ALL_ROLES, PEOPLE_ROLES, roles_required
from callback_api.settings.services import ReloadOutcome

bp = Blueprint("settings", __name__, url_prefix="/settings")

ADMIN_ONLY = frozenset({Role.ADMIN})
# Shifts and the words sent to participants: the coordinators' work as well as the admin's.
DUTY_ROLES = PEOPLE_ROLES
TEMPLATE_ROLES = PEOPLE_ROLES


def form_errors(form: FlaskForm) -> list[str]:
    return [f"{translate(form[name].label.text)}: {', '.join(msgs)}" for name, msgs in form.errors.items()]


def reload_note(outcome: ReloadOutcome) -> None:
    """Say whether a running Asterisk heard about the change."""
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

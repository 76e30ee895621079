"""Alert retries, for admins: what follows busy, no answer, an answering machine and a failed
alert call, and whether it then falls back to SMS (:mod:`burgernet.alert_policies`)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from burgernet.alert_policies import OutcomePolicy, Then
from callback_api.forms import ConfirmForm
from callback_api.i18n import translate
from callback_api.security import audit_source, roles_required, user
from callback_api.settings.alert_policies import words  # noqa: F401  (the page's Dutch words)
from callback_api.settings.alert_policies.forms import OutcomePolicyForm
from callback_api.settings.alert_policies.services import (
    AlertPolicyError,
    AlertPolicyStore,
    PolicyRow,
    alert_policy_store,
)
from callback_api.settings.views import ADMIN_ONLY, bp, form_errors
from callback_api.state import panel

# How soon every worker applies a change (broadcasting.worker.POLICY_CACHE_SECONDS; the panel
# may not import the worker, so the figure is repeated here for the page's text).
WORKERS_PICK_UP_SECONDS = 10

OUTCOME_LABELS = {
    "busy": "Busy",
    "no_answer": "No answer",
    "machine": "Answering machine (message left)",
    "failed": "Failed (the call cannot be made)",
}
THEN_LABELS = {"fall_back": "Send the alert by SMS", "done": "Stop"}


def policies() -> AlertPolicyStore:
    return alert_policy_store(panel().context)


def describe(policy: OutcomePolicy) -> str:
    """One line for a policy, in the page's language."""
    calls = translate(
        "%(attempts)s call(s), %(seconds)s s apart, ×%(multiplier)s",
        attempts=policy.attempts,
        seconds=f"{policy.backoff_seconds:g}",
        multiplier=f"{policy.backoff_multiplier:g}",
    )
    return f"{calls}; {translate(THEN_LABELS[policy.then]).lower()}"


@bp.route("/alert-policies")
@roles_required(ADMIN_ONLY)
def alert_policy_list() -> str:
    broadcast = panel().context.settings.broadcast
    return render_template(
        "settings/alert_policies.html",
        rows=policies().all(),
        outcome_label=lambda outcome: translate(OUTCOME_LABELS[outcome]),
        then_label=lambda then: translate(THEN_LABELS[then]),
        pick_up_seconds=WORKERS_PICK_UP_SECONDS,
        transient_attempts=broadcast.max_attempts,
        transient_seconds=f"{broadcast.retry_base_seconds:g}",
    )


@bp.route("/alert-policies/<outcome>", methods=["GET", "POST"])
@roles_required(ADMIN_ONLY)
def alert_policy_edit(outcome: str) -> str | BaseResponse | tuple[str, int]:
    store = policies()
    current: PolicyRow = store.get(outcome)  # an unknown outcome: the domain error's 404 page
    shown = current.policy
    form = OutcomePolicyForm(
        data={
            "attempts": shown.attempts,
            "backoff_seconds": int(shown.backoff_seconds),
            "backoff_multiplier": shown.backoff_multiplier,
            "then": shown.then,
        }
        if request.method == "GET"
        else None
    )
    errors: list[str] = []
    if request.method == "POST":
        if request.form.get("do") == "reset" and ConfirmForm().validate_on_submit():
            store.reset(outcome, actor=user().username, source=audit_source())
            flash(translate("The default applies again."), "success")
            return redirect(url_for("settings.alert_policy_list"))
        fixed = outcome == "failed"  # only what follows is a choice: a refused number stays refused
        if fixed:
            for name in ("attempts", "backoff_seconds", "backoff_multiplier"):
                del form[name]
        if form.validate_on_submit():
            then: Then = "fall_back" if form.then.data == "fall_back" else "done"
            chosen = (
                OutcomePolicy(1, 0.0, 1.0, then)
                if fixed
                else OutcomePolicy(
                    attempts=form.attempts.data or 0,
                    backoff_seconds=float(form.backoff_seconds.data or 0),
                    backoff_multiplier=float(form.backoff_multiplier.data or 0),
                    then=then,
                )
            )
            try:
                store.save(outcome, chosen, actor=user().username, source=audit_source())
                flash(translate("Saved."), "success")
                return redirect(url_for("settings.alert_policy_list"))
            except AlertPolicyError as exc:
                errors.append(str(exc))
        else:
            errors = form_errors(form)
    page = render_template(
        "settings/alert_policy_form.html",
        form=form,
        row=current,
        label=translate(OUTCOME_LABELS[outcome]),
        default=describe(current.default),
        errors=errors,
    )
    return (page, 400) if errors else page

"""Log in and out, and the language switch."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from burgernet.db import session_scope
from burgernet.repositories import record_audit
from callback_api.auth import services as users
from callback_api.forms import LanguageForm, LoginForm
from callback_api.i18n import LANGUAGES, translate
from callback_api.security import PanelUser, audit_source, user
from callback_api.state import panel

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no open redirect to another host)."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if form.validate_on_submit():
        state = panel()
        address = request.remote_addr or "unknown"
        username = form.username.data or ""
        if state.throttle.blocked(address, username):
            minutes = state.throttle.window_seconds // 60
            flash(translate("Too many attempts. Try again in %(minutes)s minutes.", minutes=minutes), "error")
            return render_template("login.html", form=form), 429
        info = users.authenticate(state.context.sessions, username, form.password.data or "")
        if info is None:
            state.throttle.failed(address, username)
            flash(translate("Wrong username or password."), "error")
            return render_template("login.html", form=form), 401
        state.throttle.succeeded(address, username)
        language = session.get("lang")
        session.clear()  # a fresh session on login (no fixation), keeping the language choice
        if language:
            session["lang"] = language
        login_user(PanelUser(info))
        with session_scope(state.context.sessions) as db:
            record_audit(
                db, actor=info.username, verb="login", entity="user", entity_id=info.id, source=audit_source()
            )
        return redirect(_safe_next(form.next.data))
    status = 400 if request.method == "POST" else 200
    return render_template("login.html", form=form), status


@bp.route("/logout", methods=["POST"])  # POST with CSRF token (CSRFProtect): no forced logouts
def logout() -> Response:
    if current_user.is_authenticated:
        with session_scope(panel().context.sessions) as db:
            record_audit(
                db,
                actor=user().username,
                verb="logout",
                entity="user",
                entity_id=user().info.id,
                source=audit_source(),
            )
    language = session.get("lang")
    logout_user()
    session.clear()
    if language:
        session["lang"] = language
    return redirect(url_for("auth.login"))


@bp.route("/lang", methods=["POST"])
def set_language() -> Response:
    form = LanguageForm()
    if form.validate_on_submit() and form.lang.data in LANGUAGES:
        session["lang"] = form.lang.data
    return redirect(_safe_next(form.next.data))

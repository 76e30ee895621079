"""Log in and out, and the language switch."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from burgernet.domain import Role
from callback_api.auth.forms import LanguageForm, LoginForm
from callback_api.auth.services import AccountService
from callback_api.i18n import choose_language, translate
from callback_api.limits import LOGIN_BYTES, body_limit
from callback_api.security import PanelUser, audit_source, reset_cookie, user
from callback_api.state import panel

bp = Blueprint("auth", __name__)


def service() -> AccountService:
    return AccountService(panel().context)


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no open redirect to another host)."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    if current_user.is_authenticated and user().role is Role.CENTRALIST:
        return url_for("desk.index")  # a centralist lands on the desk, where their call cards pop up
    return url_for("dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
@body_limit(LOGIN_BYTES)
def login() -> str | Response | tuple[str, int]:
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if form.validate_on_submit():
        throttle = panel().throttle
        address = request.remote_addr or "unknown"
        username = form.username.data or ""
        if throttle.blocked(address, username):
            minutes = throttle.window_seconds // 60
            flash(translate("Too many attempts. Try again in %(minutes)s minutes.", minutes=minutes), "error")
            return render_template("login.html", form=form), 429
        info = service().log_in(username, form.password.data or "", source=audit_source())
        if info is None:
            throttle.failed(address, username)
            flash(translate("Wrong username or password."), "error")
            return render_template("login.html", form=form), 401
        throttle.succeeded(address, username)
        reset_cookie()  # a fresh cookie on login (no fixation of an old one)
        login_user(PanelUser(info))
        return redirect(_safe_next(form.next.data))
    status = 400 if request.method == "POST" else 200
    return render_template("login.html", form=form), status


@bp.route("/logout", methods=["POST"])  # POST with CSRF token (CSRFProtect): no forced logouts
@body_limit(LOGIN_BYTES)
def logout() -> Response:
    if current_user.is_authenticated:
        # Ends the session on the server too: a copy of this cookie no longer logs anyone in.
        service().log_out(user().info, source=audit_source())
    logout_user()
    reset_cookie()
    return redirect(url_for("auth.login"))


@bp.route("/lang", methods=["POST"])
@body_limit(LOGIN_BYTES)
def set_language() -> Response:
    form = LanguageForm()
    if form.validate_on_submit():
        choose_language(form.lang.data or "")
    return redirect(_safe_next(form.next.data))

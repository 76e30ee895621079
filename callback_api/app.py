"""The Flask application: control panel, REST API and public AMBER Alert feeds.

``create_app()`` wires the core services (``burgernet.services.Services``) into Flask once; the
views call those services and never hold ORM objects after a request. Security defaults:
Flask-Login sessions in HttpOnly, SameSite=Lax cookies (Secure when the public URL is https)
that the server can end (a session version per user, see :mod:`callback_api.security`), CSRF
tokens on every panel form, role checks on every route, need-to-know on personal data
(:mod:`callback_api.access`), a body limit per route (:mod:`callback_api.limits`), a login
throttle per address (Redis, or memory while Redis is down), the client's address from a
trusted proxy (``web.trusted_proxy_hops``), and an audit event for every change.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, jsonify, redirect, render_template, request, send_from_directory
from flask_login import LoginManager, current_user, login_url
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from broadcasting.service import BroadcastService
from burgernet.domain import Role
from burgernet.errors import DomainError
from burgernet.services import Services
from burgernet.settings import Settings
from callback_api import (
    actions,
    api,
    approvals,
    auth,
    dashboard,
    desk,
    feeds,
    limits,
    live_events,
    participant_app,
    people,
    reports,
    sightings,
    worklist,
)
from callback_api import push as push_api
from callback_api import settings as settings_pages
from callback_api.auth.services import AccountService
from callback_api.errors import (
    CSRF_INVALID,
    INTERNAL_ERROR,
    NotAuthenticated,
    PanelError,
    current_request_id,
    error_body,
    http_code,
    status_of,
)
from callback_api.i18n import LANGUAGES, current_language, translate
from callback_api.inquiry import views as inquiry
from callback_api.local_time import iso_local, local_time
from callback_api.security import (
    ACTION_ROLES,
    ALL_ROLES,
    PEOPLE_ROLES,
    LoginThrottle,
    PanelUser,
    can,
    parse_session_id,
)
from callback_api.state import PanelState, panel
from callback_api.system import bp as system_bp
from callback_api.system.services import PanelHealth
from callback_api.system.views import SYSTEM_ROLES
from callback_api.webhooks import views as twilio_hooks

log = logging.getLogger(__name__)

# Front-end libraries installed by npm (package.json at the repository root), served by the app
# itself: the panel works in a control room without internet access to a CDN.
NODE_MODULES = Path(__file__).resolve().parent.parent / "node_modules"
VENDOR_DIRS = {
    "leaflet": NODE_MODULES / "leaflet" / "dist",
    "leaflet-draw": NODE_MODULES / "leaflet-draw" / "dist",
    "chart.js": NODE_MODULES / "chart.js" / "dist",
}
DEFAULT_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"

csrf = CSRFProtect()


def create_app(
    settings: Settings,
    *,
    context: Services,
    config: dict[str, Any] | None = None,
) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.web.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Behind https the cookie must never travel in clear; plain http only for local use.
        SESSION_COOKIE_SECURE=settings.web.public_base_url.startswith("https://"),
        SESSION_COOKIE_NAME="burgernet_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.web.public_base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=12 * 3600,  # one control-room shift
        WTF_CSRF_TIME_LIMIT=12 * 3600,
        MAP_TILE_URL=DEFAULT_TILE_URL,
    )
    if config:
        app.config.update(config)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep documents in the order written
    if settings.web.trusted_proxy_hops:
        # Only behind that many proxies of our own: X-Forwarded-For/-Proto from anyone else would
        # let a client choose the address the login throttle and the audit log see.
        hops = settings.web.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.extensions["burgernet"] = PanelState(
        settings, context, BroadcastService.for_services(context), LoginThrottle(context.live)
    )
    app.extensions["burgernet.health"] = PanelHealth(context)  # for /healthz

    # Before CSRFProtect: the body's size is checked before anything parses the form.
    limits.install(app, recording_bytes=settings.audio.max_upload_bytes)
    csrf.init_app(app)
    login_manager = LoginManager(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = ""
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(session_id: str) -> PanelUser | None:
        # A cookie from before the last logout, password or role change names an old version.
        parsed = parse_session_id(session_id)
        if parsed is None:
            return None
        info = AccountService(panel().context).by_session(*parsed)
        return PanelUser(info) if info else None

    @login_manager.unauthorized_handler
    def unauthorized() -> Any:
        """The login page for a browser; 401 for a script (JSON, XHR, the live feed)."""
        if _wants_json() or _script_request():
            return _json_error(401, NotAuthenticated.code, "log in first (no session, or it has ended)")
        return redirect(login_url(login_manager.login_view or "auth.login", request.url))

    for blueprint in (
        auth.bp,
        dashboard.bp,
        actions.bp,
        people.bp,
        feeds.bp,
        api.bp,
        inquiry.bp,
        settings_pages.bp,
        twilio_hooks.bp,
        system_bp,
        live_events.bp,
        sightings.bp,
        sightings.api_bp,
        worklist.bp,
        desk.bp,
        reports.bp,
        reports.api_bp,
        push_api.bp,
        participant_app.bp,
        approvals.bp,
        approvals.api_bp,
    ):
        app.register_blueprint(blueprint)
    csrf.exempt(api.bp)  # token-authenticated, never cookie-authenticated
    csrf.exempt(sightings.api_bp)  # token-authenticated, like the rest of the API
    csrf.exempt(reports.api_bp)  # token-authenticated, like the rest of the API
    csrf.exempt(approvals.api_bp)  # token-authenticated, like the rest of the API
    csrf.exempt(twilio_hooks.bp)  # authenticated by Twilio's request signature
    csrf.exempt(push_api.bp)  # the participant app sends no cookies: nothing to forge
    csrf.exempt(participant_app.bp)  # the app itself: no session, no cookie, nothing to forge

    @app.route("/vendor/<package>/<path:filename>")
    def vendor(package: str, filename: str) -> Response:
        folder = VENDOR_DIRS.get(package)
        if folder is None:
            abort(404)
        return send_from_directory(folder, filename, max_age=86400)

    # Every time in the panel is shown in Europe/Amsterdam (callback_api/local_time.py).
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["iso_local"] = iso_local

    @app.context_processor
    def template_globals() -> dict[str, Any]:
        return {
            "_": translate,
            "lang": current_language(),
            "languages": LANGUAGES,
            "can": can,
            "ALL_ROLES": ALL_ROLES,
            "ACTION_ROLES": ACTION_ROLES,
            "PEOPLE_ROLES": PEOPLE_ROLES,
            "SYSTEM_ROLES": SYSTEM_ROLES,
            "Role": Role,
            "csrf_token": generate_csrf,
            "current_user": current_user,
            "tile_url": app.config["MAP_TILE_URL"],
        }

    _register_error_handlers(app)

    @app.after_request
    def security_headers(response: Response) -> Response:
        tiles = app.config["MAP_TILE_URL"].split("/{", 1)[0] if app.config["MAP_TILE_URL"] else ""
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data: blob: {tiles}; connect-src 'self'; object-src 'none'; "
            "base-uri 'self'; form-action 'self'"
            + ("" if response.headers.get("X-Burgernet-Frameable") else "; frame-ancestors 'none'"),
        )
        if not response.headers.pop("X-Burgernet-Frameable", None):
            response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.path.startswith("/api/") or current_user.is_authenticated:
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def _wants_json() -> bool:
    """Errors as JSON: the API and the webhooks."""
    return request.path.startswith("/api/") or request.blueprint == "twilio_hooks"


def _script_request() -> bool:
    """A request made by the panel's own scripts (fetch/XHR, EventSource), not a page load."""
    return request.headers.get("X-Requested-With") == "XMLHttpRequest" or request.accept_mimetypes.best in (
        "application/json",
        "text/event-stream",
    )


def _json_error(status: int, code: str, message: str) -> tuple[Response, int]:
    log.info(
        "request %s: %s %s → %s %s: %s",
        current_request_id(),
        request.method,
        request.path,
        status,
        code,
        message,
    )
    return jsonify(error_body(status, message, code)), status


def _common_message(status: int) -> str | None:
    """The page's words for a refusal whose details are none of the visitor's business."""
    if status == 403:
        return translate("You are not allowed to do this.")
    if status == 404:
        return translate("Page not found.")
    return None


def _error_page(status: int, message: str, reference: str | None = None) -> str:
    return render_template("error.html", status=status, message=message, reference=reference)


def _register_error_handlers(app: Flask) -> None:
    """Every error answer names the request (``X-Request-Id``); API errors are JSON with the
    stable code as ``error_id`` (:mod:`callback_api.errors`), panel errors the error page."""

    @app.after_request
    def tag_request(response: Response) -> Response:
        response.headers["X-Request-Id"] = current_request_id()
        return response

    @app.errorhandler(PanelError)
    @app.errorhandler(DomainError)
    def refused(error: PanelError | DomainError) -> Any:
        status = status_of(error)
        if _wants_json():
            return _json_error(status, error.code, str(error))
        log.info(
            "request %s: %s %s → %s %s",
            current_request_id(),
            request.method,
            request.path,
            status,
            error.code,
        )
        message = _common_message(status) or str(error)
        return _error_page(status, message), status

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int]:
        log.info(
            "request %s: %s %s → 400 %s", current_request_id(), request.method, request.path, CSRF_INVALID
        )
        message = translate("The form expired or was not sent from this site. Please try again.")
        return _error_page(400, message), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        status = error.code or 500
        if _wants_json():
            return _json_error(status, http_code(error), error.description or error.name)
        message = _common_message(status) or error.description or error.name
        response = error.get_response()
        return Response(
            _error_page(status, message),
            status=status,
            headers={"Allow": response.headers.get("Allow", "")} if status == 405 else None,
            mimetype="text/html",
        )

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Any, int]:
        reference = current_request_id()
        log.exception("request %s: unexpected error on %s %s", reference, request.method, request.path)
        if _wants_json():
            return jsonify(error_body(500, "internal error; quote the request_id", INTERNAL_ERROR)), 500
        message = translate("Something went wrong. Error reference: %(ref)s", ref=reference)
        return _error_page(500, message, reference), 500

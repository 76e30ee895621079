"""The participant app under ``/app``: the page, its manifest and service worker, and its small API.

No login, no cookie, no CSRF token (the blueprint is exempt: nothing here acts on a session).
Every error of the app's API is JSON, ``{"error": {"code": ..., "message": ...}}``, with
400 (refused input), 404 (no such active action), 409 (the action has ended), 413 (too large)
or 429 (too many sightings).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request, send_file
from werkzeug.exceptions import HTTPException

from burgernet.errors import DomainError
from burgernet.phone import free_number_display
from callback_api.errors import NotFound, PanelError, current_request_id, http_code, status_of
from callback_api.limits import body_limit
from callback_api.participant_app.icons import SIZES, icon_png
from callback_api.participant_app.services import (
    ParticipantAppService,
    SightingThrottle,
    parse_sighting,
)
from callback_api.participant_app.words import LANGUAGES, translate, words_script
from callback_api.photos import MAX_PHOTO_BYTES
from callback_api.state import panel

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
bp = Blueprint(
    "participant_app", __name__, url_prefix="/app", template_folder="templates", static_folder="static"
)
_THROTTLE = "burgernet.app_sightings_throttle"
# Room for the form's fields and the multipart framing around the largest photo accepted.
MAX_SIGHTING_BYTES = MAX_PHOTO_BYTES + 256 * 1024


@bp.record_once
def _make_throttle(state: Any) -> None:
    state.app.extensions[_THROTTLE] = SightingThrottle(state.app.extensions["burgernet"].context.live)


def throttle() -> SightingThrottle:
    found: SightingThrottle = current_app.extensions[_THROTTLE]
    return found


def service() -> ParticipantAppService:
    state = panel()
    return ParticipantAppService(state.context, state.settings)


def _error(status: int, code: str, message: str) -> tuple[Response, int]:
    # The code and the request id in the log, as for the panel's refusals (never the body).
    log.info("request %s: %s %s → %s %s", current_request_id(), request.method, request.path, status, code)
    response = jsonify({"error": {"code": code, "message": message}})
    response.headers["Cache-Control"] = "no-store"
    return response, status


@bp.errorhandler(PanelError)
@bp.errorhandler(DomainError)
def _refused(error: PanelError | DomainError) -> tuple[Response, int]:
    status = status_of(error)
    # The contract's statuses: refused input is 400 for the app, whatever its kind.
    return _error(400 if status == 422 else status, error.code, str(error))


@bp.errorhandler(HTTPException)
def _http(error: HTTPException) -> tuple[Response, int]:
    return _error(error.code or 500, http_code(error), error.description or error.name)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the app itself ----------------------------------------------------------------------------
@bp.route("/")
def shell() -> Response:
    lang = request.accept_languages.best_match(LANGUAGES) or "nl"
    number = panel().settings.asterisk.free_number

    def t(text: str, **values: object) -> str:
        return translate(text, lang, **values)

    html = render_template(
        "participant_app/shell.html",
        t=t,
        app_lang=lang,
        free_number=number,
        free_number_display=free_number_display(number),
        tile_url=current_app.config["MAP_TILE_URL"],
    )
    response = Response(html, mimetype="text/html")
    # Revalidated every time: the service worker keeps its own copy for offline use.
    response.headers["Cache-Control"] = "no-cache"
    response.vary.add("Accept-Language")
    return response


@bp.route("/manifest.webmanifest")
def manifest() -> Response:
    icons = [
        {"src": f"/app/icons/{size}.png", "sizes": f"{size}x{size}", "type": "image/png", "purpose": purpose}
        for size in SIZES
        for purpose in ("any", "maskable")
    ]
    body = {
        "id": "/app/",
        "name": "Burgernet",
        "short_name": "Burgernet",
        "description": translate(
            "Alerts from the police for the places you choose, and a way to tell them what you saw.", "nl"
        ),
        "lang": "nl",
        "start_url": "/app/",
        "scope": "/app/",
        "display": "standalone",
        "background_color": "#f4f6fa",
        "theme_color": "#0b3d91",
        "icons": icons,
    }
    response = jsonify(body)
    response.mimetype = "application/manifest+json"
    return response


@bp.route("/sw.js")
def service_worker() -> Response:
    response = send_file(STATIC / "sw.js", mimetype="text/javascript", max_age=0)
    response.headers["Service-Worker-Allowed"] = "/app/"
    # A new worker must reach the phone at once: never from an HTTP cache.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.route("/words.js")
def words() -> Response:
    response = Response(words_script(), mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.route("/icons/<int:size>.png")
def icon(size: int) -> Response:
    if size not in SIZES:
        raise NotFound(f"no icon of {size} px; sizes: {', '.join(map(str, SIZES))}")
    response = Response(icon_png(size), mimetype="image/png")
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response


# --- the app's API -----------------------------------------------------------------------------
@bp.route("/api/actions/<int:action_id>")
def action(action_id: int) -> Response:
    return _no_store(jsonify(service().action_document(action_id)))


@bp.route("/actions/<int:action_id>/photo")
def action_photo(action_id: int) -> Response:
    return send_file(service().action_photo(action_id), max_age=30)


@bp.route("/api/postcodes/<code>")
def postcode(code: str) -> Response:
    """Where a postcode lies, for a place typed in; nothing about the request is kept."""
    return _no_store(jsonify(service().postcode(code).as_dict()))


def _too_large(action_id: int) -> tuple[Response, int]:
    return _error(413, "request.too_large", f"the photo is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB")


@bp.route("/api/actions/<int:action_id>/sightings", methods=["POST"])
@body_limit(MAX_SIGHTING_BYTES, refusal=_too_large)
def sighting(action_id: int) -> tuple[Response, int]:
    form = {key: str(value) for key, value in request.form.items()}
    throttle().take(request.remote_addr or "unknown", form.get("endpoint") or None)
    upload = request.files.get("photo")
    data = upload.read() if upload is not None and upload.filename else None
    view = service().record_sighting(action_id, parse_sighting(form, data or None))
    return _no_store(jsonify({"id": view.id})), 201

"""How large a request body each route accepts, checked before anything reads the body.

A body larger than its route's limit is answered 413 (``request.too_large``: the error page, or
JSON for the API and webhooks) before the form, the JSON or the CSRF token is parsed, so an
anonymous visitor cannot make the panel read (or spool to disk) megabytes it never wanted. The
limit applies to the ``Content-Length`` announced and, for a chunked body, to what is read.

Which limit a request gets, first match wins:

1. the view's own, set with :func:`body_limit` (the CSV import's large one, the public
   inquiry form's photo-sized one, the login's small one);
2. its blueprint's (:data:`BLUEPRINT_LIMITS`: webhooks are small, the API gets the panel's);
3. :data:`PANEL_BYTES` for a logged-in panel user, :data:`ANONYMOUS_BYTES` for everyone else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request
from flask_login import current_user

from callback_api.errors import RequestTooLarge

F = TypeVar("F", bound=Callable[..., Any])

KIB = 1024
MIB = 1024 * KIB
# Logging in, switching the language: a few form fields.
LOGIN_BYTES = 16 * KIB
# Any other body from someone not logged in (a Twilio status callback is about 1 KiB).
ANONYMOUS_BYTES = 64 * KIB
# Logged-in panel pages and the API: an action's photo (8 MiB) or an alert recording (20 MiB by
# default; raised with ``audio.max_upload_bytes``, see :func:`install`).
PANEL_BYTES = 32 * MIB
# The participant CSV import: a few million rows.
IMPORT_BYTES = 256 * MIB

BLUEPRINT_LIMITS = {
    "twilio_hooks": ANONYMOUS_BYTES,
    "api": None,  # token-authenticated: the panel's limit (None = the logged-in default)
}

_ATTRIBUTE = "burgernet_body_limit"


def body_limit(max_bytes: int, *, refusal: Callable[..., Any] | None = None) -> Callable[[F], F]:
    """Give one view its own body limit, e.g. ``@body_limit(IMPORT_BYTES)`` on the CSV import.

    ``refusal``, called with the view's URL arguments, answers a body over the limit in the
    view's own words (the public form says how large a photo may be); else the 413 error page.
    Put it directly above the ``def`` (below ``@bp.route`` and the role check)."""

    def decorate(view: F) -> F:
        setattr(view, _ATTRIBUTE, (max_bytes, refusal))
        return view

    return decorate


def limit_for_request() -> tuple[int, Callable[..., Any] | None]:
    """The body limit of this request's route, and the view's own refusal if it has one."""
    view = current_app.view_functions.get(request.endpoint or "")
    own: tuple[int, Callable[..., Any] | None] | None = getattr(view, _ATTRIBUTE, None)
    return own if own is not None else (_default_limit(), None)


def _default_limit() -> int:
    panel_bytes: int = current_app.config["BODY_LIMIT_PANEL"]
    blueprint = request.blueprint or ""
    if blueprint in BLUEPRINT_LIMITS:
        return BLUEPRINT_LIMITS[blueprint] or panel_bytes
    return panel_bytes if current_user.is_authenticated else ANONYMOUS_BYTES


def install(app: Flask, *, recording_bytes: int) -> None:
    """Check every request's body against its limit; call before anything else reads bodies
    (CSRFProtect parses the form in its own ``before_request``)."""
    app.config["BODY_LIMIT_PANEL"] = max(PANEL_BYTES, recording_bytes + MIB)
    # The ceiling for anything the checks below miss: the largest limit of any route.
    app.config["MAX_CONTENT_LENGTH"] = max(IMPORT_BYTES, app.config["BODY_LIMIT_PANEL"])

    @app.before_request
    def check_body_size() -> Any:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        limit, refusal = limit_for_request()
        # Werkzeug stops reading a chunked body at this many bytes (413 from the parser).
        request.max_content_length = limit
        if (request.content_length or 0) <= limit:
            return None
        if refusal is not None:
            return refusal(**(request.view_args or {}))
        raise RequestTooLarge(f"the request body is larger than {limit} bytes, the limit of this route")

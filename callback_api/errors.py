"""Errors the panel and the API refuse a request with, and the JSON body that reports them.

Every refusal carries a stable ``code`` (``"action.not_found"``, ``"auth.forbidden"``): the API
returns it as ``error_id`` and the log line carries it, so a client can branch on it and a
search of the logs finds every occurrence. Messages are for people and may change.

Two families reach a response:

* :class:`PanelError`: refusals of the panel itself (a malformed request, a missing token,
  a bad upload), each with its HTTP ``status``;
* :class:`burgernet.errors.DomainError`: refusals of the core; :func:`status_of` maps its
  kinds to HTTP (not found → 404, conflict with the current state → 409, else 422).

Each request also has a ``request_id`` (a UUID, in the ``X-Request-Id`` header, in every error
body and in the log lines about it): the code says *what* went wrong, the request id *which*
request it was.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, ClassVar

from flask import g, has_request_context
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from burgernet.errors import ConflictError, DomainError, NotFoundError
from burgernet.reports import ReportParameterError

INTERNAL_ERROR = "server.internal_error"
CSRF_INVALID = "request.csrf_invalid"


class PanelError(Exception):
    """A request the panel refuses; the message says why and nothing was changed."""

    code: ClassVar[str] = "request.refused"
    status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestInvalid(PanelError):
    """The request itself is malformed: not JSON, an unknown query value, a missing field."""

    code: ClassVar[str] = "request.invalid"
    status: ClassVar[int] = 400


class InputInvalid(PanelError):
    """A well-formed request whose content is refused (a field of the wrong type or value)."""

    code: ClassVar[str] = "input.invalid"
    status: ClassVar[int] = 422


class NotAuthenticated(PanelError):
    code: ClassVar[str] = "auth.unauthenticated"
    status: ClassVar[int] = 401


class Forbidden(PanelError):
    code: ClassVar[str] = "auth.forbidden"
    status: ClassVar[int] = 403


class NotFound(PanelError):
    code: ClassVar[str] = "resource.not_found"
    status: ClassVar[int] = 404


class RequestTooLarge(PanelError):
    """The body is larger than its route accepts (:mod:`callback_api.limits`); nothing was read."""

    code: ClassVar[str] = "request.too_large"
    status: ClassVar[int] = 413


def status_of(error: PanelError | DomainError) -> int:
    if isinstance(error, PanelError):
        return error.status
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, ConflictError):
        return 409
    if isinstance(error, ReportParameterError):  # a period or scope that cannot be read: the query's fault
        return 400
    return 422


def http_code(error: HTTPException) -> str:
    """A stable code for an HTTP error raised by Flask itself: ``http.not_found``,
    ``http.method_not_allowed`` (from the standard reason phrase of the status)."""
    status = error.code or 500
    if status == RequestTooLarge.status:  # werkzeug's own, for a chunked body: the same code as ours
        return RequestTooLarge.code
    phrase = HTTP_STATUS_CODES.get(status, str(status))
    return "http." + re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")


def current_request_id() -> str:
    """This request's id, made on first use (some errors are raised before any view runs)."""
    if not has_request_context():
        return str(uuid.uuid4())
    value: str = g.setdefault("request_id", str(uuid.uuid4()))
    return value


def error_body(status: int, message: str, error_id: str, request_id: str | None = None) -> dict[str, Any]:
    """The JSON of every API error: ``error_id`` is the stable code, ``request_id`` the request's."""
    return {
        "status": status,
        "error_id": error_id,
        "message": message,
        "request_id": request_id or current_request_id(),
    }

"""``/app/api/push``: the participant app's subscription API (JSON in, JSON out, no cookies)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from burgernet.errors import DomainError
from callback_api.limits import body_limit
from callback_api.push.services import (
    MAX_BODY_BYTES,
    BodyInvalid,
    PushKeyMissing,
    PushSubscriptionService,
    TooManyRequests,
)
from callback_api.state import panel

bp = Blueprint("push", __name__, url_prefix="/app/api/push")


def service() -> PushSubscriptionService:
    return PushSubscriptionService(panel().context)


def _error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message}}), status


def _too_large(**_kwargs: Any) -> tuple[Response, int]:
    return _error(413, "request.too_large", f"the body may be at most {MAX_BODY_BYTES} bytes")


def _status(exc: DomainError) -> int:
    if isinstance(exc, TooManyRequests):
        return 429
    if isinstance(exc, PushKeyMissing):
        return 503
    return 400


def _json_body() -> object:
    body = request.get_json(silent=True)
    if body is None:
        raise BodyInvalid("send a JSON body (Content-Type: application/json)")
    return body


@bp.route("/key", methods=["GET"])
def key() -> Response | tuple[Response, int]:
    try:
        return jsonify({"public_key": service().public_key()})
    except DomainError as exc:
        return _error(_status(exc), exc.code, str(exc))


@bp.route("/subscriptions", methods=["POST"])
@body_limit(MAX_BODY_BYTES, refusal=_too_large)
def subscribe() -> tuple[Response, int]:
    push = service()
    try:
        push.check_rate(request.remote_addr or "unknown")
        push.subscribe(_json_body())
    except DomainError as exc:
        return _error(_status(exc), exc.code, str(exc))
    return jsonify({"ok": True}), 201


@bp.route("/subscriptions", methods=["DELETE"])
@body_limit(MAX_BODY_BYTES, refusal=_too_large)
def unsubscribe() -> tuple[Response, int] | tuple[str, int]:
    push = service()
    try:
        push.check_rate(request.remote_addr or "unknown")
        push.unsubscribe(_json_body())
    except DomainError as exc:
        return _error(_status(exc), exc.code, str(exc))
    return "", 204

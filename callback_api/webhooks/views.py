"""Twilio webhooks: SMS and call status callbacks, inbound SMS, and the alert call's TwiML.

Authenticated by Twilio's request signature instead of a login or CSRF token: every request
must carry an ``X-Twilio-Signature`` that matches the public URL Twilio used (callback base +
path + query) and the posted parameters, computed with our auth token. Anything else gets a
403 with a JSON error and changes nothing. The routes are :mod:`broadcasting.twilio.paths`;
what each does is :class:`broadcasting.twilio.TwilioWebhooks`.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, jsonify, request, send_file

from broadcasting.twilio import EMPTY_TWIML, TwilioInputError, TwilioWebhooks, UnknownDelivery, paths
from callback_api.errors import error_body
from callback_api.state import panel

log = logging.getLogger(__name__)

bp = Blueprint("twilio_hooks", __name__)

_UNSIGNED_RULES = {path.rule for path in paths.ALL if not path.signed}


def _hooks() -> TwilioWebhooks:
    return TwilioWebhooks.for_services(panel().context)


# Stable codes of the webhook refusals (the API's error_id), by HTTP status.
_CODES = {
    400: "webhook.invalid",
    403: "webhook.signature_invalid",
    404: "webhook.unknown_delivery",
}


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error_body(status, message, _CODES[status])), status


@bp.before_request
def check_signature() -> tuple[Response, int] | None:
    if request.url_rule is not None and request.url_rule.rule in _UNSIGNED_RULES:
        return None
    if not _hooks().signature_valid(
        request.path,
        request.query_string.decode("utf-8", "replace"),
        request.form if request.method == "POST" else {},
        request.headers.get("X-Twilio-Signature", ""),
    ):
        log.warning(
            "Twilio webhook %s refused: missing or wrong signature (from %s)",
            request.path,
            request.remote_addr,
        )
        return _error(403, "invalid or missing X-Twilio-Signature")
    return None


def _delivery_arg() -> int | None:
    value = request.args.get(paths.DELIVERY_ARG, "")
    return int(value) if value.isdigit() else None


def _twiml(document: str) -> Response:
    return Response(document, mimetype="text/xml")


def _status(voice: bool) -> Response | tuple[Response, int]:
    try:
        _hooks().status(request.form, voice=voice, delivery_id=_delivery_arg())
    except TwilioInputError as exc:
        return _error(400, str(exc))
    return _twiml(EMPTY_TWIML)


@bp.route(paths.SMS_STATUS.rule, methods=paths.SMS_STATUS.methods)
def sms_status() -> Response | tuple[Response, int]:
    return _status(voice=False)


@bp.route(paths.VOICE_STATUS.rule, methods=paths.VOICE_STATUS.methods)
def voice_status() -> Response | tuple[Response, int]:
    return _status(voice=True)


@bp.route(paths.SMS_INBOUND.rule, methods=paths.SMS_INBOUND.methods)
def sms_inbound() -> Response | tuple[Response, int]:
    try:
        _hooks().inbound_sms(request.form)
    except TwilioInputError as exc:
        return _error(400, str(exc))
    return _twiml(EMPTY_TWIML)


@bp.route(paths.VOICE_ALERT.rule, methods=paths.VOICE_ALERT.methods)
def voice_alert() -> Response | tuple[Response, int]:
    delivery_id = _delivery_arg()
    if delivery_id is None:
        return _error(400, f"the alert URL needs ?{paths.DELIVERY_ARG}=<id>")
    params = request.form if request.method == "POST" else request.args
    try:
        document = _hooks().alert(delivery_id, params, request.args.get(paths.PLAY_ARG, "1"))
    except UnknownDelivery:
        return _error(404, f"no delivery {delivery_id}")
    return _twiml(document)


@bp.route(paths.VOICE_AUDIO.rule, methods=paths.VOICE_AUDIO.methods)
def message_audio(action_id: int, language: str) -> Response:
    path = _hooks().audio_file(action_id, language, request.args.get(paths.TOKEN_ARG, ""))
    if path is None:
        abort(404)
    return send_file(path, mimetype="audio/wav", max_age=300)

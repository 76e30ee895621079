"""Twilio webhooks: SMS and call status callbacks, inbound SMS, and the alert call's TwiML.

Authenticated by Twilio's request signature instead of a login or CSRF token: every request
must carry an ``X-Twilio-Signature`` that matches the public URL Twilio used (callback base +
path + query) and the posted parameters, computed with our auth token. Anything else gets a
403 with a JSON error and changes nothing. The logic lives in
:mod:`callback_api.webhooks.services`.
"""

from __future__ import annotations

import logging
import uuid

from flask import Blueprint, Response, abort, jsonify, request, send_file
from twilio.request_validator import RequestValidator

from broadcasting.twilio_client import callback_base
from callback_api.api.views import error_body
from callback_api.state import panel
from callback_api.webhooks import services as twilio_events
from callback_api.webhooks.services import TwilioInputError

log = logging.getLogger(__name__)

bp = Blueprint("twilio_hooks", __name__, url_prefix="/twilio")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
# Twilio fetches <Play> media like a browser would, unsigned: the audio route has its own token.
_UNSIGNED_ENDPOINTS = {"twilio_hooks.message_audio"}


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error_body(status, message, str(uuid.uuid4()))), status


def _public_url() -> str:
    """The URL as Twilio called it: the signature covers it, query string included."""
    query = request.query_string.decode("utf-8", "replace")
    return callback_base(panel().settings) + request.path + (f"?{query}" if query else "")


@bp.before_request
def check_signature() -> tuple[Response, int] | None:
    if request.endpoint in _UNSIGNED_ENDPOINTS:
        return None
    signature = request.headers.get("X-Twilio-Signature", "")
    validator = RequestValidator(panel().settings.twilio.auth_token)
    params = request.form if request.method == "POST" else {}
    if not signature or not validator.validate(_public_url(), params, signature):
        log.warning(
            "Twilio webhook %s refused: missing or wrong signature (from %s)",
            request.path,
            request.remote_addr,
        )
        return _error(403, "invalid or missing X-Twilio-Signature")
    return None


def _delivery_arg() -> int | None:
    value = request.args.get("delivery", "")
    return int(value) if value.isdigit() else None


def _twiml(document: str) -> Response:
    return Response(document, mimetype="text/xml")


def _status(voice: bool) -> Response | tuple[Response, int]:
    form = request.form
    sid_field, status_field = ("CallSid", "CallStatus") if voice else ("MessageSid", "MessageStatus")
    try:
        twilio_events.apply_status(
            panel().context.sessions,
            provider_ref=form.get(sid_field, ""),
            twilio_status=form.get(status_field, ""),
            voice=voice,
            delivery_id=_delivery_arg(),
            error_code=form.get("ErrorCode") or None,
        )
    except TwilioInputError as exc:
        return _error(400, str(exc))
    return _twiml(EMPTY_TWIML)


@bp.post("/sms/status")
def sms_status() -> Response | tuple[Response, int]:
    return _status(voice=False)


@bp.post("/voice/status")
def voice_status() -> Response | tuple[Response, int]:
    return _status(voice=True)


@bp.post("/sms/inbound")
def sms_inbound() -> Response | tuple[Response, int]:
    form = request.form
    try:
        twilio_events.inbound_sms(
            panel().context.sessions,
            message_sid=form.get("MessageSid", ""),
            from_number=form.get("From", ""),
            body=form.get("Body", ""),
        )
    except TwilioInputError as exc:
        return _error(400, str(exc))
    # Twilio's own opt-out handling sends the carrier-mandated confirmation: no reply here.
    return _twiml(EMPTY_TWIML)


@bp.route("/voice/alert", methods=["GET", "POST"])
def voice_alert() -> Response | tuple[Response, int]:
    delivery_id = _delivery_arg()
    if delivery_id is None:
        return _error(400, "the alert URL needs ?delivery=<id>")
    source = request.form if request.method == "POST" else request.args
    digits = source.get("Digits") or None
    play = request.args.get("play", "1")
    try:
        document = twilio_events.alert_twiml(
            panel().context.sessions,
            panel().settings,
            delivery_id=delivery_id,
            digits=digits,
            play=int(play) if play.isdigit() else 1,
            callback_base=callback_base(panel().settings),
        )
    except twilio_events.UnknownDelivery:
        return _error(404, f"no delivery {delivery_id}")
    return _twiml(document)


@bp.get("/voice/audio/<int:action_id>/<language>.wav")
def message_audio(action_id: int, language: str) -> Response:
    path = twilio_events.audio_file(panel().settings, action_id, language, request.args.get("token", ""))
    if path is None:
        abort(404)
    return send_file(path, mimetype="audio/wav", max_age=300)

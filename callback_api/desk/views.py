"""The desk page (a centralist's landing page) and the call card's details (JSON)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template

from callback_api.desk.services import DeskService
from callback_api.i18n import translate
from callback_api.security import ALL_ROLES, reader, roles_required
from callback_api.state import panel

bp = Blueprint("desk", __name__)


def service() -> DeskService:
    return DeskService(panel().context)


@bp.route("/desk")
@roles_required(ALL_ROLES)
def index() -> str:
    return render_template("desk/index.html", endpoint=service().endpoint_of(reader()), labels=_labels())


# The words desk.js writes on a card (English keys of the panel dictionary, callback_api.i18n).
CARD_WORDS = {
    "ringing": "Ringing your phone",
    "answered": "In call",
    "closed": "Call ended",
    "missed": "Not answered here",
    "known": "Known participant, postcode %(postcode)s, %(km)s km from the area",
    "known_inside": "Known participant, postcode %(postcode)s, inside the area",
    "unknown": "Not a registered participant",
    "withheld": "Number withheld",
    "not_alerted": "Not alerted by this action",
    "none": "None",
    "open_record": "Open the call's record",
    "no_action": "No action",
    "photo": "Photo of the action",
    "map": "Area of the action",
}


def _labels() -> dict[str, str]:
    """The words desk.js writes on a card, in the user's language."""
    return {key: translate(text) for key, text in CARD_WORDS.items()}


@bp.route("/desk/calls/<string:unique_id>.json")
@roles_required(ALL_ROLES)
def card(unique_id: str) -> Response:
    return jsonify(service().card(reader(), unique_id[:64]))


@bp.route("/desk/current.json")
@roles_required(ALL_ROLES)
def current() -> Response:
    """The calls on the reader's phone now: desk.js reads them whenever its live stream (re)opens."""
    return jsonify({"calls": service().current(reader())})

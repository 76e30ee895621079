"""Four-eyes approval in the panel (``/approvals``, the request button on an action's page) and
the API (``/api/v1/approvals``, ``/api/v1/actions/<id>/approval``); the rules are in
:mod:`burgernet.approvals`."""

from callback_api.approvals import words
from callback_api.approvals.views import api_bp, bp

__all__ = ["api_bp", "bp", "words"]

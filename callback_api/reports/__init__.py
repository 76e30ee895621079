"""Reports for control-room management: the page with its charts and exports, and the API."""

from callback_api.reports import words as words
from callback_api.reports.views import api_bp, bp

__all__ = ["api_bp", "bp"]

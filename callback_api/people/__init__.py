"""Participants: search, edit, opt-out, erase on request, CSV import and export."""

from callback_api.people.views import bp

__all__ = ["bp"]

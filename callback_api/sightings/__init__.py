"""Sightings: the form (on the action page, and standalone for the call card), the list and map
markers the action page keeps live, a participant's photo, and ``/api/v1/actions/<id>/sightings``."""

from callback_api.sightings.views import api_bp, bp

__all__ = ["api_bp", "bp"]

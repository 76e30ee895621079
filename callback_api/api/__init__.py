"""REST API ``/api/v1``: actions, their callbacks and broadcasts, for control-room systems."""

from callback_api.api.views import bp

__all__ = ["bp"]

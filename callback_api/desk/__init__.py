"""The centralist's desk: the call card that pops up while a call rings their phone."""

from callback_api.desk.views import bp

__all__ = ["bp"]

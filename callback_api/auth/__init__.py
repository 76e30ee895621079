"""Logging in and out, the language switch; panel users and API tokens (``services``)."""

from callback_api.auth.views import bp

__all__ = ["bp"]

"""The call-back worklist (``/worklist``): tips and unanswered calls to call back, claims,
click-to-call, results; and the centralist's own on-duty switch."""

from callback_api.worklist.views import bp

__all__ = ["bp"]

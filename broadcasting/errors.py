"""How a provider adapter tells the worker what went wrong with one send.

The worker only needs to know whether trying again later can help: a transient error (rate
limited, 5xx, connection trouble, busy line) is retried with back-off up to
``broadcast.max_attempts``; a permanent one (invalid number, recipient refused) ends the
delivery at once as ``failed``.
"""

from __future__ import annotations


class ProviderError(Exception):
    """A send did not happen; ``code`` is the provider's own error code or status, if any."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientProviderError(ProviderError):
    """Try again later; ``retry_after`` (seconds) when the provider said how long to wait."""

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """Trying again cannot help (bad number, refused recipient, account problem)."""

"""Web Push subscriptions of the participant app (``/app/api/push/...``): the VAPID public key,
subscribe (idempotent on the endpoint) and unsubscribe. Public and cookie-less: CSRF-exempt,
rate-limited per address, small bodies only."""

from callback_api.push.views import bp

__all__ = ["bp"]

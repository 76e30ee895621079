"""The push subscription API's work: parse, store, forget; and a per-address rate limit.

Errors are typed with stable codes; the view turns them into
``{"error": {"code": ..., "message": ...}}`` with their HTTP status.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import redis

from burgernet import push_subscriptions
from burgernet.db import session_scope
from burgernet.errors import DomainError
from burgernet.push_subscriptions import InvalidSubscription, PushKeyMissing
from burgernet.services import Services

log = logging.getLogger(__name__)

# Subscribing is something a device does a few times a day; a hundred a minute from one
# address is a script (a whole office behind one NAT still fits).
REQUESTS_PER_MINUTE = 120
# A subscription's JSON is ~400 bytes; a cell and a language add a few.
MAX_BODY_BYTES = 4 * 1024


class TooManyRequests(DomainError):
    code: ClassVar[str] = "push.rate_limited"


class BodyInvalid(InvalidSubscription):
    code: ClassVar[str] = "push.body_invalid"


__all__ = [
    "MAX_BODY_BYTES",
    "BodyInvalid",
    "InvalidSubscription",
    "PushKeyMissing",
    "PushSubscriptionService",
    "TooManyRequests",
]


class PushSubscriptionService:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings.push

    def public_key(self) -> str:
        return push_subscriptions.application_server_key(self.settings)

    def check_rate(self, address: str) -> None:
        """Counted in Redis per address and minute (every panel process shares it); while Redis
        cannot be reached, subscribing is not refused for it."""
        key = self.services.live.keys.counter(f"push-api:{address[:64]}")
        try:
            with self.services.live.client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, 60, nx=True)
                count = int(pipe.execute()[0])
        except redis.RedisError as exc:
            log.warning("push API rate limit: Redis unreachable (%s); not limiting", exc)
            return
        if count > REQUESTS_PER_MINUTE:
            raise TooManyRequests("too many requests from this address; try again in a minute")

    def subscribe(self, body: object) -> bool:
        """Store or update the subscription; True when it is new."""
        given = push_subscriptions.parse_subscription(
            body, allow_insecure=self.settings.allow_insecure_endpoints
        )
        with session_scope(self.services.sessions) as session:
            _row, created = push_subscriptions.subscribe(session, given)
        return created

    def unsubscribe(self, body: object) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("endpoint"), str) or not body["endpoint"]:
            raise BodyInvalid('send {"endpoint": "..."}')
        with session_scope(self.services.sessions) as session:
            push_subscriptions.unsubscribe(session, body["endpoint"])

"""Push fixtures: a local Web Push service, subscriptions registered with Burgernet, and a
broadcast worker that pushes through the real pipeline (Redis Streams, SQLite, the sender)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from broadcasting.channels import push_webpush
from broadcasting.channels.base import Sender
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.push_subscriptions import SubscriptionInput, b64url_encode, subscribe
from burgernet.secrets import generate
from burgernet.settings import Settings
from composition.context import Context
from tests.support.webpush_service import TestSubscription, WebPushService


@pytest.fixture(scope="session")
def vapid_key() -> str:
    return generate()


@pytest.fixture
def bn_settings(bn_settings: Settings, vapid_key: str) -> Settings:
    return bn_settings.model_copy(
        update={
            "push": bn_settings.push.model_copy(
                update={"vapid_private_key": vapid_key, "allow_insecure_endpoints": True, "concurrency": 20}
            ),
            "broadcast": bn_settings.broadcast.model_copy(
                update={"retry_base_seconds": 0.2, "claim_idle_seconds": 2.0}
            ),
        }
    )


@pytest.fixture
def push_service() -> Iterator[WebPushService]:
    with WebPushService() as service:
        yield service


@dataclass
class Devices:
    """Devices subscribed at the local push service and registered with Burgernet."""

    context: Context
    service: WebPushService

    def add(self, count: int = 1, *, cell: str | None = None, lang: str = "nl") -> list[TestSubscription]:
        made = [self.service.subscribe() for _ in range(count)]
        with session_scope(self.context.sessions) as session:
            for device in made:
                subscribe(session, SubscriptionInput(device.endpoint, device.p256dh, device.auth, cell, lang))
        return made


@pytest.fixture
def devices(bn_context: Context, push_service: WebPushService) -> Devices:
    return Devices(bn_context, push_service)


def push_senders(settings: Settings) -> Callable[[], object]:
    async def build() -> dict[Channel, Sender]:
        client = aioredis.Redis.from_url(settings.redis.url)
        return {Channel.PUSH: await push_webpush.create(settings, client)}

    return build


def urlsafe(raw: bytes) -> str:
    return b64url_encode(raw)


# The broadcasting tests' fixtures: participants, actions and workers on their own loop.
from tests.broadcasting.conftest import crowd, start_worker  # noqa: E402, F401

"""The worker's heartbeat: from its dispatching loops' progress, never fatal when Redis is down."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import broadcasting.worker
from burgernet import health
from burgernet.settings import Settings
from composition.context import Context
from composition.redis_server import ManagedRedis
from testbed.ports import port_block
from testbed.smtp import SmtpServer
from testbed.waiting import wait_for
from tests.broadcasting.conftest import WorkerThread
from tests.broadcasting.test_email_broadcast import email_senders


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[ManagedRedis]:
    server = ManagedRedis(port_block(), tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bn_settings(bn_settings: Settings, smtp_server: SmtpServer, own_redis: ManagedRedis) -> Settings:
    return bn_settings.model_copy(
        update={
            "smtp": smtp_server.settings(bn_settings.smtp),
            "redis": bn_settings.redis.model_copy(
                update={"url": own_redis.url, "key_prefix": f"beat-{uuid.uuid4().hex[:8]}:"}
            ),
        }
    )


def test_the_worker_beats_survives_redis_down_and_stops_beating_when_a_loop_is_stuck(
    bn_context: Context,
    own_redis: ManagedRedis,
    start_worker: Callable[..., WorkerThread],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(broadcasting.worker, "STUCK_SECONDS", 1.5)
    client, prefix = bn_context.live.client, bn_context.settings.redis.key_prefix
    runner = start_worker(email_senders(bn_context.settings))
    worker = runner.worker
    wait_for(lambda: health.read_beat(client, prefix, health.WORKER) is not None, 10, "a first beat")
    beat = health.read_beat(client, prefix, health.WORKER)
    assert beat is not None and beat.details == {"channels": "email", "in_flight": "0"}

    with caplog.at_level(logging.WARNING, logger="broadcasting.worker"):
        own_redis.stop()
        time.sleep(3 * health.BEAT_INTERVAL_SECONDS)  # several beats fail
        assert all(not t.done() for t in worker._tasks if t.get_name() == "loop:pulse")
        own_redis.start()  # same data: the beat comes back by itself
        beats = worker.beats
        wait_for(lambda: worker.beats > beats, 10, "beating again")
    assert caplog.text.count("Redis unreachable") == 1  # once per outage, not once per beat

    async def stuck(*_args: Any, **_kwargs: Any) -> Any:
        await asyncio.Event().wait()  # a dispatching loop that never comes back

    worker.queue.take = stuck  # type: ignore[method-assign]
    wait_for(lambda: worker.stuck_loops() == ["channel-email"], 10, "the email loop seen stuck")
    client.delete(health.beat_key(prefix, health.WORKER))
    time.sleep(2 * health.BEAT_INTERVAL_SECONDS)
    assert health.read_beat(client, prefix, health.WORKER) is None  # no beat: the supervisor acts

"""Redis restarted with empty data: what it held comes back from the database, once.

A redis-server of the test's own is stopped mid-broadcast, its data files deleted, and started
again on the same port (a real restart that lost everything, as without persistence or with a
lost disk). The worker rebuilds the broadcast control and the core's state; not one delivery is
lost, none is sent twice. The core's rebuild (who was alerted, the actions version) is checked
in detail against a flushed Redis.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

import broadcasting.worker
from burgernet import health
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.live import LiveKeys, StateRebuild
from burgernet.models import Broadcast, Delivery, Participant
from burgernet.settings import Settings
from composition.context import Context
from composition.redis_server import ManagedRedis
from testbed.ports import port_block
from testbed.smtp import SmtpServer
from tests.broadcasting.conftest import Crowd, WorkerThread, crowd, start_worker
from tests.broadcasting.test_email_broadcast import email_senders

__all__ = ["crowd", "start_worker"]  # fixtures, shared with the broadcasting tests

RECIPIENTS = 30


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[ManagedRedis]:
    """A redis-server of this test alone: it is restarted, empty, mid-test."""
    server = ManagedRedis(port_block(), tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def restart_empty(server: ManagedRedis) -> None:
    server.stop()
    for item in server.data_dir.iterdir():  # the append-only files and any snapshot
        if item.name.startswith("appendonly") or item.suffix == ".rdb":
            shutil.rmtree(item) if item.is_dir() else item.unlink()
    server.start()


@pytest.fixture
def bn_settings(bn_settings: Settings, smtp_server: SmtpServer, own_redis: ManagedRedis) -> Settings:
    return bn_settings.model_copy(
        update={
            "smtp": smtp_server.settings(bn_settings.smtp),
            "redis": bn_settings.redis.model_copy(
                update={"url": own_redis.url, "key_prefix": f"rebuild-{uuid.uuid4().hex[:8]}:"}
            ),
            "broadcast": bn_settings.broadcast.model_copy(
                # Slow enough that the restart lands in the middle of the broadcast.
                update={"email_per_second": 8.0, "retry_base_seconds": 0.2, "claim_idle_seconds": 2.0}
            ),
        }
    )


def test_a_broadcast_survives_a_redis_restart_that_lost_everything(
    crowd: Crowd,
    bn_context: Context,
    own_redis: ManagedRedis,
    smtp_server: SmtpServer,
    start_worker: Callable[..., WorkerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(broadcasting.worker, "PENDING_SWEEP_SECONDS", 1.0)
    crowd.add(RECIPIENTS, email=True)
    worker = start_worker(email_senders(bn_context.settings)).worker
    action_id = crowd.action()
    [broadcast_id] = crowd.broadcasts(action_id)
    crowd.wait_until(lambda: crowd.statuses(broadcast_id).get("sent", 0) >= 5, 20, "the first e-mails")
    live = bn_context.live
    version_before = int(live.client.get(live.keys.actions_version) or 0)
    run_before = live.client.info("server")["run_id"]
    crowd.wait_until(lambda: bool(live.client.exists(live.keys.state_built)), 10, "the first build")
    crowd.wait_until(lambda: worker.control_rebuilds == 1, 10, "the first build of the broadcast control")

    restart_empty(own_redis)
    restarted_at = datetime.now(UTC)
    assert live.client.info("server")["run_id"] != run_before  # another redis-server process

    assert crowd.wait_done(broadcast_id, timeout=60) == {"sent": RECIPIENTS}
    received = [m.rcpt_tos[0] for m in smtp_server.wait_for(RECIPIENTS)]
    time.sleep(0.5)  # a doubled e-mail would arrive about now
    received = [m.rcpt_tos[0] for m in smtp_server.messages]
    assert sorted(received) == sorted(f"p{n}@example.nl" for n in range(RECIPIENTS))  # each once
    assert worker.control_rebuilds == 2  # once for the new Redis at start, once after the restart

    # The core's part is back too: those alerted before the restart, and a fresh actions version.
    with session_scope(bn_context.sessions) as session:
        early = session.scalars(
            select(Participant.phone_e164)
            .join(Delivery, Delivery.participant_id == Participant.id)
            .where(Delivery.broadcast_id == broadcast_id, Delivery.finished_at < restarted_at)
        ).all()
    assert early
    for phone in early:
        assert live.client.zscore(live.keys.alerted(phone), str(action_id)) is not None
    version_after = int(live.client.get(live.keys.actions_version) or 0)
    assert version_after > version_before and version_after > 10**12  # never a reused number
    beat = health.read_beat(live.client, bn_context.settings.redis.key_prefix, health.WORKER)
    assert beat is not None and beat.details["channels"] == "email"


def test_the_core_state_is_rebuilt_once_from_the_deliveries(bn_context: Context) -> None:
    settings = bn_context.settings
    client = redis.Redis.from_url(settings.redis.url)
    keys = LiveKeys(settings.redis.key_prefix)
    window = settings.routing.alerted_window_seconds
    now = datetime.now(UTC)
    view = bn_context.actions.create(
        action_type="missing_person",
        title="Rebuild",
        region_code="MN",
        area=AreaSpec(AreaKind.CIRCLE, centre=(5.12, 52.09), radius_m=500),
        actor="test",
    )
    people: dict[str, str] = {}
    with session_scope(bn_context.sessions) as session:
        broadcast = Broadcast(
            action_id=view.id, kind="alert", message="x", status="done", created_at=now, total=4
        )
        session.add(broadcast)
        for name in ("answered", "failed", "old", "later"):
            person = Participant(
                phone_e164=f"+316555{len(people):05d}", postcode="3511AB", lat=52.09, lon=5.12, created_at=now
            )
            session.add(person)
            session.flush()
            people[name] = person.phone_e164
            status = "failed" if name == "failed" else "answered"
            finished = now - timedelta(seconds=window + 60 if name == "old" else 600)
            session.add(
                Delivery(
                    broadcast_id=broadcast.id,
                    participant_id=person.id,
                    channel="voice",
                    status=status,
                    updated_at=finished,
                    finished_at=finished,
                )
            )
    rebuild = StateRebuild(
        client, keys, bn_context.sessions, window, settings.redis.alerted_caller_ttl_seconds
    )
    client.flushall()  # a stand-in for the restart (the test above restarts for real)
    # The worker marked "later" again after the restart: a newer time than the database's.
    client.zadd(keys.alerted(people["later"]), {str(view.id): now.timestamp() + 5})

    report = rebuild.ensure("test")
    assert report is not None and rebuild.built()
    assert client.zscore(keys.alerted(people["answered"]), str(view.id)) == pytest.approx(
        (now - timedelta(seconds=600)).timestamp(), abs=1
    )
    assert client.ttl(keys.alerted(people["answered"])) > 0
    assert client.zscore(keys.alerted(people["failed"]), str(view.id)) is None  # never reached
    assert client.zscore(keys.alerted(people["old"]), str(view.id)) is None  # outside the window
    assert client.zscore(keys.alerted(people["later"]), str(view.id)) == pytest.approx(now.timestamp() + 5)
    assert report.actions_version > 10**12
    assert rebuild.ensure("test") is None  # once: the marker says it is done

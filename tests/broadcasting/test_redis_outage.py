"""An action started while Redis is down still alerts: the broadcast is written with the status
change, and the workers' sweep sends it once Redis is back."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

import broadcasting.worker
from burgernet.db import session_scope
from burgernet.models import Action, AuditEvent, Broadcast
from burgernet.settings import Settings
from composition.context import Context
from composition.redis_server import ManagedRedis
from testbed.ports import port_block
from testbed.smtp import SmtpServer
from tests.broadcasting.conftest import Crowd, WorkerThread
from tests.broadcasting.test_email_broadcast import email_senders


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[ManagedRedis]:
    """A redis-server of this test alone: it is stopped and started again mid-test."""
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
                update={"url": own_redis.url, "key_prefix": f"outage-{uuid.uuid4().hex[:8]}:"}
            ),
            "broadcast": bn_settings.broadcast.model_copy(
                update={"email_per_second": 200.0, "retry_base_seconds": 0.2, "claim_idle_seconds": 2.0}
            ),
        }
    )


@pytest.fixture
def quick_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    # The sweep's period only sets how soon a lost nudge is repaired; a short one keeps the test short.
    monkeypatch.setattr(broadcasting.worker, "PENDING_SWEEP_SECONDS", 1.0)
    monkeypatch.setattr(broadcasting.worker, "PENDING_GRACE_SECONDS", 0.5)


def test_an_action_started_with_redis_down_alerts_once_redis_is_back(
    crowd: Crowd,
    bn_context: Context,
    own_redis: ManagedRedis,
    smtp_server: SmtpServer,
    start_worker: Callable[..., WorkerThread],
    quick_sweep: None,
) -> None:
    crowd.add(5, email=True)
    start_worker(email_senders(bn_context.settings))
    draft = crowd.action(start=False)

    own_redis.stop()
    view = bn_context.actions.start(draft, actor="test")  # neither the nudge nor the cache answer

    assert view.status == "active"
    with session_scope(bn_context.sessions) as session:
        action = session.get(Action, draft)
        assert action is not None and action.status == "active"
        broadcast = session.scalars(select(Broadcast).where(Broadcast.action_id == draft)).one()
        assert (broadcast.kind, broadcast.status) == ("alert", "pending")
        verbs = set(
            session.scalars(
                select(AuditEvent.verb).where(AuditEvent.entity == "action", AuditEvent.entity_id == draft)
            )
        )
        assert {"active", "broadcast-alert"} <= verbs
    assert smtp_server.messages == []

    own_redis.start()  # same port and data: the worker reconnects by itself
    assert crowd.wait_done(broadcast.id, timeout=30) == {"sent": 5}
    assert sorted(m.rcpt_tos[0] for m in smtp_server.wait_for(5)) == sorted(
        f"p{n}@example.nl" for n in range(5)
    )


def test_a_failed_start_writes_no_broadcast(crowd: Crowd, bn_context: Context) -> None:
    """The status change and its broadcast are one transaction: no alert for an action that did not start."""
    action_id = crowd.action(start=True)
    with pytest.raises(ValueError, match="active"):
        bn_context.actions.start(action_id, actor="test")  # already active: refused
    assert crowd.broadcasts(action_id) == crowd.broadcasts(action_id, "alert")
    assert len(crowd.broadcasts(action_id)) == 1

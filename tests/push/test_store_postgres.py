"""Push deliveries on PostgreSQL, where workers on several machines meet: a fan-out resumed adds
no push twice, two workers claiming the same batch never both get a delivery, outcomes are
written once and a gone subscription is deleted with its delivery's outcome kept."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcasting import store
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind, Channel
from burgernet.models import Action, Delivery, PushSubscription
from burgernet.push_subscriptions import SubscriptionInput, select_for_area, subscribe
from composition.context import Context
from composition.redis_server import ManagedRedis
from routing import NationalArea
from testbed.approvals import start_approved
from testbed.postgres import ManagedPostgres
from tests.conftest import postgres_context
from tests.support.webpush_service import make_subscription

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(postgres_server: ManagedPostgres, redis_server: ManagedRedis, tmp_path: Path) -> Iterator[Context]:
    context = postgres_context(postgres_server, redis_server, tmp_path)
    yield context
    context.close()


def test_push_batches_are_claimed_once_and_recorded_once(pg: Context) -> None:
    with session_scope(pg.sessions) as session:
        for n in range(40):
            device = make_subscription(f"https://push.example.org/pg/{n}")
            subscribe(session, SubscriptionInput(device.endpoint, device.p256dh, device.auth, None, "nl"))
    view = pg.actions.create(
        action_type="amber_alert",
        title="PG",
        region_code="MN",
        area=AreaSpec(AreaKind.NATIONAL),
        channels=["push"],
        actor="test",
    )
    start_approved(pg, view.id, requester="test", broadcast=False)
    with session_scope(pg.sessions) as session:
        action = session.get(Action, view.id)
        assert action is not None
        broadcast = store.new_broadcast(session, action=action, kind="alert", message="m")
        ids = select_for_area(session, NationalArea())
        fan = store.add_deliveries(session, broadcast, {Channel.PUSH: ids})
        again = store.add_deliveries(session, broadcast, {Channel.PUSH: ids})
        broadcast_id = broadcast.id
    assert (fan.created, again.created) == (40, 0)
    queued = fan.queued[Channel.PUSH]

    # Two workers claim the same 40 deliveries at once: each one goes to exactly one of them.
    claimed: list[list[store.PushTarget]] = []
    barrier = threading.Barrier(2)

    def claim() -> None:
        barrier.wait()
        with session_scope(pg.sessions) as session:
            targets, _skipped = store.claim_push(session, queued, datetime.now(UTC) - timedelta(minutes=5))
        claimed.append(targets)

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [t.delivery_id for targets in claimed for t in targets]
    assert sorted(winners) == sorted(queued)

    targets = [t for batch in claimed for t in batch]
    gone = targets[0]
    records = [store.PushRecord(gone, "failed", error="gone (410): subscription deleted", gone=True)]
    records += [store.PushRecord(t, "sent") for t in targets[1:]]
    with session_scope(pg.sessions) as session:
        finished, retries = store.record_push(session, records, max_attempts=3)
    assert finished == {broadcast_id: 40} and retries == []
    with session_scope(pg.sessions) as session:
        # Recorded once: a second write of the same outcomes changes nothing.
        assert store.record_push(session, records, max_attempts=3) == ({}, [])
        assert session.get(PushSubscription, gone.subscription_id) is None
        statuses = dict(
            session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.broadcast_id == broadcast_id)
                .group_by(Delivery.status)
            ).all()
        )
        kept = session.get(Delivery, gone.delivery_id)
        assert kept is not None and kept.push_subscription_id is None and kept.status == "failed"
    assert statuses == {"sent": 39, "failed": 1}

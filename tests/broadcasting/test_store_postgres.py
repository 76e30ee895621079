"""The delivery store's guarantees on PostgreSQL, where workers on several machines meet:
one claim wins, outcomes only from ``sending``, resumed fan-outs add nothing twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, update

from broadcasting import store
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind, Channel
from burgernet.models import Action, Delivery, Participant
from composition.context import Context
from composition.redis_server import ManagedRedis
from testbed.postgres import ManagedPostgres
from tests.conftest import postgres_context

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(postgres_server: ManagedPostgres, redis_server: ManagedRedis, tmp_path: Path) -> Iterator[Context]:
    context = postgres_context(postgres_server, redis_server, tmp_path)
    yield context
    context.close()


def _broadcast_with_deliveries(context: Context, people: int) -> tuple[int, list[int]]:
    now = datetime.now(UTC)
    with session_scope(context.sessions) as session:
        ids = []
        for n in range(people):
            participant = Participant(
                phone_e164=f"+3165{n:07d}", postcode="3511AB", lat=52.09, lon=5.12, created_at=now
            )
            session.add(participant)
            session.flush()
            ids.append(participant.id)
    view = context.actions.create(
        action_type="missing_child",
        title="PG",
        region_code="MN",
        area=AreaSpec(AreaKind.CIRCLE, centre=(5.12, 52.09), radius_m=500),
        actor="test",
    )
    context.actions.start(view.id, actor="test", broadcast=False)
    with session_scope(context.sessions) as session:
        action = session.get(Action, view.id)
        assert action is not None
        broadcast = store.new_broadcast(session, action=action, kind="alert", message="m")
        fan = store.add_deliveries(session, broadcast, {Channel.SMS: np.array(ids)})
        # A fan-out resumed after a crash adds nothing twice.
        again = store.add_deliveries(session, broadcast, {Channel.SMS: np.array(ids)})
        assert (fan.created, again.created, broadcast.total) == (people, 0, people)
        return broadcast.id, fan.queued[Channel.SMS]


def test_only_one_of_many_concurrent_claims_wins(pg: Context) -> None:
    _, delivery_ids = _broadcast_with_deliveries(pg, 1)
    results: list[store.Claim] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        with session_scope(pg.sessions) as session:
            outcome, _ = store.claim(session, delivery_ids[0])
        results.append(outcome)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(store.Claim.CLAIMED) == 1
    assert results.count(store.Claim.BUSY) == 7  # the others see it being sent right now


def test_a_delivery_left_in_doubt_is_taken_over_by_exactly_one_worker(pg: Context) -> None:
    """The start-up rebuild and the stream's takeover can both hand the same stale delivery
    to workers at once: only one may reconcile (and maybe resend) it."""
    _, delivery_ids = _broadcast_with_deliveries(pg, 1)
    stale = datetime.now(UTC) - timedelta(minutes=5)
    with session_scope(pg.sessions) as session:
        assert store.claim(session, delivery_ids[0])[0] is store.Claim.CLAIMED
        session.execute(update(Delivery).where(Delivery.id == delivery_ids[0]).values(sending_at=stale))
    results: list[store.Claim] = []
    taker_saw: list[datetime | None] = []
    barrier = threading.Barrier(8)

    def take_over() -> None:
        barrier.wait()
        with session_scope(pg.sessions) as session:
            outcome, job = store.claim(session, delivery_ids[0], datetime.now(UTC) - timedelta(seconds=30))
        results.append(outcome)
        if outcome is store.Claim.IN_DOUBT:
            # The taker gets the attempt being reconciled; a late reader sees the take-over's time.
            taker_saw.append(job.sending_at if job is not None else None)

    threads = [threading.Thread(target=take_over) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(result.value for result in results) == ["busy"] * 7 + ["in_doubt"]
    assert taker_saw == [stale]
    with session_scope(pg.sessions) as session:
        # A claim within the grace period after the takeover sees it busy, not in doubt again.
        assert store.claim(session, delivery_ids[0], datetime.now(UTC) - timedelta(seconds=30))[0] is (
            store.Claim.BUSY
        )


def test_outcomes_move_forward_only_and_cancel_spares_what_is_sending(pg: Context) -> None:
    broadcast_id, delivery_ids = _broadcast_with_deliveries(pg, 3)
    first, second, third = delivery_ids
    with session_scope(pg.sessions) as session:
        assert store.claim(session, first)[0] is store.Claim.CLAIMED
        assert store.finish(session, first, "sent", provider_ref="SM1")
        assert not store.finish(session, first, "failed")  # not sending any more
        assert store.claim(session, second)[0] is store.Claim.CLAIMED
    with session_scope(pg.sessions) as session:
        assert store.apply_provider_status(session, provider_ref="SM1", status="delivered")
        assert not store.apply_provider_status(session, provider_ref="SM1", status="sent")  # never back
        action_id = session.scalar(select(Action.id))
        assert action_id is not None
        assert store.cancel_pending(session, action_id) == 1  # only the third was still queued
    with session_scope(pg.sessions) as session:
        statuses = dict(session.execute(select(Delivery.id, Delivery.status)).all())
        assert statuses == {first: "delivered", second: "sending", third: "cancelled"}
        assert store.claim(session, third)[0] is store.Claim.SKIP
        counts = store.counts(session, broadcast_id)
        assert counts is not None and counts.status == "cancelled"
        assert session.scalar(select(func.count()).select_from(Delivery)) == 3

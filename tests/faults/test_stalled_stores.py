"""A stalled database or Redis costs a caller at most 3 s: the decision comes back in time and
is the one the data at hand allows.

The stores are really stalled: the redis-server and every PostgreSQL process get SIGSTOP, so
connections stay open and nothing answers (the kernel still accepts new connections). The
3 s is the product's contract with the caller (the dialplan's AGI deadline comes at 4 s), so
each decision is awaited with ``asyncio.wait_for(..., 3)``: it either returns first or the test
fails.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.live import AsyncLiveState
from burgernet.models import Participant
from burgernet.routing_service import PostcodeLookupUnavailable, RoutingService
from burgernet.settings import Settings
from composition.context import Context
from composition.redis_server import ManagedRedis
from routing import DecisionKind, Presence, RoutingPolicy
from testbed.ports import free_port
from testbed.postgres import ManagedPostgres
from tests.conftest import postgres_context

CONTRACT_SECONDS = 3.0  # the issue: a stalled store costs a caller at most 3 s
UTRECHT = (5.1214, 52.0907)
CALLER = "+31612345678"
OTHER = "+31687654321"  # no participant, alerted by nobody


@contextmanager
def stopped(pids: list[int]) -> Iterator[None]:
    """SIGSTOP the processes for the block; SIGCONT them whatever happens."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def postgres_pids(server: ManagedPostgres) -> list[int]:
    """The postmaster and every backend and helper process it started."""
    postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:  # field 4 of /proc/<pid>/stat: the parent
            children.append(int(stat.parent.name))
    return [postmaster, *children]


def add_participant(context: Context) -> None:
    with session_scope(context.sessions) as session:
        session.add(
            Participant(
                phone_e164=CALLER,
                postcode="3511AB",
                lat=UTRECHT[1],
                lon=UTRECHT[0],
                created_at=datetime.now(UTC),
            )
        )


def start_action(context: Context, area: AreaSpec, team: list[str], region: str) -> int:
    view = context.actions.create(
        action_type="missing_person", title="Vermist", region_code=region, area=area, team=team, actor="test"
    )
    return context.actions.start(view.id, actor="test").id


def routing(settings: Settings, context: Context) -> RoutingService:
    live = AsyncLiveState.from_url(settings.redis.url, settings.redis.key_prefix)
    return RoutingService(context.sessions, live, RoutingPolicy(), "MN", alerted_window_seconds=3600)


def warnings_for(caplog: pytest.LogCaptureFixture, call_id: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and call_id in r.getMessage()
    ]


# -- Redis stalled ---------------------------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[ManagedRedis]:
    """A redis-server of this test's own: the session's shared one is not ours to freeze."""
    server = ManagedRedis(free_port(), tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_redis_stalled_rings_by_location_with_presence_unknown(
    bn_settings: Settings, private_redis: ManagedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    settings = bn_settings.model_copy(
        update={"redis": bn_settings.redis.model_copy(update={"url": private_redis.url})}
    )
    context = Context(settings)
    try:
        add_participant(context)
        here = start_action(
            context, AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000), ["c-mn-2"], "MN"
        )
        elsewhere = start_action(context, AreaSpec(AreaKind.POSTCODES, postcodes=("1011",)), ["c-am-1"], "AM")
        context.live.mark_alerted(CALLER, elsewhere, time.time() - 30)
        context.live.set_presence("c-mn-2", Presence.BUSY)
        warm, cold = routing(settings, context), routing(settings, context)
        assert private_redis.process is not None

        async def scenario() -> None:
            # Redis answering: the action that alerted the caller, as always.
            normal = await warm.route(CALLER, call_id="1700.1")
            assert normal.decision.action_id == elsewhere
            with stopped([private_redis.process.pid]):  # type: ignore[union-attr]
                # This process's last-known-good snapshot; the alerted set unknown, so by
                # location; c-mn-2's "busy" unknown, so rung anyway (first: the owner).
                stalled = await asyncio.wait_for(warm.route(CALLER, call_id="1700.2"), CONTRACT_SECONDS)
                # A process that never had a snapshot gets it from the database.
                fresh = await asyncio.wait_for(cold.route(CALLER, call_id="1700.3"), CONTRACT_SECONDS)
            for routed in (stalled, fresh):
                assert routed.decision.kind is DecisionKind.ROUTE and routed.decision.action_id == here
                assert routed.decision.endpoints_in_order()[0] == "c-mn-2"
            # Redis back: everything it knows counts again.
            again = await asyncio.wait_for(warm.route(CALLER, call_id="1700.4"), CONTRACT_SECONDS)
            assert again.decision.action_id == elsewhere
            for service in (warm, cold):
                await service._live.close()

        with caplog.at_level(logging.WARNING):
            asyncio.run(scenario())
        assert warnings_for(caplog, "1700.2") and warnings_for(caplog, "1700.3")
        assert not warnings_for(caplog, "1700.1") and not warnings_for(caplog, "1700.4")
    finally:
        context.close()


# -- the database stalled --------------------------------------------------------------------------


@pytest.mark.postgres
def test_database_stalled_routes_from_what_redis_and_the_last_snapshot_know(
    postgres_server: ManagedPostgres,
    redis_server: ManagedRedis,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = postgres_context(postgres_server, redis_server, tmp_path)
    try:
        add_participant(context)
        action = start_action(
            context, AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000), ["c-mn-2", "c-mn-1"], "MN"
        )
        # The caller was alerted by the action: Redis alone can route them.
        context.live.mark_alerted(CALLER, action, time.time() - 30)
        settings = context.settings
        warm, cold = routing(settings, context), routing(settings, context)

        async def scenario() -> None:
            normal = await warm.route(CALLER, call_id="1800.1")  # also caches the snapshot in Redis
            assert normal.decision.action_id == action and normal.caller.participant_id is not None
            with stopped(postgres_pids(postgres_server)):
                # The participant record does not come: an unknown caller, routed by who alerted them.
                stalled = await asyncio.wait_for(warm.route(CALLER, call_id="1800.2"), CONTRACT_SECONDS)
                assert stalled.caller.participant_id is None
                # A process without a snapshot takes Redis's cached one.
                fresh = await asyncio.wait_for(cold.route(CALLER, call_id="1800.3"), CONTRACT_SECONDS)
                # The snapshot changes (say, an action edited in the panel) while the database
                # is stalled: the new one cannot be loaded, the last-known-good one is used.
                context.live.invalidate_actions()
                changed = await asyncio.wait_for(warm.route(CALLER, call_id="1800.4"), CONTRACT_SECONDS)
                # Nobody alerted this caller: not asked for a postcode (its look-up needs the
                # database too) but put through to the region pool at once.
                stranger = await asyncio.wait_for(warm.route(OTHER, call_id="1800.6"), CONTRACT_SECONDS)
                with pytest.raises(PostcodeLookupUnavailable):
                    await asyncio.wait_for(
                        warm.place_by_postcode(stranger.caller, "3511", call_id="1800.7"), CONTRACT_SECONDS
                    )
            assert stranger.decision.kind is DecisionKind.ROUTE, stranger.decision
            assert "pool" in stranger.decision.reason and stranger.decision.endpoints_in_order()
            for routed in (stalled, fresh, changed):
                assert routed.decision.kind is DecisionKind.ROUTE and routed.decision.action_id == action
                assert routed.decision.endpoints_in_order()[:2] == ("c-mn-2", "c-mn-1")  # the owners
            again = await asyncio.wait_for(warm.route(CALLER, call_id="1800.5"), CONTRACT_SECONDS)
            assert again.caller.participant_id is not None and again.decision.action_id == action
            for service in (warm, cold):
                await service._live.close()

        with caplog.at_level(logging.WARNING):
            asyncio.run(scenario())
        for call_id in ("1800.2", "1800.3", "1800.4"):
            assert warnings_for(caplog, call_id), call_id
        assert not warnings_for(caplog, "1800.1") and not warnings_for(caplog, "1800.5")
    finally:
        context.close()

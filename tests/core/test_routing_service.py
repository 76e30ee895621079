"""One routing decision assembled from the real database and the real Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import pytest

from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.live import AsyncLiveState
from burgernet.models import Participant
from burgernet.routing_service import RoutingService
from composition.context import Context
from routing import CallerKind, DecisionKind, Presence, RoutingPolicy
from testbed.ports import free_port

UTRECHT = (5.1214, 52.0907)


@pytest.fixture
def service(bn_context: Context) -> RoutingService:
    settings = bn_context.settings
    live = AsyncLiveState.from_url(settings.redis.url, settings.redis.key_prefix)
    return RoutingService(bn_context.sessions, live, RoutingPolicy(), "MN", alerted_window_seconds=3600)


def _add_participant(context: Context, phone: str, lon: float, lat: float, postcode: str = "3511AB") -> None:
    with session_scope(context.sessions) as session:
        session.add(
            Participant(
                phone_e164=phone,
                postcode=postcode,
                lat=lat,
                lon=lon,
                created_at=datetime.now(UTC),
                opted_out=True,
                opted_out_at=datetime.now(UTC),
            )
        )


def _start(context: Context, title: str, area: AreaSpec, team: list[str], region: str = "MN") -> int:
    view = context.actions.create(
        action_type="missing_person", title=title, region_code=region, area=area, team=team, actor="test"
    )
    return context.actions.start(view.id, actor="test").id


def test_known_caller_routed_to_the_action_around_them(bn_context: Context, service: RoutingService) -> None:
    _add_participant(bn_context, "+31612345678", *UTRECHT)
    action_id = _start(
        bn_context,
        "Vermiste man",
        AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000),
        ["c-mn-2", "c-mn-1"],
    )

    async def scenario() -> None:
        routed = await service.route("0612345678")  # national format from the trunk
        assert routed.caller.kind is CallerKind.KNOWN and routed.caller.opted_out
        assert routed.decision.kind is DecisionKind.ROUTE and routed.decision.action_id == action_id
        assert routed.decision.endpoints_in_order() == ("c-mn-2", "c-mn-1", "c-mn-3")

    asyncio.run(scenario())


def test_a_started_action_is_seen_by_the_next_call(bn_context: Context, service: RoutingService) -> None:
    _add_participant(bn_context, "+31612345678", *UTRECHT)

    async def scenario() -> None:
        assert (await service.route("+31612345678")).decision.kind is DecisionKind.NO_ACTION
        _start(
            bn_context, "Vermiste vrouw", AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=500), ["c-mn-1"]
        )
        # The invalidation reached the index this process had cached.
        assert (await service.route("+31612345678")).decision.kind is DecisionKind.ROUTE

    asyncio.run(scenario())


def test_alerted_caller_goes_to_the_alerting_action(bn_context: Context, service: RoutingService) -> None:
    _add_participant(bn_context, "+31612345678", *UTRECHT)
    _start(bn_context, "Hier", AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000), ["c-mn-1"])
    elsewhere = _start(
        bn_context, "Daar", AreaSpec(AreaKind.POSTCODES, postcodes=("1011",)), ["c-am-1"], "AM"
    )
    bn_context.live.mark_alerted("+31612345678", elsewhere, time.time() - 30)
    bn_context.live.set_presence("c-am-1", Presence.BUSY)

    routed = asyncio.run(service.route("+31612345678"))
    assert routed.decision.action_id == elsewhere
    assert routed.decision.endpoints_in_order() == ("c-am-2", "c-am-3")  # busy owner skipped


@pytest.mark.parametrize("caller_id", ["", "anonymous", "Restricted", "abc", "+31 (0)", None, "0" * 40])
def test_odd_caller_ids_become_anonymous_and_are_asked_for_a_postcode(
    service: RoutingService, caller_id: str | None
) -> None:
    routed = asyncio.run(service.route(caller_id))
    assert routed.caller.kind is CallerKind.ANONYMOUS
    assert routed.decision.kind is DecisionKind.ASK_POSTCODE


def test_unknown_caller_placed_by_postcode(bn_context: Context, service: RoutingService) -> None:
    action_id = _start(
        bn_context, "Rotterdam", AreaSpec(AreaKind.POSTCODES, postcodes=("3012",)), ["c-ro-1"], "RO"
    )

    async def scenario() -> None:
        caller = await service.identify("0201234567")
        assert caller.kind is CallerKind.UNKNOWN and caller.number == "+31201234567"
        assert await service.place_by_postcode(caller, "99") is None
        placed = await service.place_by_postcode(caller, "3012")
        assert placed is not None and placed.region_code == "RO" and placed.location is not None
        decision = await service.decide(placed)
        assert decision.kind is DecisionKind.ROUTE and decision.action_id == action_id

    asyncio.run(scenario())


def test_redis_down_routes_by_location_with_the_snapshot_from_the_database(
    bn_context: Context, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis refusing connections (stopped, restarting): the decision still comes, by location."""
    _add_participant(bn_context, "+31612345678", *UTRECHT)
    action_id = _start(
        bn_context, "Vermist", AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000), ["c-mn-2"]
    )
    nobody_listens = AsyncLiveState.from_url(f"redis://127.0.0.1:{free_port()}/0", "down:")
    service = RoutingService(
        bn_context.sessions, nobody_listens, RoutingPolicy(), "MN", alerted_window_seconds=3600
    )

    async def scenario() -> None:
        routed = await service.route("+31612345678", call_id="1900.1")
        assert routed.decision.kind is DecisionKind.ROUTE and routed.decision.action_id == action_id
        assert routed.decision.endpoints_in_order()[0] == "c-mn-2"
        await nobody_listens.close()

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())
    assert any("call 1900.1: Redis failed" in record.getMessage() for record in caplog.records)

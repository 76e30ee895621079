"""Routing by action code, pure: the keyed code picks the action, wherever the caller is."""

from __future__ import annotations

from dataclasses import replace

import pytest

from routing import (
    ActiveAction,
    AreaIndex,
    Caller,
    CallerKind,
    Centralist,
    CircleArea,
    DecisionKind,
    LinearScanIndex,
    Location,
    NationalArea,
    Presence,
    Roster,
    RoutingPolicy,
    RoutingRequest,
    StepRole,
    action_for_code,
    decide,
)

UTRECHT = Location(5.1214, 52.0907)
AMSTERDAM = Location(4.8952, 52.3702)
POLICY = RoutingPolicy(owner_ring_seconds=15, pool_ring_seconds=20, max_menu_items=5)

IN_UTRECHT = ActiveAction(
    1, "Vermist meisje", "missing_child", 90, "MN", CircleArea(UTRECHT, 3000), ("c-mn-1",), 10, code="2468"
)
IN_AMSTERDAM = ActiveAction(
    2,
    "Witte bestelbus",
    "vehicle",
    50,
    "AM",
    CircleArea(AMSTERDAM, 2000),
    ("c-am-1", "c-am-2"),
    20,
    code="1357",
)
WITHOUT_CODE = ActiveAction(
    3, "Getuigen", "information", 10, "MN", CircleArea(UTRECHT, 8000), ("c-mn-3",), 30
)
CENTRALISTS = (
    Centralist("c-mn-1", "MN"),
    Centralist("c-mn-2", "MN"),
    Centralist("c-mn-3", "MN"),
    Centralist("c-am-1", "AM"),
    Centralist("c-am-2", "AM"),
    Centralist("c-am-3", "AM"),
)
IN_UTRECHT_CALLER = Caller(
    kind=CallerKind.KNOWN, number="+31612345678", participant_id=7, location=UTRECHT, region_code="MN"
)


def roster(presence: dict[str, Presence] | None = None) -> Roster:
    return Roster(CENTRALISTS, presence or {})


@pytest.fixture(params=[AreaIndex, LinearScanIndex])
def index(request: pytest.FixtureRequest) -> AreaIndex | LinearScanIndex:
    return request.param([IN_UTRECHT, IN_AMSTERDAM, WITHOUT_CODE])


def test_a_code_routes_to_its_action_even_outside_its_area(index: AreaIndex) -> None:
    # The Utrecht caller is inside two Utrecht actions (a menu without a code) but keys Amsterdam's code.
    request = RoutingRequest(caller=IN_UTRECHT_CALLER, action_code="1357")
    decision = decide(request, index, roster(), POLICY, "MN")
    assert decision.kind is DecisionKind.ROUTE and decision.by_code
    assert decision.action_id == 2 and decision.region_code == "AM"
    # The owners one by one, then the rest of the action's region pool: as the action's own route.
    assert [(step.endpoints, step.role) for step in decision.steps] == [
        (("c-am-1",), StepRole.OWNER),
        (("c-am-2",), StepRole.OWNER),
        (("c-am-3",), StepRole.POOL),
    ]
    assert "action code 1357" in decision.reason and "action 2" in decision.reason
    without = decide(RoutingRequest(caller=IN_UTRECHT_CALLER), index, roster(), POLICY, "MN")
    assert without.kind is DecisionKind.MENU and not without.by_code


def test_a_code_skips_busy_owners_like_any_route(index: AreaIndex) -> None:
    decision = decide(
        RoutingRequest(caller=IN_UTRECHT_CALLER, action_code="1357"),
        index,
        roster({"c-am-1": Presence.BUSY}),
        POLICY,
        "MN",
    )
    assert decision.endpoints_in_order() == ("c-am-2", "c-am-3")
    nobody = decide(
        RoutingRequest(caller=IN_UTRECHT_CALLER, action_code="1357"),
        index,
        roster({e: Presence.OFFLINE for e in ("c-am-1", "c-am-2", "c-am-3")}),
        POLICY,
        "MN",
    )
    assert nobody.kind is DecisionKind.TIP and nobody.action_id == 2 and nobody.by_code


def test_a_code_wins_over_the_alert_and_the_menu_choice(index: AreaIndex) -> None:
    request = RoutingRequest(
        caller=IN_UTRECHT_CALLER, alerted_by=(1,), chosen_action_id=1, action_code="1357"
    )
    assert decide(request, index, roster(), POLICY, "MN").action_id == 2


def test_an_unknown_caller_with_a_code_is_not_asked_for_a_postcode(index: AreaIndex) -> None:
    anonymous = Caller(kind=CallerKind.ANONYMOUS)
    decision = decide(RoutingRequest(caller=anonymous, action_code="2468"), index, roster(), POLICY, "AM")
    assert decision.kind is DecisionKind.ROUTE and decision.action_id == 1 and decision.by_code
    asked = decide(RoutingRequest(caller=anonymous, action_code="9999"), index, roster(), POLICY, "AM")
    assert asked.kind is DecisionKind.ASK_POSTCODE and not asked.by_code


@pytest.mark.parametrize("code", ["9999", "2469", "246", "", "0246"])
def test_a_code_nobody_holds_leaves_the_usual_decision(index: AreaIndex, code: str) -> None:
    usual = decide(RoutingRequest(caller=IN_UTRECHT_CALLER, alerted_by=(1,)), index, roster(), POLICY, "MN")
    keyed = decide(
        RoutingRequest(caller=IN_UTRECHT_CALLER, alerted_by=(1,), action_code=code),
        index,
        roster(),
        POLICY,
        "MN",
    )
    assert keyed == usual and not keyed.by_code and keyed.action_id == 1


def test_a_closed_action_is_not_in_the_index_so_its_code_does_not_route() -> None:
    # Closing an action takes it out of the active snapshot; its code stays on the row only.
    still_open = AreaIndex([IN_UTRECHT, WITHOUT_CODE])
    decision = decide(
        RoutingRequest(caller=IN_UTRECHT_CALLER, action_code="1357"), still_open, roster(), POLICY, "MN"
    )
    assert not decision.by_code and decision.action_id != 2


def test_an_action_without_a_code_is_never_matched() -> None:
    assert action_for_code([WITHOUT_CODE], "") is None
    assert action_for_code([IN_UTRECHT, WITHOUT_CODE], "2468") is IN_UTRECHT


def test_two_holders_of_one_code_give_the_most_recently_started() -> None:
    # Cannot happen through the service (a partial unique index); rows written by hand might.
    later = replace(IN_AMSTERDAM, code="2468", started_seq=99)
    assert action_for_code([IN_UTRECHT, later], "2468") is later
    national = ActiveAction(9, "AMBER", "amber_alert", 100, "ON", NationalArea(), ("c-on-1",), 5, code="2468")
    assert action_for_code([national, IN_UTRECHT], "2468") is IN_UTRECHT

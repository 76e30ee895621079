"""Table-driven tests of the routing core: every rule and edge, plain data in, decision out."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest
from shapely.geometry import Polygon, box

from routing import (
    ActiveAction,
    Area,
    AreaIndex,
    Caller,
    CallerKind,
    Centralist,
    CircleArea,
    DecisionKind,
    LinearScanIndex,
    Location,
    NationalArea,
    PolygonArea,
    PostcodeArea,
    Presence,
    Roster,
    RoutingPolicy,
    RoutingRequest,
    StepRole,
    decide,
    distance_m,
)

UTRECHT = Location(5.1214, 52.0907)
POLICY = RoutingPolicy(owner_ring_seconds=15, pool_ring_seconds=20, max_menu_items=5)

A1_CHILD = ActiveAction(
    1,
    "Vermist meisje",
    "missing_child",
    90,
    "MN",
    CircleArea(UTRECHT, 3000),
    ("c-mn-1", "c-mn-2"),
    started_seq=10,
)
A2_INFO = ActiveAction(
    2, "Getuigen inbraak", "information", 10, "MN", CircleArea(UTRECHT, 8000), ("c-mn-3",), started_seq=20
)
A3_VEHICLE = ActiveAction(
    3,
    "Witte bestelbus",
    "vehicle",
    50,
    "AM",
    PolygonArea(box(4.87, 52.36, 4.92, 52.385)),
    ("c-am-1",),
    started_seq=5,
)
A4_SUSPECT = ActiveAction(
    4,
    "Overval juwelier",
    "suspect",
    60,
    "RO",
    PostcodeArea(frozenset({"3011", "3012AB"})),
    ("c-ro-1",),
    started_seq=7,
)
A5_AMBER = ActiveAction(
    5, "AMBER Alert Noor", "amber_alert", 100, "ON", NationalArea(), ("c-on-1",), started_seq=30
)

CENTRALISTS = (
    Centralist("c-mn-1", "MN"),
    Centralist("c-mn-2", "MN"),
    Centralist("c-mn-3", "MN"),
    Centralist("c-mn-4", "MN", on_duty=False),
    Centralist("c-am-1", "AM"),
    Centralist("c-am-2", "AM"),
    Centralist("c-ro-1", "RO"),
    Centralist("c-ro-2", "RO"),
    Centralist("c-on-1", "ON"),
    Centralist("c-on-2", "ON"),
)


def north_of(origin: Location, metres: float) -> Location:
    return Location(origin.lon, origin.lat + math.degrees(metres / 6_371_008.8))


def known(at: Location, opted_out: bool = False) -> Caller:
    return Caller(
        kind=CallerKind.KNOWN,
        number="+31612345678",
        participant_id=7,
        location=at,
        region_code="MN",
        opted_out=opted_out,
    )


@dataclass(frozen=True)
class Case:
    name: str
    request: RoutingRequest
    kind: DecisionKind
    action_id: int | None = None
    endpoints: tuple[str, ...] = ()  # in ringing order, flattened
    menu: tuple[int, ...] = ()
    presence: dict[str, Presence] = field(default_factory=dict)
    actions: tuple[ActiveAction, ...] = (A1_CHILD, A2_INFO, A3_VEHICLE, A4_SUSPECT)
    policy: RoutingPolicy = POLICY


CASES = [
    Case(
        "two overlapping actions → menu, most urgent first",
        RoutingRequest(known(UTRECHT)),
        DecisionKind.MENU,
        menu=(1, 2),
    ),
    Case(
        "only the wide action → its owner, then the region pool (off-duty skipped)",
        RoutingRequest(known(north_of(UTRECHT, 5000))),
        DecisionKind.ROUTE,
        2,
        ("c-mn-3", "c-mn-1", "c-mn-2"),
    ),
    Case(
        "just inside a circle's border",
        RoutingRequest(known(north_of(UTRECHT, 7990))),
        DecisionKind.ROUTE,
        2,
        ("c-mn-3", "c-mn-1", "c-mn-2"),
    ),
    Case(
        "just outside a circle's border → no action",
        RoutingRequest(known(north_of(UTRECHT, 8010))),
        DecisionKind.NO_ACTION,
    ),
    Case(
        "exactly on a polygon's edge counts as inside",
        RoutingRequest(known(Location(4.87, 52.37))),
        DecisionKind.ROUTE,
        3,
        ("c-am-1", "c-am-2"),
    ),
    Case(
        "on a polygon's corner counts as inside",
        RoutingRequest(known(Location(4.92, 52.385))),
        DecisionKind.ROUTE,
        3,
        ("c-am-1", "c-am-2"),
    ),
    Case(
        "a hair outside the polygon → no action",
        RoutingRequest(known(Location(4.8699, 52.37))),
        DecisionKind.NO_ACTION,
    ),
    Case(
        "the alerting action wins over the caller's location",
        RoutingRequest(known(UTRECHT), alerted_by=(3,)),
        DecisionKind.ROUTE,
        3,
        ("c-am-1", "c-am-2"),
    ),
    Case(
        "most recent of several alerting actions wins",
        RoutingRequest(known(UTRECHT), alerted_by=(4, 3)),
        DecisionKind.ROUTE,
        4,
        ("c-ro-1", "c-ro-2"),
    ),
    Case(
        "an alert from a closed action is ignored → location decides",
        RoutingRequest(known(north_of(UTRECHT, 5000)), alerted_by=(99,)),
        DecisionKind.ROUTE,
        2,
        ("c-mn-3", "c-mn-1", "c-mn-2"),
    ),
    Case(
        "first owner busy → second owner, then the pool",
        RoutingRequest(known(UTRECHT), chosen_action_id=1),
        DecisionKind.ROUTE,
        1,
        ("c-mn-2", "c-mn-3"),
        presence={"c-mn-1": Presence.BUSY},
    ),
    Case(
        "owner offline is skipped, unknown presence is still rung",
        RoutingRequest(known(UTRECHT), chosen_action_id=1),
        DecisionKind.ROUTE,
        1,
        ("c-mn-2", "c-mn-3"),
        presence={"c-mn-1": Presence.OFFLINE, "c-mn-2": Presence.UNKNOWN},
    ),
    Case(
        "every centralist of the action and region busy → tip with the action",
        RoutingRequest(known(UTRECHT), chosen_action_id=1),
        DecisionKind.TIP,
        1,
        presence={"c-mn-1": Presence.BUSY, "c-mn-2": Presence.BUSY, "c-mn-3": Presence.BUSY},
    ),
    Case(
        "caller chose from the menu",
        RoutingRequest(known(UTRECHT), chosen_action_id=2),
        DecisionKind.ROUTE,
        2,
        ("c-mn-3", "c-mn-1", "c-mn-2"),
    ),
    Case(
        "a menu choice of an action no longer active → normal rules",
        RoutingRequest(known(north_of(UTRECHT, 5000)), chosen_action_id=42),
        DecisionKind.ROUTE,
        2,
        ("c-mn-3", "c-mn-1", "c-mn-2"),
    ),
    Case(
        "unknown caller without postcode → asked for one",
        RoutingRequest(Caller(kind=CallerKind.UNKNOWN, number="+31201234567")),
        DecisionKind.ASK_POSTCODE,
    ),
    Case(
        "anonymous caller → asked for a postcode",
        RoutingRequest(Caller(kind=CallerKind.ANONYMOUS)),
        DecisionKind.ASK_POSTCODE,
    ),
    Case(
        "unknown caller keyed a PC6 listed in a postcode action",
        RoutingRequest(Caller(kind=CallerKind.UNKNOWN, postcode="3012AB")),
        DecisionKind.ROUTE,
        4,
        ("c-ro-1", "c-ro-2"),
    ),
    Case(
        "a PC6 inside a listed PC4 matches",
        RoutingRequest(Caller(kind=CallerKind.ANONYMOUS, postcode="3011XY")),
        DecisionKind.ROUTE,
        4,
        ("c-ro-1", "c-ro-2"),
    ),
    Case(
        "a neighbouring PC6 of a listed PC6 does not match",
        RoutingRequest(Caller(kind=CallerKind.ANONYMOUS, postcode="3012AC")),
        DecisionKind.NO_ACTION,
    ),
    Case(
        "anonymous caller who gave up on the postcode → default region pool",
        RoutingRequest(Caller(kind=CallerKind.ANONYMOUS), postcode_given_up=True),
        DecisionKind.ROUTE,
        None,
        ("c-mn-1", "c-mn-2", "c-mn-3"),
    ),
    Case(
        "gave up and the default pool is busy → tip without an action",
        RoutingRequest(Caller(kind=CallerKind.ANONYMOUS), postcode_given_up=True),
        DecisionKind.TIP,
        None,
        presence={"c-mn-1": Presence.BUSY, "c-mn-2": Presence.OFFLINE, "c-mn-3": Presence.BUSY},
    ),
    Case(
        "an opted-out participant is still routed",
        RoutingRequest(known(Location(4.90, 52.37), opted_out=True)),
        DecisionKind.ROUTE,
        3,
        ("c-am-1", "c-am-2"),
    ),
    Case(
        "no active actions at all → no action",
        RoutingRequest(known(UTRECHT)),
        DecisionKind.NO_ACTION,
        actions=(),
    ),
    Case(
        "menu capped at max_menu_items",
        RoutingRequest(known(UTRECHT)),
        DecisionKind.MENU,
        menu=(5, 1),
        actions=(A1_CHILD, A2_INFO, A5_AMBER),
        policy=RoutingPolicy(max_menu_items=2),
    ),
    Case(
        "national AMBER Alert covers a caller anywhere",
        RoutingRequest(known(Location(6.5, 53.2))),
        DecisionKind.ROUTE,
        5,
        ("c-on-1", "c-on-2"),
        actions=(A1_CHILD, A5_AMBER),
    ),
    Case(
        "national AMBER Alert reaches an anonymous caller who gave up on the postcode",
        RoutingRequest(Caller(kind=CallerKind.ANONYMOUS), postcode_given_up=True),
        DecisionKind.ROUTE,
        5,
        ("c-on-1", "c-on-2"),
        actions=(A5_AMBER,),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_routing_rules(case: Case) -> None:
    decision = decide(
        case.request,
        AreaIndex(case.actions),
        Roster(CENTRALISTS, case.presence),
        case.policy,
        default_region="MN",
    )
    assert decision.kind is case.kind, decision.reason
    assert decision.action_id == case.action_id
    assert decision.endpoints_in_order() == case.endpoints
    assert tuple(option.action_id for option in decision.menu) == case.menu
    assert [option.digit for option in decision.menu] == [str(n) for n in range(1, len(case.menu) + 1)]
    assert decision.reason


def test_owners_ring_one_by_one_and_pool_rings_together() -> None:
    decision = decide(
        RoutingRequest(known(UTRECHT), chosen_action_id=1),
        AreaIndex((A1_CHILD,)),
        Roster(CENTRALISTS, {}),
        POLICY,
        "MN",
    )
    assert [(step.endpoints, step.timeout_seconds, step.role) for step in decision.steps] == [
        (("c-mn-1",), 15, StepRole.OWNER),
        (("c-mn-2",), 15, StepRole.OWNER),
        (("c-mn-3",), 20, StepRole.POOL),
    ]


def test_circle_border_cases_are_where_the_test_says() -> None:
    assert distance_m(UTRECHT, north_of(UTRECHT, 7990)) < 8000 < distance_m(UTRECHT, north_of(UTRECHT, 8010))


def test_spatial_index_agrees_with_a_linear_scan() -> None:
    rng = random.Random(4)
    actions = []
    for action_id in range(1, 301):
        lon, lat = rng.uniform(3.5, 7.0), rng.uniform(50.8, 53.4)
        area: Area
        if action_id % 3:
            area = CircleArea(Location(lon, lat), rng.uniform(200, 20_000))
        else:
            size = rng.uniform(0.01, 0.3)
            area = PolygonArea(Polygon([(lon, lat), (lon + size, lat), (lon + size / 2, lat + size)]))
        actions.append(ActiveAction(action_id, f"a{action_id}", "information", 10, "MN", area, ()))
    index = AreaIndex(actions)
    hits = 0
    for _ in range(3000):
        caller = known(Location(rng.uniform(3.5, 7.2), rng.uniform(50.8, 53.6)))
        indexed = sorted(a.action_id for a in index.covering(caller))
        scanned = sorted(a.action_id for a in LinearScanIndex(actions).covering(caller))
        assert indexed == scanned
        hits += bool(indexed)
    assert hits > 100  # the sample really exercised matches, not only misses

"""Who handles a call to the free number. Pure: plain data in, a :class:`Decision` out.

Rules, in order:

0. A caller who keyed an action code goes to the active action that holds it, wherever the
   caller is (the code is how they say which action they call about). A code no active action
   holds (mistyped, or its action closed) is ignored: the rules below decide.
1. A caller who picked an action from the menu goes to that action.
2. A caller whom an active action alerted recently goes to that action, wherever they are
   (the alert is why they call; the most recent alert wins).
3. A caller we cannot place (unknown or anonymous, no postcode yet) is asked for a postcode;
   one who gave up keying it in goes to the national actions or else the default region pool.
4. Otherwise the active actions whose area holds the caller: none → a spoken "no action";
   one → route to it; several → a short menu, most urgent and most recent first.

Routing to an action rings its owning centralists one by one (skipping those off duty, busy
or offline), then the rest of the action's region pool all at once. With nobody left to ring,
the decision is to record a tip and queue a call-back. Opted-out participants are routed
like anyone else: opting out of alerts is not opting out of help.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from routing.areas import CoveringIndex
from routing.model import (
    ActiveAction,
    Centralist,
    Decision,
    DecisionKind,
    MenuOption,
    Presence,
    RingStep,
    RoutingPolicy,
    RoutingRequest,
    StepRole,
)

_UNREACHABLE = frozenset({Presence.BUSY, Presence.OFFLINE})


class Roster:
    """The centralists by endpoint and by region, with their live presence."""

    def __init__(self, centralists: Iterable[Centralist], presence: Mapping[str, Presence]) -> None:
        self.by_endpoint = {c.endpoint: c for c in centralists}
        self.presence = presence
        self.by_region: dict[str, list[Centralist]] = {}
        for centralist in sorted(self.by_endpoint.values(), key=lambda c: c.endpoint):
            self.by_region.setdefault(centralist.region_code, []).append(centralist)

    def can_ring(self, endpoint: str) -> bool:
        centralist = self.by_endpoint.get(endpoint)
        if centralist is None or not centralist.on_duty:
            return False
        return self.presence.get(endpoint, Presence.UNKNOWN) not in _UNREACHABLE

    def pool(self, region_code: str, exclude: Iterable[str] = ()) -> tuple[str, ...]:
        skip = set(exclude)
        return tuple(
            c.endpoint
            for c in self.by_region.get(region_code, ())
            if c.endpoint not in skip and self.can_ring(c.endpoint)
        )


def decide(
    request: RoutingRequest,
    index: CoveringIndex,
    roster: Roster,
    policy: RoutingPolicy,
    default_region: str,
) -> Decision:
    caller = request.caller

    if request.action_code is not None:
        coded = action_for_code(index.actions.values(), request.action_code)
        if coded is not None:
            decision = _route(
                coded, roster, policy, f"caller keyed action code {coded.code} of action {coded.action_id}"
            )
            return replace(decision, by_code=True)

    if request.chosen_action_id is not None and request.chosen_action_id in index.actions:
        chosen = index.actions[request.chosen_action_id]
        return _route(chosen, roster, policy, f"caller chose action {chosen.action_id} from the menu")

    for action_id in request.alerted_by:
        if action_id in index.actions:
            return _route(index.actions[action_id], roster, policy, f"action {action_id} alerted this caller")

    placed = caller.location is not None or bool(caller.postcode)
    if not placed and not request.postcode_given_up:
        return Decision(DecisionKind.ASK_POSTCODE, reason=f"{caller.kind.value} caller without a location")

    matches = index.covering(caller)
    if not placed and not matches:
        region = caller.region_code or default_region
        steps = _pool_steps(roster, region, (), policy)
        if not steps:
            return Decision(
                DecisionKind.TIP, reason=f"no postcode and region {region} pool busy", region_code=region
            )
        return Decision(
            DecisionKind.ROUTE,
            reason=f"no postcode: region {region} pool",
            region_code=region,
            steps=tuple(steps),
        )
    if not matches:
        return Decision(
            DecisionKind.NO_ACTION,
            reason="no active action covers the caller",
            region_code=caller.region_code,
        )
    if len(matches) == 1:
        return _route(matches[0], roster, policy, f"caller inside the area of action {matches[0].action_id}")

    ordered = sorted(matches, key=lambda a: (-a.priority, -a.started_seq, a.action_id))
    shown = ordered[: policy.max_menu_items]
    menu = tuple(MenuOption(str(n), a.action_id, a.title) for n, a in enumerate(shown, start=1))
    return Decision(
        DecisionKind.MENU,
        reason=f"{len(matches)} actions cover the caller"
        + (f", {len(shown)} offered" if len(shown) < len(matches) else ""),
        region_code=caller.region_code,
        menu=menu,
    )


def action_for_code(actions: Iterable[ActiveAction], code: str) -> ActiveAction | None:
    """The active action holding ``code``. Codes are unique among open actions; should two
    ever share one (rows written by hand), the most recently started wins."""
    found = [action for action in actions if action.code is not None and action.code == code]
    if not found:
        return None
    return max(found, key=lambda a: (a.started_seq, a.action_id))


def _route(action: ActiveAction, roster: Roster, policy: RoutingPolicy, why: str) -> Decision:
    steps = [
        RingStep((endpoint,), policy.owner_ring_seconds, StepRole.OWNER)
        for endpoint in action.team
        if roster.can_ring(endpoint)
    ]
    steps.extend(_pool_steps(roster, action.region_code, action.team, policy))
    if not steps:
        return Decision(
            DecisionKind.TIP,
            reason=f"{why}; every centralist of the action and region {action.region_code} is busy",
            action_id=action.action_id,
            region_code=action.region_code,
        )
    return Decision(
        DecisionKind.ROUTE,
        reason=why,
        action_id=action.action_id,
        region_code=action.region_code,
        steps=tuple(steps),
    )


def _pool_steps(
    roster: Roster, region_code: str, exclude: Iterable[str], policy: RoutingPolicy
) -> list[RingStep]:
    pool = roster.pool(region_code, exclude)
    return [RingStep(pool, policy.pool_ring_seconds, StepRole.POOL)] if pool else []

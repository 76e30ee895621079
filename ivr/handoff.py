"""Hand a routing decision to the dialplan: the channel variables ``dialplans/route.conf`` reads.

Shared by the ``freephone`` and ``alert`` entry points (an alert call's key 1 is routed like a
call to the free number, logged as a transfer).
"""

from __future__ import annotations

import logging

from burgernet import channel_vars as cv
from ivr.agi import AgiSession
from ivr.services import IvrServices
from routing import Caller, Decision, DecisionKind

log = logging.getLogger(__name__)


def tip_file(services: IvrServices, action_id: int | None, unique_id: str) -> str:
    """Where Record() writes the tip (no extension); the same path on the host and in Asterisk."""
    safe_id = "".join(ch for ch in unique_id if ch.isalnum() or ch in ".-")
    folder = services.tips_dir / (str(action_id) if action_id is not None else "unassigned")
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / safe_id)


async def hand_to_dialplan(
    session: AgiSession, services: IvrServices, caller: Caller, decision: Decision, kind: str
) -> None:
    unique_id = session.env.unique_id
    action = "" if decision.action_id is None else str(decision.action_id)
    variables = {
        "CHANNEL(language)": caller.language,
        cv.VAR_CALL_KIND: kind,
        cv.VAR_ACTION_ID: action,
        cv.VAR_PARTICIPANT_ID: "" if caller.participant_id is None else str(caller.participant_id),
        cv.VAR_REGION: decision.region_code or services.settings.default_region,
        # MSet takes no commas or quotes in values; the reason is for people reading logs.
        cv.VAR_REASON: decision.reason.replace(",", ";").replace('"', "'"),
        cv.VAR_TIP_FILE: tip_file(services, decision.action_id, unique_id),
    }
    if decision.kind is DecisionKind.ROUTE:
        variables[cv.VAR_TARGET_COUNT] = str(len(decision.steps))
        for number, step in enumerate(decision.steps, start=1):
            variables[cv.target_var(number)] = "&".join(f"PJSIP/{endpoint}" for endpoint in step.endpoints)
            variables[cv.timeout_var(number)] = str(step.timeout_seconds)
        route = cv.ROUTE_DIAL
    elif decision.kind is DecisionKind.NO_ACTION:
        route = cv.ROUTE_NO_ACTION
        variables[cv.VAR_OUTCOME] = cv.OUTCOME_NO_ACTION
    else:  # TIP, or anything the core may add later: a tip never dead-ends
        route = cv.ROUTE_TIP
    # One round trip for all of them. BN_ROUTE last: the dialplan treats an empty BN_ROUTE as
    # "FastAGI failed half-way", and MSet sets them in order.
    variables[cv.VAR_ROUTE] = route
    await session.set_variables(variables)
    # Logged after the caller is on their way; the AMI tracker fills in answer and hang-up.
    services.in_background(
        "log call",
        unique_id,
        lambda: services.calls.open_call(
            unique_id,
            kind=kind,
            linked_id=session.env.linked_id,
            caller_number=caller.number,
            participant_id=caller.participant_id,
            action_id=decision.action_id,
            region_code=decision.region_code,
            reason=decision.reason,
            outcome=cv.OUTCOME_NO_ACTION if decision.kind is DecisionKind.NO_ACTION else None,
        ),
    )
    services.spawn(
        "publish route",
        unique_id,
        services.live.publish(
            {
                "type": "call_routed",
                "call": unique_id,
                "kind": kind,
                "route": route,
                "action_id": decision.action_id,
                "reason": decision.reason,
            }
        ),
    )
    log.info("call %s from %s: %s (%s)", unique_id, caller.kind.value, route, decision.reason)

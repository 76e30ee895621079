"""Hand a routing decision to the dialplan: the channel variables ``dialplans/route.conf`` reads.

Shared by the ``freephone`` and ``alert`` entry points (an alert call's key 1 is routed like a
call to the free number, logged as a transfer).
"""

from __future__ import annotations

import logging

from burgernet import channel_vars as cv
from burgernet.desk import AsyncDeskFeed, DeskCall, phone_label
from ivr.agi import AgiSession
from ivr.services import IvrServices
from recordings.paths import asterisk_sound_name, tip_recording_path
from routing import Caller, Decision, DecisionKind

log = logging.getLogger(__name__)


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
        # Record() creates the folder itself; nothing to touch on disk while the caller waits.
        cv.VAR_TIP_FILE: asterisk_sound_name(
            tip_recording_path(services.settings, decision.action_id, unique_id).absolute()
        ),
    }
    title = services.routing.action_title(decision.action_id)
    if decision.kind is DecisionKind.ROUTE:
        # What the centralist's phone shows as the caller's name (dialplans/desk.conf).
        variables[cv.VAR_ACTION_LABEL] = phone_label(decision.action_id, title)
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
    if decision.kind is DecisionKind.ROUTE:
        # The call card: the first step's phones ring next; later steps are announced by their
        # DialBegin (ivr/desk_signals.py). Spawned before the variables go out, so the card is
        # usually on its way before Asterisk dials (and before that DialBegin).
        services.spawn(
            "announce to the desk",
            unique_id,
            AsyncDeskFeed(services.live).route_decided(
                DeskCall(
                    call=unique_id,
                    action_id=decision.action_id,
                    title=title,
                    caller_number=caller.number,
                    participant_id=caller.participant_id,
                    reason=decision.reason,
                    kind=kind,
                ),
                decision.steps[0].endpoints if decision.steps else (),
            ),
        )
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

"""FastAGI ``alert``: a key pressed in an answered alert call.

The broadcaster originates the call into ``[burgernet-alert]`` (``dialplans/alert.conf``) with
BN_ACTION_ID, BN_PARTICIPANT_ID and BN_DELIVERY_ID set. The dialplan plays the message and
reads one digit; for 1 and 9 it calls this script with the digit as its argument:

* ``1`` — put the participant through to the centralists of that action at once, exactly as
  a call to the free number would be (logged as a transfer against the action);
* ``9`` — opt the participant out of alerts and let the dialplan confirm it.
"""

from __future__ import annotations

import logging

from burgernet import channel_vars as cv
from ivr.agi import AgiSession
from ivr.handoff import hand_to_dialplan
from ivr.services import IvrServices
from routing import Caller, CallerKind

log = logging.getLogger(__name__)

KEY_TALK = "1"
KEY_OPT_OUT = "9"


async def handle(session: AgiSession, services: IvrServices) -> None:
    key = session.env.arguments[0] if session.env.arguments else ""
    action_id = _int_or_none(await session.get_variable(cv.VAR_ACTION_ID))
    participant_id = _int_or_none(await session.get_variable(cv.VAR_PARTICIPANT_ID))
    caller: Caller | None = None
    if participant_id is not None:
        caller = await services.routing.caller_for_participant(participant_id, call_id=session.env.unique_id)
    if caller is None:
        caller = Caller(kind=CallerKind.UNKNOWN)

    if key == KEY_OPT_OUT:
        if participant_id is not None:
            found = await services.opt_out(participant_id)
            log.info(
                "alert call %s: participant %s opted out (%s)", session.env.unique_id, participant_id, found
            )
        await session.set_variable(cv.VAR_ROUTE, cv.ROUTE_OPTED_OUT)
        return
    if key != KEY_TALK:
        # The dialplan only sends 1 and 9; anything else plays the message again.
        await session.set_variable(cv.VAR_ROUTE, cv.ROUTE_REPEAT)
        return
    decision = await services.routing.decide(
        caller, chosen_action_id=action_id, call_id=session.env.unique_id
    )
    await hand_to_dialplan(session, services, caller, decision, cv.CALL_KIND_TRANSFER)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None

"""FastAGI ``freephone``: a call to the free number (0800-0011) — who should take it?

Called from ``[burgernet-freephone]`` in ``dialplans/freephone.conf``. It identifies the
caller, asks an unknown or anonymous caller for a postcode, offers a menu when several
actions cover the caller, and leaves the decision in channel variables (BN_ROUTE,
BN_TARGET_n, BN_TIMEOUT_n, ...) for the dialplan, which does the ringing. FastAGI is done
before the first ring, so a restart of this service never drops a call in progress.
"""

from __future__ import annotations

import asyncio
import logging

from burgernet import channel_vars as cv
from burgernet.postcode import is_pc4
from burgernet.routing_service import PostcodeLookupUnavailable
from ivr.agi import AgiSession
from ivr.handoff import hand_to_dialplan
from ivr.services import IvrServices
from routing import Caller, Decision, DecisionKind

log = logging.getLogger(__name__)

POSTCODE_DIGITS = 4
POSTCODE_TIMEOUT_MS = 8000
MENU_TIMEOUT_MS = 6000
MENU_ROUNDS = 2


async def handle(session: AgiSession, services: IvrServices) -> None:
    unique_id = session.env.unique_id
    routed = await services.routing.route(session.env.caller_id, call_id=unique_id)
    caller, decision = routed.caller, routed.decision
    # Logged at once, so a caller who hangs up in the postcode prompt or the menu is on record.
    services.in_background(
        "log caller",
        unique_id,
        lambda: services.calls.open_call(
            unique_id,
            kind=cv.CALL_KIND_INBOUND,
            linked_id=session.env.linked_id,
            caller_number=caller.number,
            participant_id=caller.participant_id,
        ),
    )

    if decision.kind is DecisionKind.ASK_POSTCODE:
        caller, decision = await ask_postcode(session, services, caller)
    if decision.kind is DecisionKind.MENU:
        decision = await choose_from_menu(session, services, caller, decision)
    await hand_to_dialplan(session, services, caller, decision, cv.CALL_KIND_INBOUND)


async def ask_postcode(session: AgiSession, services: IvrServices, caller: Caller) -> tuple[Caller, Decision]:
    """Up to N tries to key in the four digits of a postcode; then the region pool."""
    attempts = services.settings.routing.postcode_attempts
    for attempt in range(1, attempts + 1):
        digits = await session.get_data(
            services.sound(caller.language, "enter-postcode"), POSTCODE_TIMEOUT_MS, POSTCODE_DIGITS
        )
        if digits and is_pc4(digits):
            try:
                placed = await services.routing.place_by_postcode(
                    caller, digits, call_id=session.env.unique_id
                )
            except PostcodeLookupUnavailable:
                break  # the database is down: asking again is in vain; the region pool takes it
            if placed is not None:
                return placed, await services.routing.decide(placed, call_id=session.env.unique_id)
        log.info(
            "call %s: postcode attempt %s/%s unusable: %r", session.env.unique_id, attempt, attempts, digits
        )
        if attempt < attempts:
            await session.stream_file(services.sound(caller.language, "invalid-postcode"))
    return caller, await services.routing.decide(
        caller, postcode_given_up=True, call_id=session.env.unique_id
    )


async def choose_from_menu(
    session: AgiSession, services: IvrServices, caller: Caller, decision: Decision
) -> Decision:
    """Read the options ("press 1 for ..."); a key press chooses. No choice: the most urgent one."""
    options = {option.digit: option for option in decision.menu}
    escape = "".join(options)
    for _round in range(MENU_ROUNDS):
        pressed = await session.stream_file(services.sound(caller.language, "menu-intro"), escape)
        for option in decision.menu:
            if pressed:
                break
            # Synthesised once per action title and language, then served from the TTS cache.
            sound = await asyncio.to_thread(
                services.prompts.menu_item, caller.language, option.digit, option.title
            )
            pressed = await session.stream_file(sound, escape)
        if not pressed:
            pressed = await session.wait_for_digit(MENU_TIMEOUT_MS)
        if pressed in options:
            return await services.routing.decide(
                caller, chosen_action_id=options[pressed].action_id, call_id=session.env.unique_id
            )
    # Nobody is left waiting in a menu: the most urgent action (listed first) takes the call.
    return await services.routing.decide(
        caller, chosen_action_id=decision.menu[0].action_id, call_id=session.env.unique_id
    )

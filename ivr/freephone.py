"""FastAGI ``freephone``: a call to the free number (0800-0011) — who should take it?

Called from ``[burgernet-freephone]`` in ``dialplans/freephone.conf``. It identifies the
caller, plays a short welcome during which the caller may key an action code (the digits the
SMS, e-mail, voice alert, AMBER page or app gave them), asks an unknown or anonymous caller
for a postcode, offers a menu when several actions cover the caller, and leaves the decision
in channel variables (BN_ROUTE, BN_TARGET_n, BN_TIMEOUT_n, ...) for the dialplan, which does
the ringing. FastAGI is done before the first ring, so a restart of this service never drops a
call in progress.

The code window. The participant app dials ``08000011,4821``: the phone waits ~2 s after the
answer, then sends the digits as RFC 4733 events. So the welcome (about 2.5 s) is one
``GET DATA`` that any key cuts short, followed by ``routing.action_code_wait_ms`` for the first
key; keys between ``GET DATA`` commands would be lost (Asterisk drops the frames it reads while
AGI waits for the next command), so the prompt, the wait and the first keys are one command.
A caller without a code loses the welcome and that wait (see the README's figure); one who keyed
part of a code gets ``routing.action_code_digit_ms`` for each further key.
"""

from __future__ import annotations

import asyncio
import logging

from burgernet import channel_vars as cv
from burgernet.action_codes import CODE_DIGITS, is_action_code
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
# The decisions after which the caller hears the welcome and may key an action code.
WELCOME_FOR = frozenset({DecisionKind.ASK_POSTCODE, DecisionKind.MENU, DecisionKind.NO_ACTION})


async def handle(session: AgiSession, services: IvrServices) -> None:
    unique_id = session.env.unique_id
    identified = await services.routing.identify_call(session.env.caller_id, call_id=unique_id)
    caller = identified.caller
    # Logged at once, so a caller who hangs up in the welcome, the postcode prompt or the menu
    # is on record.
    services.in_background(
        "log caller",
        unique_id,
        lambda: services.calls.open_call(
            unique_id,
            kind=cv.CALL_KIND_INBOUND,
            linked_id=session.env.linked_id,
            caller_number=identified.caller.number,
            participant_id=identified.caller.participant_id,
        ),
    )
    keyed = None
    routed = await services.routing.route_identified(identified)
    decision = routed.decision
    # The welcome, with its window for an action code, only where the code can help (unless
    # routing.action_code_welcome = "always"): a caller the system already places (known number
    # inside an action's area, or alerted by one) is put through at once, the 3.7 s of the
    # welcome would only delay them. An unknown or
    # anonymous caller (the app's participants are unknown by design), one with a choice of
    # actions, or one outside every area keys the code instead of a postcode or a menu digit.
    settings = services.settings.routing
    if settings.action_codes and (settings.action_code_welcome == "always" or decision.kind in WELCOME_FOR):
        keyed = await key_action_code(session, services, caller)
        # Only a well-formed code is looked up; anything else keyed is a wrong code at once.
        code = keyed if is_action_code(keyed) else None
        if code is not None:
            routed = await services.routing.route_identified(identified, action_code=code)
            decision = routed.decision

    if keyed is not None and decision.by_code:
        log.info("call %s: action code %s chose action %s", unique_id, keyed, decision.action_id)
        # For the Asterisk log and the CDR; the call record has it in the route reason.
        await session.set_variable(cv.VAR_ACTION_CODE, keyed)
    elif keyed is not None:
        log.info("call %s: action code %r is unknown or closed; the usual route follows", unique_id, keyed)
        await session.stream_file(services.sound(caller.language, "code-unknown"))

    if decision.kind is DecisionKind.ASK_POSTCODE:
        caller, decision = await ask_postcode(session, services, caller)
    if decision.kind is DecisionKind.MENU:
        decision = await choose_from_menu(session, services, caller, decision)
    await hand_to_dialplan(session, services, caller, decision, cv.CALL_KIND_INBOUND)


async def key_action_code(session: AgiSession, services: IvrServices, caller: Caller) -> str | None:
    """The welcome, and the keys of an action code keyed during it or right after; None: no key."""
    settings = services.settings.routing
    keyed = await session.get_data(
        services.sound(caller.language, "code-welcome"), settings.action_code_wait_ms, CODE_DIGITS
    )
    # GET DATA gave up between two keys: a person keying from an SMS gets more time per key.
    while keyed is not None and len(keyed) < CODE_DIGITS and keyed.isdigit():
        more = await session.wait_for_digit(settings.action_code_digit_ms)
        if more is None or not more.isdigit():
            break
        keyed += more
    return keyed


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

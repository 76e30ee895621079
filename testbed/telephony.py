"""The telephony side as Asterisk drives it, for browser tests and screenshots.

A call to the free number reaches the real ``freephone`` flow over FastAGI (the peer from
:mod:`testbed.agi_peer` speaks Asterisk's side of the protocol), and the call tracker reads
the AMI events Asterisk would send next. Everything the panel shows then comes through the
code paths a real call takes: the call log in the database and the live feed in Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from burgernet import channel_vars as cv
from composition.context import Context
from ivr.app import CataloguePrompts, build_services
from ivr.call_tracker import CallTracker
from ivr.routes import build_routes
from ivr.server import FastAgiServer
from testbed.agi_peer import agi_call, agi_header

T = TypeVar("T")


def run_telephony(work: Coroutine[Any, Any, T]) -> T:
    """Run telephony code on an event loop of its own (Playwright's sync API holds this thread's)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="telephony") as pool:
        return pool.submit(asyncio.run, work).result(timeout=120)


async def phones_change(context: Context, states: Mapping[str, str]) -> None:
    """AMI DeviceStateChange for centralists' phones: endpoint → Asterisk device state (NOT_INUSE, ...)."""
    services = build_services(context, CataloguePrompts(context.settings))
    tracker = CallTracker(services.calls, services.live, services.call_log_writer)
    try:
        for endpoint, state in states.items():
            await tracker.on_event(
                {"Event": "DeviceStateChange", "Device": f"PJSIP/{endpoint}", "State": state}
            )
    finally:
        await services.drain()
        await services.live.close()


def channel_variables_set(commands: list[str]) -> dict[str, str]:
    """The variables a flow set with ``EXEC MSet "A=1,B=2"`` (values hold no commas or quotes)."""
    variables: dict[str, str] = {}
    for command in commands:
        if command.startswith("EXEC MSet "):
            for pair in command[len("EXEC MSet ") :].strip('"').split(","):
                name, _, value = pair.partition("=")
                variables[name] = value
    return variables


async def call_free_number(
    context: Context,
    caller_id: str,
    unique_id: str,
    *,
    answered_by: str | None,
    outcome: str = cv.OUTCOME_CONNECTED,
    tip_wav: bytes | None = None,
) -> list[str]:
    """One call: FastAGI ``freephone``, then AMI DialEnd (when answered) and Hangup.

    With ``tip_wav`` nobody answers: the dialplan's Record() is played by writing the WAV
    where the flow said (BN_TIP_FILE), then FastAGI ``tip`` files it. Returns the AGI
    commands of the ``freephone`` flow (its routing decision is in the ``EXEC MSet``).
    """
    services = build_services(context, CataloguePrompts(context.settings))
    tracker = CallTracker(services.calls, services.live, services.call_log_writer)
    server = FastAgiServer(build_routes(services), host="127.0.0.1", port=0, failure_context=cv.CTX_FAILURE)
    await server.start()
    try:
        commands = await agi_call(
            server.bound_port, agi_header(cv.AGI_FREEPHONE, unique_id=unique_id, agi_callerid=caller_id)
        )
        marked = [f"{cv.VAR_CALL_KIND}={cv.CALL_KIND_INBOUND}"]
        if tip_wav is not None:
            await leave_tip(server.bound_port, caller_id, unique_id, channel_variables_set(commands), tip_wav)
            outcome = cv.OUTCOME_TIP_LEFT
        if answered_by is not None:
            await tracker.on_event(
                {
                    "Event": "DialEnd",
                    "DialStatus": "ANSWER",
                    "Uniqueid": unique_id,
                    "CallerIDNum": caller_id,
                    "DestChannel": f"PJSIP/{answered_by}-0000002a",
                    "ChanVariable": marked,
                }
            )
        await tracker.on_event(
            {
                "Event": "Hangup",
                "Uniqueid": unique_id,
                "CallerIDNum": caller_id,
                "Cause": "16",  # normal clearing
                "ChanVariable": [*marked, f"{cv.VAR_OUTCOME}={outcome}"],
            }
        )
    finally:
        await server.close(grace=1)
        await services.drain()
        await services.live.close()
    return commands


async def leave_tip(port: int, caller_id: str, unique_id: str, variables: dict[str, str], wav: bytes) -> None:
    """What ``[burgernet-tip]`` does: Record() to ${BN_TIP_FILE}.wav, then AGI ``tip``."""
    recording = Path(f"{variables[cv.VAR_TIP_FILE]}.wav")
    recording.parent.mkdir(parents=True, exist_ok=True)
    recording.write_bytes(wav)

    def asterisk(command: str) -> list[bytes]:
        for name in (cv.VAR_TIP_FILE, cv.VAR_ACTION_ID):
            if command == f"GET VARIABLE {name}":
                return [f"200 result=1 ({variables[name]})\n".encode()]
        return [b"200 result=1\n"]

    await agi_call(port, agi_header(cv.AGI_TIP, unique_id=unique_id, agi_callerid=caller_id), asterisk)

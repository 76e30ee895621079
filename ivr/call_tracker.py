"""Follow calls and centralist phones through AMI events; write the callback log and presence.

:func:`interpret` is pure: one AMI event (a mapping as panoramisk parses it) in, a list of
updates out. :class:`CallTracker` applies them: the call log in the database, presence and
the live feed in Redis. Only channels the dialplan marked with BN_CALL_KIND (our inbound
calls and transfers) are logged; every PJSIP device state feeds presence.

Which events (Asterisk 22, ``manager.conf`` read = call,system):

* ``DialEnd`` with ``DialStatus: ANSWER`` — a centralist answered (``DestChannel`` names them);
* ``Hangup`` of our channel — the call ended: outcome from ``BN_OUTCOME``, cause from ``Cause``;
* ``DeviceStateChange`` of ``PJSIP/<endpoint>`` — available, ringing/in use, unavailable.

Events sent while the AMI connection was down are lost. After every (re)connection
:meth:`CallTracker.resync` reads the state from Asterisk instead (write privilege
``reporting``): the device states, fed through :func:`interpret` as if they were events, and
the channels that exist, which closes the calls whose Hangup was missed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from burgernet import channel_vars as cv
from burgernet.calls import OUTCOME_UNOBSERVED, CallLog
from burgernet.live import AsyncLiveState
from burgernet.phone import caller_id_to_e164
from routing import Presence

log = logging.getLogger(__name__)
T = TypeVar("T")

# "PJSIP/c-mn-1-0000002a" → "c-mn-1": the channel name is the endpoint plus a counter.
_PJSIP_CHANNEL = re.compile(r"^PJSIP/(?P<endpoint>.+)-[0-9a-f]{8}$")

DEVICE_PRESENCE = {
    "NOT_INUSE": Presence.AVAILABLE,
    "INUSE": Presence.BUSY,
    "BUSY": Presence.BUSY,
    "RINGING": Presence.BUSY,
    "RINGINUSE": Presence.BUSY,
    "ONHOLD": Presence.BUSY,
    "UNAVAILABLE": Presence.OFFLINE,
    "INVALID": Presence.OFFLINE,
    "UNKNOWN": Presence.UNKNOWN,
}


@dataclass(frozen=True)
class Answered:
    unique_id: str
    endpoint: str
    caller: str | None = None  # E.164 from the event's CallerIDNum (FastAGI may never have run)


@dataclass(frozen=True)
class Ended:
    unique_id: str
    outcome: str | None
    cause: int | None
    caller: str | None = None


@dataclass(frozen=True)
class PresenceChanged:
    endpoint: str
    presence: Presence


Update = Answered | Ended | PresenceChanged


def channel_variables(event: Mapping[str, Any], header: str = "ChanVariable") -> dict[str, str]:
    """``ChanVariable: NAME=value`` lines (one → a string, several → a list) as a dict."""
    raw = event.get(header)
    if raw is None:
        return {}
    items = raw if isinstance(raw, list) else [raw]
    variables: dict[str, str] = {}
    for item in items:
        name, _, value = str(item).partition("=")
        variables[name.strip()] = value
    return variables


def endpoint_of(channel: str) -> str | None:
    match = _PJSIP_CHANNEL.match(channel or "")
    return match.group("endpoint") if match else None


def interpret(event: Mapping[str, Any]) -> list[Update]:
    name = event.get("Event")
    if name == "DeviceStateChange":
        device = str(event.get("Device", ""))
        if device.startswith("PJSIP/"):
            return [
                PresenceChanged(
                    device[len("PJSIP/") :], DEVICE_PRESENCE.get(str(event.get("State")), Presence.UNKNOWN)
                )
            ]
        return []
    variables = channel_variables(event)
    if variables.get(cv.VAR_CALL_KIND) not in (cv.CALL_KIND_INBOUND, cv.CALL_KIND_TRANSFER):
        return []
    unique_id = str(event.get("Uniqueid", ""))
    if not unique_id:
        return []
    caller = caller_id_to_e164(str(event.get("CallerIDNum", "")))
    if name == "DialEnd" and event.get("DialStatus") == "ANSWER":
        endpoint = endpoint_of(str(event.get("DestChannel", "")))
        return [Answered(unique_id, endpoint, caller)] if endpoint else []
    if name == "Hangup":
        cause_text = str(event.get("Cause", ""))
        return [
            Ended(
                unique_id,
                variables.get(cv.VAR_OUTCOME) or None,
                int(cause_text) if cause_text.isdigit() else None,
                caller,
            )
        ]
    return []


class AsteriskState(Protocol):
    """What :meth:`CallTracker.resync` asks Asterisk (:class:`ivr.ami.AmiClient`)."""

    async def device_states(self, timeout: float = 10.0) -> dict[str, str]: ...

    async def live_channels(self, timeout: float = 10.0) -> set[str]: ...


@dataclass(frozen=True)
class Resync:
    """What one resynchronisation changed: presence written and removed, calls closed."""

    presence: dict[str, Presence]
    forgotten: frozenset[str]
    closed_calls: tuple[str, ...]


class CallTracker:
    """Applies interpreted AMI events; subscribe :meth:`on_event` to the AMI client."""

    EVENTS = ("DialEnd", "Hangup", "DeviceStateChange")

    def __init__(self, calls: CallLog, live: AsyncLiveState, writer: Executor | None = None) -> None:
        self._calls = calls
        self._live = live
        # The same single writer thread as the FastAGI flows (see IvrServices.call_log_writer).
        self._writer = writer
        # Presence events counted per endpoint: a resync never overwrites a state an event
        # reported after Asterisk's answer was asked for.
        self._presence_events = 0
        self._presence_seen: dict[str, int] = {}
        self._presence_order = asyncio.Lock()
        self.resyncs = 0  # completed resynchronisations, for tests and the log

    async def _write(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, work)

    async def on_event(self, event: Mapping[str, Any]) -> None:
        for update in interpret(event):
            if not isinstance(update, PresenceChanged):
                await self.apply(update)
                continue
            self._presence_events += 1
            sequence = self._presence_events
            self._presence_seen[update.endpoint] = sequence
            # Every AMI event runs as a task of its own. After a backlog (a process that was
            # stopped and resumed, a burst of state changes) an older state could be written
            # after a newer one and leave a phone "busy" for good: writes take turns (the lock
            # is FIFO) and a state that a newer event for the same phone overtook is dropped.
            async with self._presence_order:
                if self._presence_seen.get(update.endpoint) == sequence:
                    await self.apply(update)

    async def resync(self, asterisk: AsteriskState) -> Resync:
        """Rewrite presence and close missed calls from what Asterisk reports now.

        Presence: every PJSIP device in Asterisk's device-state cache (res_pjsip puts each
        configured endpoint there, registered or not) is interpreted exactly like a
        ``DeviceStateChange`` event. An active centralist, or an endpoint with a presence
        entry, that the cache lacks does not exist in Asterisk (any more): its entry is removed.
        """
        mark = self._presence_events
        states = {
            device[len("PJSIP/") :]: state
            for device, state in (await asterisk.device_states()).items()
            if device.startswith("PJSIP/")
        }
        configured = set(await self._write(self._calls.centralist_endpoints))
        candidates = configured | await self._live.presence_endpoints()
        gone = {
            endpoint
            for endpoint in candidates - states.keys()
            if self._presence_seen.get(endpoint, 0) <= mark
        }
        written: dict[str, Presence] = {}
        for endpoint, state in states.items():
            if self._presence_seen.get(endpoint, 0) > mark:
                continue  # an event after our question knows better
            for update in interpret(
                {"Event": "DeviceStateChange", "Device": f"PJSIP/{endpoint}", "State": state}
            ):
                if isinstance(update, PresenceChanged):
                    await self.apply(update)
                    written[update.endpoint] = update.presence
        await self._live.forget_presence(gone)
        closed = await self.close_missed_calls(asterisk)
        self.resyncs += 1
        log.info(
            "resynced from Asterisk: presence of %s endpoints, %s removed, %s calls closed unobserved",
            len(written),
            len(gone),
            len(closed),
        )
        return Resync(written, frozenset(gone), tuple(closed))

    async def close_missed_calls(self, asterisk: AsteriskState) -> list[str]:
        """Calls still open in the log whose channel Asterisk no longer has: closed."""
        asked_at = datetime.now(UTC)
        alive = await asterisk.live_channels()
        closed = await self._write(lambda: self._calls.close_unobserved(alive, asked_at))
        for unique_id in closed:
            view = await self._write(functools.partial(self._calls.get, unique_id))
            log.warning("call %s: its hang-up was missed; closed from Asterisk's channel list", unique_id)
            await self._live.publish(
                {
                    "type": "call_ended",
                    "call": unique_id,
                    "action_id": view.action_id if view else None,
                    "outcome": view.outcome if view else OUTCOME_UNOBSERVED,
                }
            )
        return closed

    async def apply(self, update: Update) -> None:
        if isinstance(update, PresenceChanged):
            await self._live.set_presence(update.endpoint, update.presence)
            await self._live.publish(
                {"type": "presence", "endpoint": update.endpoint, "presence": update.presence.value}
            )
        elif isinstance(update, Answered):
            outcome = await self._write(
                lambda: self._calls.answered(update.unique_id, update.endpoint, caller_number=update.caller)
            )
            await self._live.publish(
                {
                    "type": "call_answered",
                    "call": update.unique_id,
                    "centralist": update.endpoint,
                    "outcome": outcome,
                }
            )
        else:
            known = update.outcome if update.outcome in _KNOWN_OUTCOMES else None
            if known is None and update.cause in NETWORK_FAILURE_CAUSES:
                known = cv.OUTCOME_FAILED  # the line broke before the dialplan could say anything
            await self._write(
                lambda: self._calls.ended(
                    update.unique_id, outcome=known, hangup_cause=update.cause, caller_number=update.caller
                )
            )
            view = await self._write(lambda: self._calls.get(update.unique_id))
            await self._live.publish(
                {
                    "type": "call_ended",
                    "call": update.unique_id,
                    "action_id": view.action_id if view else None,
                    "outcome": view.outcome if view else known,
                }
            )


_KNOWN_OUTCOMES = frozenset(cv.OUTCOMES)
# Q.850 causes that mean the network failed the call, not that someone hung up:
# 34 no circuit, 38 network out of order, 41 temporary failure, 42 congestion, 47 unavailable.
NETWORK_FAILURE_CAUSES = frozenset({34, 38, 41, 42, 47})

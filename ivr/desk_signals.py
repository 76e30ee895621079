"""The call card follows the call through AMI: which phone rings, which answered, when it ended.

The routing decision already announced the first step's phones (:mod:`ivr.handoff`). Here
Asterisk's own events finish the story for :class:`burgernet.desk.AsyncDeskFeed`:

* ``DialBegin`` (``DestChannel: PJSIP/<endpoint>-…``) — a phone rings: announced unless it was
  already (a later ring step, the region pool, the failure path's pool where FastAGI decided
  nothing: then the card is built from the event's caller ID and ``BN_ACTION_ID``);
* ``DialEnd`` — that phone answered (the card stays up) or stopped ringing (its card closes);
* ``Hangup`` of the caller's channel — every card of the call closes into the call's record.

Only our calls count (``BN_CALL_KIND`` inbound or transfer, as for the call tracker).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from burgernet import channel_vars as cv
from burgernet.desk import AsyncDeskFeed, DeskCall
from burgernet.phone import caller_id_to_e164
from ivr.call_tracker import channel_variables, endpoint_of

log = logging.getLogger(__name__)

# The reason shown on a card that the routing decision did not announce (FastAGI was not there).
REASON_DIALPLAN_ONLY = "rung by the dialplan (no routing decision: failure path)"


def _action_id(variables: Mapping[str, str]) -> int | None:
    value = variables.get(cv.VAR_ACTION_ID, "")
    return int(value) if value.isdigit() else None


class DeskSignals:
    """Subscribe :meth:`on_event` to the AMI client for :attr:`EVENTS`."""

    EVENTS = ("DialBegin", "DialEnd", "Hangup")

    def __init__(self, feed: AsyncDeskFeed) -> None:
        self._feed = feed

    async def on_event(self, event: Mapping[str, Any]) -> None:
        variables = channel_variables(event)
        kind = variables.get(cv.VAR_CALL_KIND)
        if kind not in (cv.CALL_KIND_INBOUND, cv.CALL_KIND_TRANSFER):
            return
        unique_id = str(event.get("Uniqueid", ""))
        if not unique_id:
            return
        name = event.get("Event")
        action_id = _action_id(variables)
        if name == "Hangup":
            await self._feed.call_ended(unique_id, variables.get(cv.VAR_OUTCOME) or None, action_id)
            return
        endpoint = endpoint_of(str(event.get("DestChannel", "")))
        if endpoint is None:
            return
        if name == "DialBegin":
            fallback = DeskCall(
                call=unique_id,
                action_id=action_id,
                title="",
                caller_number=caller_id_to_e164(str(event.get("CallerIDNum", ""))),
                participant_id=None,
                reason=REASON_DIALPLAN_ONLY,
                kind=kind,
            )
            await self._feed.dial_began(unique_id, endpoint, fallback)
        elif name == "DialEnd":
            await self._feed.leg_ended(unique_id, endpoint, str(event.get("DialStatus", "")), action_id)

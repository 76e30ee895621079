"""The routing decision for one call, assembled from the database, Redis and the pure core.

This is the hot path of the free number. Per call it does: one indexed participant look-up
(in a worker thread, the database driver being synchronous), one pipelined Redis round trip
(snapshot version, presence, who alerted this number) and an in-memory decision against an
:class:`~routing.AreaIndex` that is rebuilt only when the snapshot version changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from burgernet import repositories
from burgernet.db import session_scope
from burgernet.live import AsyncLiveState, CallContext, RoutingSnapshot
from burgernet.phone import caller_id_to_e164
from burgernet.postcode import InvalidPostcode, is_pc4, normalise_postcode
from routing import (
    ActiveAction,
    AreaIndex,
    Caller,
    CallerKind,
    Centralist,
    CoveringIndex,
    Decision,
    Roster,
    RoutingPolicy,
    RoutingRequest,
    decide,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoutedCall:
    caller: Caller
    decision: Decision


class RoutingService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        live: AsyncLiveState,
        policy: RoutingPolicy,
        default_region: str,
        alerted_window_seconds: int,
        snapshot_ttl_seconds: int = 300,
        index_factory: Callable[[Iterable[ActiveAction]], CoveringIndex] = AreaIndex,
    ) -> None:
        self._sessions = sessions
        self._engine: Engine = sessions.kw["bind"]
        self._live = live
        self._policy = policy
        self._default_region = default_region
        self._alerted_window = alerted_window_seconds
        self._snapshot_ttl = snapshot_ttl_seconds
        self._index_factory = index_factory
        self._index: tuple[int, CoveringIndex, tuple[Centralist, ...]] | None = None
        self._rebuild_lock = asyncio.Lock()

    async def identify(self, caller_id: str | None) -> Caller:
        """Caller ID → a participant with a location, or an unknown/anonymous caller."""
        number = caller_id_to_e164(caller_id)
        if number is None:
            return Caller(kind=CallerKind.ANONYMOUS)
        return self._caller(number, await asyncio.to_thread(self._participant, number))

    async def caller_for_participant(self, participant_id: int) -> Caller | None:
        """The participant an alert call reached (the callee of an outbound call)."""
        participant = await asyncio.to_thread(self._participant_by_id, participant_id)
        return participant.as_caller() if participant else None

    @staticmethod
    def _caller(number: str, participant: repositories.ParticipantInfo | None) -> Caller:
        if participant is None:
            return Caller(kind=CallerKind.UNKNOWN, number=number)
        return participant.as_caller()

    async def place_by_postcode(self, caller: Caller, keyed: str) -> Caller | None:
        """The caller keyed in a postcode: their location is its PC4 centre; None when unknown."""
        try:
            code = normalise_postcode(keyed)
        except InvalidPostcode:
            return None
        pc4 = code[:4] if not is_pc4(code) else code
        place = await asyncio.to_thread(self._postcode, pc4)
        if place is None:
            return None
        return Caller(
            kind=caller.kind,
            number=caller.number,
            participant_id=caller.participant_id,
            location=place.location,
            postcode=code,
            region_code=place.region_code,
            language=caller.language,
            opted_out=caller.opted_out,
        )

    async def decide(
        self,
        caller: Caller,
        *,
        chosen_action_id: int | None = None,
        postcode_given_up: bool = False,
    ) -> Decision:
        context = await self._live.call_context(caller.number, self._alerted_since())
        return await self._decide(caller, context, chosen_action_id, postcode_given_up)

    async def route(self, caller_id: str | None) -> RoutedCall:
        """Identify the caller, then decide.

        One after the other on purpose: asking the database (a worker thread) and Redis at the
        same time was measured slower here (p50 1.44 ms against 0.97 ms, benchmarks/
        routing_decision.py), the thread hand-off costing more than the overlap saves.
        """
        caller = await self.identify(caller_id)
        return RoutedCall(caller, await self.decide(caller))

    def _alerted_since(self) -> float:
        return time.time() - self._alerted_window

    async def _decide(
        self, caller: Caller, context: CallContext, chosen_action_id: int | None, postcode_given_up: bool
    ) -> Decision:
        index, roster_source = await self._current_index(context.actions_version)
        roster = Roster(roster_source, context.presence)
        request = RoutingRequest(
            caller=caller,
            alerted_by=context.alerted_by,
            chosen_action_id=chosen_action_id,
            postcode_given_up=postcode_given_up,
        )
        return decide(request, index, roster, self._policy, self._default_region)

    # -- snapshot / index ----------------------------------------------------------------------
    async def _current_index(self, version: int) -> tuple[CoveringIndex, tuple[Centralist, ...]]:
        current = self._index
        if current is not None and current[0] == version:
            return current[1], current[2]
        async with self._rebuild_lock:
            current = self._index
            if current is not None and current[0] == version:
                return current[1], current[2]
            snapshot = await self._live.cached_snapshot()
            if snapshot is None or snapshot.version != version:
                snapshot = await asyncio.to_thread(self._load_snapshot, version)
                await self._live.store_snapshot(snapshot, self._snapshot_ttl)
            index = self._index_factory(snapshot.actions)
            self._index = (version, index, snapshot.centralists)
            log.info("routing index rebuilt: version %s, %s active actions", version, len(index.actions))
            return index, snapshot.centralists

    def _load_snapshot(self, version: int) -> RoutingSnapshot:
        with session_scope(self._sessions) as session:
            return RoutingSnapshot(
                version,
                tuple(repositories.active_actions(session)),
                tuple(repositories.centralists(session)),
            )

    def _participant(self, number: str) -> repositories.ParticipantInfo | None:
        # A plain connection, not an ORM session: half the cost on the hot path (read only).
        with self._engine.connect() as connection:
            return repositories.participant_by_phone(connection, number)

    def _participant_by_id(self, participant_id: int) -> repositories.ParticipantInfo | None:
        with session_scope(self._sessions) as session:
            return repositories.participant_by_id(session, participant_id)

    def _postcode(self, pc4: str) -> repositories.PostcodePlace | None:
        with session_scope(self._sessions) as session:
            return repositories.postcode_place(session, pc4)

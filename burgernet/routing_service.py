"""The routing decision for one call, assembled from the database, Redis and the pure core.

This is the hot path of the free number. Per call it does: one indexed participant look-up
(in a worker thread, the database driver being synchronous), one pipelined Redis round trip
(snapshot version, presence, who alerted this number) and an in-memory decision against an
:class:`~routing.AreaIndex` that is rebuilt only when the snapshot version changes.

A stalled (or unreachable) database or Redis costs a caller at most
:data:`STORE_BUDGET_SECONDS` per decision, after which the flow goes on with what it has:

* Redis silent: presence unknown (every on-duty centralist is rung anyway), nobody known to
  have alerted the caller (routed by location), and the index this process last built (the
  last-known-good snapshot; Redis may be the thing that is stalled) or, on a cold start, the
  snapshot from the database;
* database silent: the caller is treated as unknown and routed by who alerted them, else to
  the region pool: not asked for a postcode, whose look-up needs the database too. The
  snapshot comes from Redis's cache or the last-known-good index.

Each read gets its own bound within the budget (:data:`REDIS_READ_SECONDS`,
:data:`DATABASE_READ_SECONDS`), and a store that stalled once is not asked again in the same
decision. Every such step is logged at WARNING with the call's unique id. The budget stays
below the dialplan's AGI deadline (channel_vars.AGI_DEADLINE_SECONDS, 4 s), so a decision
made on stale data still reaches the caller before the deadline sends them to the failure path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis.exceptions import RedisError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from burgernet import repositories
from burgernet.action_codes import active_action_for_code
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
    LinearScanIndex,
    Roster,
    RoutingPolicy,
    RoutingRequest,
    action_for_code,
    decide,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# The most the stores may cost one decision (the issue: "at most 3 s"), with room left for the
# decision itself and the AGI round trips that hand it to the dialplan.
STORE_BUDGET_SECONDS = 2.5
REDIS_READ_SECONDS = 1.0  # one pipelined round trip; normally ~1 ms
DATABASE_READ_SECONDS = 1.5  # one indexed look-up or the snapshot load; normally a few ms
REDIS = "Redis"
DATABASE = "the database"
# What a store that does not answer raises, besides the bound running out.
_STORE_ERRORS: dict[str, tuple[type[BaseException], ...]] = {
    REDIS: (RedisError, OSError),
    DATABASE: (SQLAlchemyError, OSError),
}


class RoutingStoresUnavailable(RuntimeError):
    """Neither Redis nor the database gave a snapshot, and this process has none yet: the
    flow fails and the caller goes to the failure path (the fallback pool)."""


@dataclass
class _Budget:
    """The time the stores may still take for one decision, and which of them stalled."""

    call_id: str
    deadline: float
    stalled: set[str] = field(default_factory=set)

    @classmethod
    def start(cls, call_id: str | None) -> _Budget:
        return cls(call_id or "-", time.monotonic() + STORE_BUDGET_SECONDS)

    @classmethod
    def resume(cls, identified: IdentifiedCaller) -> _Budget:
        """What the identification left of the budget, counted from now (the caller heard a
        prompt in between, which is not the stores' time), with the stores that stalled."""
        budget = cls(identified.call_id or "-", time.monotonic() + identified.store_seconds_left)
        if identified.database_down:
            budget.stalled.add(DATABASE)
        return budget

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


class _StoreStalled(Exception):
    pass


class PostcodeLookupUnavailable(RuntimeError):
    """The database did not answer a postcode look-up: asking the caller again is in vain."""


@dataclass(frozen=True)
class RoutedCall:
    caller: Caller
    decision: Decision


@dataclass(frozen=True)
class IdentifiedCaller:
    """The first half of :meth:`RoutingService.route`: who calls, before the welcome prompt."""

    caller: Caller
    call_id: str | None
    database_down: bool  # the participant look-up stalled: do not ask the database again
    store_seconds_left: float  # what the decision may still spend on stalled stores


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

    async def identify(
        self, caller_id: str | None, *, call_id: str | None = None, budget: _Budget | None = None
    ) -> Caller:
        """Caller ID → a participant with a location, or an unknown/anonymous caller.

        The database silent: an unknown caller (asked for a postcode, or routed by who alerted them).
        """
        number = caller_id_to_e164(caller_id)
        if number is None:
            return Caller(kind=CallerKind.ANONYMOUS)
        budget = budget or _Budget.start(call_id)
        try:
            participant = await self._read(
                budget,
                DATABASE,
                "the caller's participant record",
                asyncio.to_thread(self._participant, number),
            )
        except _StoreStalled:
            participant = None
        return self._caller(number, participant)

    async def caller_for_participant(
        self, participant_id: int, *, call_id: str | None = None
    ) -> Caller | None:
        """The participant an alert call reached (the callee of an outbound call); None when the
        database does not answer in time (then routed by the action the call is about)."""
        try:
            participant = await self._read(
                _Budget.start(call_id),
                DATABASE,
                "the participant record",
                asyncio.to_thread(self._participant_by_id, participant_id),
            )
        except _StoreStalled:
            return None
        return participant.as_caller() if participant else None

    @staticmethod
    def _caller(number: str, participant: repositories.ParticipantInfo | None) -> Caller:
        if participant is None:
            return Caller(kind=CallerKind.UNKNOWN, number=number)
        return participant.as_caller()

    async def place_by_postcode(
        self, caller: Caller, keyed: str, *, call_id: str | None = None
    ) -> Caller | None:
        """The caller keyed in a postcode: their location is its PC4 centre; None when unknown.

        Raises :class:`PostcodeLookupUnavailable` when the database does not answer in time:
        the flow then stops asking and the region pool takes the call.
        """
        try:
            code = normalise_postcode(keyed)
        except InvalidPostcode:
            return None
        pc4 = code[:4] if not is_pc4(code) else code
        try:
            place = await self._read(
                _Budget.start(call_id), DATABASE, "the postcode", asyncio.to_thread(self._postcode, pc4)
            )
        except _StoreStalled:
            raise PostcodeLookupUnavailable(pc4) from None
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
        action_code: str | None = None,
        call_id: str | None = None,
        budget: _Budget | None = None,
    ) -> Decision:
        budget = budget or _Budget.start(call_id)
        try:
            context: CallContext | None = await self._read(
                budget,
                REDIS,
                "presence and who alerted the caller",
                self._live.call_context(caller.number, self._alerted_since()),
            )
        except _StoreStalled:
            context = None  # presence unknown: ring anyway; alerted unknown: route by location
        return await self._decide(caller, context, chosen_action_id, postcode_given_up, action_code, budget)

    async def identify_call(self, caller_id: str | None, *, call_id: str | None = None) -> IdentifiedCaller:
        """Who calls (the language of the welcome), keeping the budget for :meth:`route_identified`."""
        budget = _Budget.start(call_id)
        caller = await self.identify(caller_id, budget=budget)
        return IdentifiedCaller(caller, call_id, DATABASE in budget.stalled, max(0.0, budget.remaining()))

    async def route_identified(
        self, identified: IdentifiedCaller, *, action_code: str | None = None
    ) -> RoutedCall:
        """The decision for a caller :meth:`identify_call` identified, with the code they keyed.

        Together the two cost the stores no more than :meth:`route` does: the same budget.
        """
        budget = _Budget.resume(identified)
        decision = await self.decide(
            identified.caller,
            budget=budget,
            postcode_given_up=identified.database_down,
            action_code=action_code,
        )
        return RoutedCall(identified.caller, decision)

    async def route(
        self, caller_id: str | None, *, call_id: str | None = None, action_code: str | None = None
    ) -> RoutedCall:
        """Identify the caller, then decide; both share one budget for stalled stores.

        One after the other on purpose: asking the database (a worker thread) and Redis at the
        same time was measured slower here (p50 1.44 ms against 0.97 ms, benchmarks/
        routing_decision.py), the thread hand-off costing more than the overlap saves.
        """
        budget = _Budget.start(call_id)
        caller = await self.identify(caller_id, budget=budget)
        # The database did not answer: a keyed postcode could not be looked up either, so the
        # caller is not asked for one (they would key it in vain, then wait for the retries).
        # Who alerted them still routes them; otherwise the region pool takes the call.
        database_down = DATABASE in budget.stalled
        decision = await self.decide(
            caller, budget=budget, postcode_given_up=database_down, action_code=action_code
        )
        return RoutedCall(caller, decision)

    def _alerted_since(self) -> float:
        return time.time() - self._alerted_window

    async def _decide(
        self,
        caller: Caller,
        context: CallContext | None,
        chosen_action_id: int | None,
        postcode_given_up: bool,
        action_code: str | None,
        budget: _Budget,
    ) -> Decision:
        if context is None:
            index, roster_source = await self._fallback_index(budget)
            context = CallContext(actions_version=-1, presence={}, alerted_by=())
            if action_code is not None:
                index = await self._with_coded_action(index, action_code, budget)
        else:
            index, roster_source = await self._current_index(context.actions_version, budget)
        roster = Roster(roster_source, context.presence)
        request = RoutingRequest(
            caller=caller,
            alerted_by=context.alerted_by,
            chosen_action_id=chosen_action_id,
            postcode_given_up=postcode_given_up,
            action_code=action_code,
        )
        return decide(request, index, roster, self._policy, self._default_region)

    async def _with_coded_action(self, index: CoveringIndex, code: str, budget: _Budget) -> CoveringIndex:
        """Redis did not say which snapshot is current, so the index may predate the action the
        caller keyed the code of (started during the outage): the database says, within the budget.
        """
        if action_for_code(index.actions.values(), code) is not None:
            return index
        try:
            found = await self._read(
                budget, DATABASE, "the action code", asyncio.to_thread(self._action_for_code, code)
            )
        except _StoreStalled:
            return index
        if found is None:
            return index
        log.warning(
            "call %s: action code %s found in the database (action %s), not in the last-known-good snapshot",
            budget.call_id,
            code,
            found.action_id,
        )
        return LinearScanIndex([*index.actions.values(), found])

    def action_title(self, action_id: int | None) -> str:
        """The title of an action in the routing index (what the decision was made from), or ""."""
        current = self._index
        if action_id is None or current is None:
            return ""
        action = current[1].actions.get(action_id)
        return action.title if action is not None else ""

    # -- stalled stores ------------------------------------------------------------------------
    async def _read(self, budget: _Budget, store: str, what: str, work: Coroutine[Any, Any, T]) -> T:
        """``work`` within its store's bound and what is left of the budget.

        Raises :class:`_StoreStalled` (logged with the call's id) when the store stalled earlier
        in this decision, takes too long or fails. The worker thread of a database read that
        timed out finishes on its own; nobody waits for it.
        """
        bound = min(REDIS_READ_SECONDS if store == REDIS else DATABASE_READ_SECONDS, budget.remaining())
        if store in budget.stalled or bound <= 0:
            work.close()
            raise _StoreStalled(store)
        try:
            return await asyncio.wait_for(work, bound)
        except TimeoutError:
            budget.stalled.add(store)
            log.warning(
                "call %s: %s gave no answer within %.1f s reading %s; routing with what we have",
                budget.call_id,
                store,
                bound,
                what,
            )
        except _STORE_ERRORS[store] as exc:
            budget.stalled.add(store)
            log.warning(
                "call %s: %s failed reading %s (%s); routing with what we have",
                budget.call_id,
                store,
                what,
                exc,
            )
        raise _StoreStalled(store)

    async def _fallback_index(self, budget: _Budget) -> tuple[CoveringIndex, tuple[Centralist, ...]]:
        """Redis did not say which snapshot is current: the last-known-good one, or the database's."""
        current = self._index
        if current is not None:
            log.warning(
                "call %s: routing on the last-known-good snapshot (version %s)", budget.call_id, current[0]
            )
            return current[1], current[2]
        try:
            snapshot = await self._read(
                budget, DATABASE, "the routing snapshot", asyncio.to_thread(self._load_snapshot, -1)
            )
        except _StoreStalled:
            raise RoutingStoresUnavailable(f"call {budget.call_id}: no routing snapshot to be had") from None
        # Kept as version -1: the next call that reaches Redis rebuilds with the real version.
        index = self._index_factory(snapshot.actions)
        self._index = (-1, index, snapshot.centralists)
        return index, snapshot.centralists

    # -- snapshot / index ----------------------------------------------------------------------
    async def _current_index(
        self, version: int, budget: _Budget
    ) -> tuple[CoveringIndex, tuple[Centralist, ...]]:
        current = self._index
        if current is not None and current[0] == version:
            return current[1], current[2]
        try:
            await asyncio.wait_for(self._rebuild_lock.acquire(), max(0.0, budget.remaining()))
        except TimeoutError:
            # Another call is rebuilding and its stores are slow: this one uses what there is.
            return await self._fallback_index(budget)
        try:
            current = self._index
            if current is not None and current[0] == version:
                return current[1], current[2]
            try:
                snapshot = await self._read(
                    budget, REDIS, "the cached routing snapshot", self._live.cached_snapshot()
                )
            except _StoreStalled:
                snapshot = None
            if snapshot is None or snapshot.version != version:
                try:
                    snapshot = await self._read(
                        budget,
                        DATABASE,
                        "the routing snapshot",
                        asyncio.to_thread(self._load_snapshot, version),
                    )
                except _StoreStalled:
                    return await self._fallback_index(budget)
                # Shared with the other FastAGI processes; skipped when Redis is slow right now.
                with contextlib.suppress(_StoreStalled):
                    await self._read(
                        budget,
                        REDIS,
                        "storing the routing snapshot",
                        self._live.store_snapshot(snapshot, self._snapshot_ttl),
                    )
            index = self._index_factory(snapshot.actions)
            self._index = (version, index, snapshot.centralists)
            log.info("routing index rebuilt: version %s, %s active actions", version, len(index.actions))
            return index, snapshot.centralists
        finally:
            self._rebuild_lock.release()

    def _load_snapshot(self, version: int) -> RoutingSnapshot:
        with session_scope(self._sessions) as session:
            return RoutingSnapshot(
                version,
                tuple(repositories.active_actions(session)),
                tuple(repositories.centralists(session)),
            )

    def _action_for_code(self, code: str) -> ActiveAction | None:
        with session_scope(self._sessions) as session:
            action = active_action_for_code(session, code)
            return repositories.to_active_action(action) if action is not None else None

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

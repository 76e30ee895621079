"""The centralist's desk: who is calling and about what, on the screen and the phone, before they answer.

Two halves, both core:

* :class:`AsyncDeskFeed` (the FastAGI/AMI process) announces a call to the centralists whose
  phone it rings. The routing decision knows the action, the caller and the first step's
  phones: :meth:`AsyncDeskFeed.route_decided` remembers that in Redis and publishes a
  ``call_ringing`` event for each of those phones at once. Asterisk's ``DialBegin`` for a phone
  that was not announced yet (a later step, the failure path's pool) announces it then
  (:meth:`dial_began`); ``DialEnd`` and ``Hangup`` close the card (:meth:`leg_ended`,
  :meth:`call_ended`). Events go on the panel's one live feed with ``for_endpoint``: only the
  user linked to that centralist gets them (``callback_api/live_events.py``).
* :class:`CallCardService` (the panel) builds the card's details from the database: the action,
  its last sightings, the caller as a participant (postcode and distance from the area, never
  the address), whether and how this action alerted them, their earlier calls about it.

Redis keys (under ``settings.redis.key_prefix``): ``desk:call:<uniqueid>`` the routing facts
(JSON), ``desk:rung:<uniqueid>`` the endpoints announced, ``desk:at:<endpoint>`` the calls on
that phone now (ringing or answered); all expire after ``CALL_TTL_SECONDS``.

:func:`phone_label` makes what the centralist's phone shows as the caller's name. The title
comes from operators; the label goes through AGI MSet and Dial's ``b()`` Gosub arguments, where
``,`` ``^`` ``(`` ``)`` ``|`` quotes or control characters would break the dialplan line.
"""

from __future__ import annotations

import json
import math
import re
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from shapely.geometry import Point, shape
from shapely.ops import nearest_points
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.live import ALERTED_STATUSES, AsyncLiveState, LiveKeys, LiveState
from burgernet.models import (
    Action,
    Broadcast,
    Call,
    Centralist,
    Delivery,
    Participant,
    PostcodeArea,
    Sighting,
)
from burgernet.ports import LiveEventKind, live_event

CALL_TTL_SECONDS = 2 * 3600
RINGING = "ringing"
ANSWERED = "answered"
LABEL_MAX_CHARS = 32
EARLIER_CALLS_SHOWN = 5
SIGHTINGS_SHOWN = 5
# A phone without an action to show (the region pool after a postcode given up).
NO_ACTION_LABEL = "Burgernet"

_UNSAFE = re.compile(r"[^\w .\-/]", flags=re.UNICODE)
_SPACES = re.compile(r"\s+")


def phone_label(action_id: int | None, title: str | None) -> str:
    """``BN12 Vermist meisje``: the action as the centralist's phone shows the caller's name.

    Letters (any script), digits, space and ``. - /`` only, at most ``LABEL_MAX_CHARS``.
    """
    if action_id is None:
        return NO_ACTION_LABEL
    text = unicodedata.normalize("NFC", title or "")
    text = "".join(" " if unicodedata.category(ch).startswith(("C", "Z")) else ch for ch in text)
    text = _SPACES.sub(" ", _UNSAFE.sub("", text).replace("_", " ")).strip()
    label = f"BN{int(action_id)} {text}".strip()
    return label[:LABEL_MAX_CHARS].rstrip()


@dataclass(frozen=True)
class DeskCall:
    """What the routing decision knew about a call, as the desk needs it."""

    call: str  # Asterisk UNIQUEID of the caller's channel
    action_id: int | None
    title: str
    caller_number: str | None  # E.164, None when withheld
    participant_id: int | None
    reason: str
    kind: str  # inbound | transfer
    decided_at: float = field(default_factory=time.time)  # epoch seconds

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, payload: str | bytes) -> DeskCall:
        data = json.loads(payload)
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})


def ringing_event(call: DeskCall, endpoint: str) -> dict[str, object]:
    """The ``call_ringing`` event for one phone: enough to show the card at once."""
    return live_event(
        LiveEventKind.CALL_RINGING,
        call.action_id,
        for_endpoint=endpoint,
        call=call.call,
        title=call.title,
        caller_number=call.caller_number,
        known_participant=call.participant_id is not None,
        reason=call.reason,
        call_kind=call.kind,
        at=time.time(),
    )


class DeskKeys:
    def __init__(self, keys: LiveKeys) -> None:
        self.prefix = keys.prefix

    def call(self, unique_id: str) -> str:
        return f"{self.prefix}desk:call:{unique_id}"

    def rung(self, unique_id: str) -> str:
        return f"{self.prefix}desk:rung:{unique_id}"

    def at(self, endpoint: str) -> str:
        """Hash call id → ringing | answered: the calls on that phone now (a page that reconnects
        reads them again: events sent while it was away are not replayed)."""
        return f"{self.prefix}desk:at:{endpoint}"


class AsyncDeskFeed:
    """Announces calls to the phones they ring (the FastAGI/AMI side); every method is one or two
    Redis round trips and never raises into a call flow's caller (callers spawn it)."""

    def __init__(self, live: AsyncLiveState) -> None:
        self._client = live.client
        self._events = live.keys.events
        self._keys = DeskKeys(live.keys)

    async def route_decided(self, call: DeskCall, endpoints: tuple[str, ...]) -> None:
        """Remember the call and announce it to the first step's phones, which ring next."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.set(self._keys.call(call.call), call.to_json(), ex=CALL_TTL_SECONDS)
            if endpoints:
                pipe.sadd(self._keys.rung(call.call), *endpoints)
                pipe.expire(self._keys.rung(call.call), CALL_TTL_SECONDS)
            for endpoint in endpoints:
                pipe.hset(self._keys.at(endpoint), call.call, RINGING)
                pipe.expire(self._keys.at(endpoint), CALL_TTL_SECONDS)
                pipe.publish(self._events, json.dumps(ringing_event(call, endpoint), default=str))
            await pipe.execute()

    async def remembered(self, unique_id: str) -> DeskCall | None:
        payload = await self._client.get(self._keys.call(unique_id))
        return DeskCall.from_json(payload) if payload else None

    async def dial_began(self, unique_id: str, endpoint: str, fallback: DeskCall) -> bool:
        """Asterisk rings ``endpoint``: announce it unless the routing decision already did.

        ``fallback`` (from the AMI event) stands in when FastAGI decided nothing (the failure
        path). Returns whether an event went out."""
        key = self._keys.rung(unique_id)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.sadd(key, endpoint)
            pipe.expire(key, CALL_TTL_SECONDS)
            pipe.get(self._keys.call(unique_id))
            added, _, payload = await pipe.execute()
        if not added:
            return False
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hset(self._keys.at(endpoint), unique_id, RINGING)
            pipe.expire(self._keys.at(endpoint), CALL_TTL_SECONDS)
            await pipe.execute()
        # Without the routing facts (FastAGI decided nothing, or its announcement is still on its
        # way) the event says what Asterisk knows; the card's details are read when it is shown.
        call = DeskCall.from_json(payload) if payload else fallback
        await self._client.publish(self._events, json.dumps(ringing_event(call, endpoint), default=str))
        return True

    async def leg_ended(self, unique_id: str, endpoint: str, status: str, action_id: int | None) -> None:
        """One phone stopped ringing: answered (the card stays up), or not (it closes)."""
        kind = LiveEventKind.DESK_ANSWERED if status == "ANSWER" else LiveEventKind.DESK_CLOSED
        event = live_event(kind, action_id, for_endpoint=endpoint, call=unique_id, status=status.lower())
        async with self._client.pipeline(transaction=False) as pipe:
            if status == "ANSWER":
                pipe.hset(self._keys.at(endpoint), unique_id, ANSWERED)
            else:
                pipe.hdel(self._keys.at(endpoint), unique_id)
            pipe.publish(self._events, json.dumps(event))
            await pipe.execute()

    async def call_ended(self, unique_id: str, outcome: str | None, action_id: int | None) -> None:
        """The caller's channel hung up: every card of this call closes into the call's record."""
        endpoints = await self._client.smembers(self._keys.rung(unique_id))
        if not endpoints:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for raw in sorted(endpoints):
                endpoint = raw.decode() if isinstance(raw, bytes) else str(raw)
                event = live_event(
                    LiveEventKind.DESK_CLOSED,
                    action_id,
                    for_endpoint=endpoint,
                    call=unique_id,
                    status="ended",
                    outcome=outcome,
                )
                pipe.hdel(self._keys.at(endpoint), unique_id)
                pipe.publish(self._events, json.dumps(event))
            await pipe.execute()


class DeskStore:
    """The panel's read of what :class:`AsyncDeskFeed` remembered (synchronous Redis)."""

    def __init__(self, live: LiveState) -> None:
        self._client = live.client
        self._keys = DeskKeys(live.keys)

    def remembered(self, unique_id: str) -> DeskCall | None:
        payload = self._client.get(self._keys.call(unique_id))
        return DeskCall.from_json(payload) if payload else None

    def rung(self, unique_id: str) -> set[str]:
        members: set[bytes] = self._client.smembers(self._keys.rung(unique_id))  # type: ignore[assignment]
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

    def at(self, endpoint: str) -> list[tuple[DeskCall, str]]:
        """The calls ringing or answered on ``endpoint`` now, with their state, oldest first."""
        raw: dict[bytes, bytes] = self._client.hgetall(self._keys.at(endpoint))  # type: ignore[assignment]
        found = []
        for call_id, state in raw.items():
            call = self.remembered(call_id.decode())
            if call is not None:
                found.append((call, state.decode()))
        return sorted(found, key=lambda item: item[0].decided_at)


# --- the card's details (the panel) -----------------------------------------------------------
@dataclass(frozen=True)
class AlertedBy:
    channel: str
    at: datetime | None
    status: str


@dataclass(frozen=True)
class EarlierCall:
    started_at: datetime
    outcome: str | None
    centralist: str | None


@dataclass(frozen=True)
class CardSighting:
    seen_at: datetime
    lat: float | None  # None: a sighting from the app without a place
    lon: float | None
    direction: str | None
    description: str
    reliability: str


@dataclass(frozen=True)
class CallCard:
    call: str
    action_id: int | None
    title: str
    description: str
    action_status: str | None
    has_photo: bool
    caller_number: str | None
    known_participant: bool
    postcode: str | None
    distance_km: float | None  # from the action's area (0 inside it); None when unknown
    alerted: tuple[AlertedBy, ...]
    earlier_calls: tuple[EarlierCall, ...]
    sightings: tuple[CardSighting, ...]
    reason: str
    kind: str
    decided_at: float
    # The call's record once it is in the call log: its outcome and who answered.
    outcome: str | None = None
    answered_by: str | None = None


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite keeps no offset; stored as UTC
        return value.replace(tzinfo=UTC)
    return value


def _km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine) in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(min(1.0, a)))


def distance_from_area_km(session: Session, action: Action, lon: float, lat: float) -> float | None:
    """How far (lon, lat) lies outside the action's area, in km: 0 inside it, None for a national one."""
    kind = AreaKind(action.area_kind)
    if kind is AreaKind.CIRCLE and action.center_lon is not None and action.center_lat is not None:
        centre = _km(lon, lat, action.center_lon, action.center_lat)
        return max(0.0, centre - (action.radius_m or 0) / 1000)
    if kind is AreaKind.POLYGON and action.area_geojson:
        area = shape(json.loads(action.area_geojson))
        here = Point(lon, lat)
        if area.covers(here):
            return 0.0
        nearest = nearest_points(area, here)[0]
        return _km(lon, lat, nearest.x, nearest.y)
    if kind is AreaKind.POSTCODES and action.postcodes:
        pc4s = sorted({code[:4] for code in action.postcodes.split(",") if code})
        centres = session.execute(
            select(PostcodeArea.lon, PostcodeArea.lat).where(PostcodeArea.pc4.in_(pc4s))
        ).all()
        distances = [_km(lon, lat, c_lon, c_lat) for c_lon, c_lat in centres]
        return min(distances) if distances else None
    return None


class CallCardService:
    """Builds a call card from the routing facts and the database (read-only)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def card(self, call: DeskCall) -> CallCard:
        with session_scope(self._sessions) as session:
            action = session.get(Action, call.action_id) if call.action_id is not None else None
            participant = session.get(Participant, call.participant_id) if call.participant_id else None
            distance = None
            located = participant is not None and participant.lon is not None and participant.lat is not None
            if action is not None and participant is not None and located:
                distance = distance_from_area_km(session, action, participant.lon, participant.lat)
            logged = session.execute(
                select(Call.outcome, Centralist.sip_endpoint)
                .outerjoin(Centralist, Centralist.id == Call.centralist_id)
                .where(Call.unique_id == call.call)
            ).first()
            return CallCard(
                call=call.call,
                action_id=call.action_id,
                title=action.title if action is not None else call.title,
                description=action.description if action is not None else "",
                action_status=action.status if action is not None else None,
                has_photo=bool(action is not None and action.photo_path),
                caller_number=call.caller_number,
                known_participant=participant is not None,
                postcode=participant.postcode if participant is not None else None,
                distance_km=None if distance is None else round(distance, 1),
                alerted=self._alerted(session, call),
                earlier_calls=self._earlier_calls(session, call),
                sightings=self._sightings(session, call.action_id),
                reason=call.reason,
                kind=call.kind,
                decided_at=call.decided_at,
                outcome=logged[0] if logged else None,
                answered_by=logged[1] if logged else None,
            )

    def logged_call(self, unique_id: str) -> DeskCall | None:
        """The routing facts of a call from the call log (after Redis forgot it)."""
        with session_scope(self._sessions) as session:
            row = session.execute(
                select(Call, Action.title)
                .outerjoin(Action, Action.id == Call.action_id)
                .where(Call.unique_id == unique_id)
            ).first()
            if row is None:
                return None
            logged, title = row
            started = _utc(logged.started_at)
            return DeskCall(
                call=logged.unique_id,
                action_id=logged.action_id,
                title=title or "",
                caller_number=logged.caller_number,
                participant_id=logged.participant_id,
                reason=logged.route_reason or "",
                kind=logged.kind,
                decided_at=started.timestamp() if started else 0.0,
            )

    @staticmethod
    def _alerted(session: Session, call: DeskCall) -> tuple[AlertedBy, ...]:
        if call.participant_id is None or call.action_id is None:
            return ()
        rows = session.execute(
            select(Delivery.channel, Delivery.finished_at, Delivery.updated_at, Delivery.status)
            .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
            .where(
                Delivery.participant_id == call.participant_id,
                Broadcast.action_id == call.action_id,
                Delivery.status.in_(ALERTED_STATUSES),
            )
            .order_by(Delivery.updated_at.desc())
            .limit(10)
        ).all()
        return tuple(
            AlertedBy(channel, _utc(finished or updated), status)
            for channel, finished, updated, status in rows
        )

    @staticmethod
    def _earlier_calls(session: Session, call: DeskCall) -> tuple[EarlierCall, ...]:
        if not call.caller_number or call.action_id is None:
            return ()
        rows = session.execute(
            select(Call.started_at, Call.outcome, Centralist.sip_endpoint)
            .outerjoin(Centralist, Centralist.id == Call.centralist_id)
            .where(
                Call.caller_number == call.caller_number,
                Call.action_id == call.action_id,
                Call.unique_id != call.call,
            )
            .order_by(Call.started_at.desc())
            .limit(EARLIER_CALLS_SHOWN)
        ).all()
        return tuple(
            EarlierCall(_utc(started) or started, outcome, endpoint) for started, outcome, endpoint in rows
        )

    @staticmethod
    def _sightings(session: Session, action_id: int | None) -> tuple[CardSighting, ...]:
        if action_id is None:
            return ()
        rows = session.scalars(
            select(Sighting)
            .where(Sighting.action_id == action_id)
            .order_by(Sighting.seen_at.desc())
            .limit(SIGHTINGS_SHOWN)
        ).all()
        return tuple(
            CardSighting(
                _utc(row.seen_at) or row.seen_at,
                row.lat,
                row.lon,
                row.direction,
                row.description,
                row.reliability,
            )
            for row in rows
        )


def card_as_dict(card: CallCard) -> dict[str, Any]:
    """JSON-ready (times as ISO 8601 with their offset)."""

    def convert(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        return value

    result: dict[str, Any] = convert(asdict(card))
    return result

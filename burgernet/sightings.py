"""Sightings: where and when someone saw what an action is looking for.

A centralist records a sighting during or after a call (the call it came from is linked when
known). It appears on the action's map and timeline for everyone working the action: the
service publishes ``sighting_added`` after the commit (:class:`burgernet.ports.LiveEventPort`).
A photo a participant sent with an inquiry statement can be attached: the statement's inquiry
must be about the same action (the photo file stays the statement's; retention of the statement
takes it away from the sighting too).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from burgernet.db import session_scope
from burgernet.domain import ActionStatus
from burgernet.errors import ConflictError, DomainError, NotFoundError
from burgernet.models import (
    NL_BOUNDS,
    SIGHTING_RELIABILITIES,
    Action,
    Call,
    Inquiry,
    Sighting,
    Statement,
)
from burgernet.ports import LiveEventKind, LiveEventPort, live_event
from burgernet.repositories import record_audit

log = logging.getLogger(__name__)

DIRECTIONS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
MAX_DESCRIPTION = 2000
# A clock a little ahead on the centralist's PC is no reason to refuse a sighting.
FUTURE_TOLERANCE = timedelta(minutes=5)


class SightingInvalid(DomainError):
    code: ClassVar[str] = "sighting.invalid"


class SightingActionNotFound(NotFoundError):
    code: ClassVar[str] = "sighting.action_not_found"


class SightingActionNotStarted(ConflictError):
    code: ClassVar[str] = "sighting.action_not_started"


@dataclass(frozen=True)
class SightingView:
    id: int
    action_id: int
    seen_at: datetime
    lat: float
    lon: float
    direction: str | None
    description: str
    reliability: str
    call_id: int | None
    statement_id: int | None
    has_photo: bool
    created_by: str
    created_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "action_id": self.action_id,
            "seen_at": self.seen_at.isoformat(),
            "lat": self.lat,
            "lon": self.lon,
            "direction": self.direction,
            "description": self.description,
            "reliability": self.reliability,
            "call_id": self.call_id,
            "statement_id": self.statement_id,
            "has_photo": self.has_photo,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class NewSighting:
    """What the centralist entered; ``seen_at`` aware (any zone), coordinates WGS84."""

    seen_at: datetime
    lat: float
    lon: float
    reliability: str
    description: str = ""
    direction: str | None = None
    call_id: int | None = None
    statement_id: int | None = None


@dataclass(frozen=True)
class PhotoChoice:
    """A statement of the action's inquiries that came with a photo (the form offers these)."""

    statement_id: int
    inquiry_title: str
    created_at: datetime


def _aware(moment: datetime) -> datetime:
    # SQLite gives naive datetimes back; they were stored as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _view(row: Sighting, has_photo: bool) -> SightingView:
    return SightingView(
        id=row.id,
        action_id=row.action_id,
        seen_at=_aware(row.seen_at),
        lat=row.lat,
        lon=row.lon,
        direction=row.direction,
        description=row.description,
        reliability=row.reliability,
        call_id=row.call_id,
        statement_id=row.statement_id,
        has_photo=has_photo,
        created_by=row.created_by,
        created_at=_aware(row.created_at),
    )


def validate(new: NewSighting, now: datetime) -> NewSighting:
    """The sighting cleaned up, or :class:`SightingInvalid` saying what is wrong."""
    if new.seen_at.tzinfo is None:
        raise SightingInvalid("the time of the sighting needs a time zone")
    if new.seen_at > now + FUTURE_TOLERANCE:
        raise SightingInvalid("the time of the sighting lies in the future")
    min_lon, min_lat, max_lon, max_lat = NL_BOUNDS
    if not (min_lat <= new.lat <= max_lat and min_lon <= new.lon <= max_lon):
        raise SightingInvalid(f"the place ({new.lat:.5f}, {new.lon:.5f}) lies outside the Netherlands")
    if new.reliability not in SIGHTING_RELIABILITIES:
        raise SightingInvalid(f"reliability must be one of {', '.join(SIGHTING_RELIABILITIES)}")
    direction = (new.direction or "").strip().upper() or None
    if direction is not None and direction not in DIRECTIONS:
        raise SightingInvalid(f"direction must be one of {', '.join(DIRECTIONS)}, or empty")
    description = new.description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise SightingInvalid(f"the description is longer than {MAX_DESCRIPTION} characters")
    return NewSighting(
        seen_at=new.seen_at.astimezone(UTC),
        lat=round(new.lat, 6),
        lon=round(new.lon, 6),
        reliability=new.reliability,
        description=description,
        direction=direction,
        call_id=new.call_id,
        statement_id=new.statement_id,
    )


class SightingService:
    def __init__(self, sessions: sessionmaker[Session], live: LiveEventPort) -> None:
        self._sessions = sessions
        self._live = live

    def record(self, action_id: int, new: NewSighting, *, actor: str, source: str) -> SightingView:
        now = datetime.now(UTC)
        clean = validate(new, now)
        with session_scope(self._sessions) as session:
            action = session.get(Action, action_id)
            if action is None:
                raise SightingActionNotFound(f"no action {action_id}")
            if action.status == ActionStatus.DRAFT.value:
                raise SightingActionNotStarted(f"action {action_id} has not started: no sightings yet")
            if clean.call_id is not None:
                call_action = session.scalar(select(Call.action_id).where(Call.id == clean.call_id))
                if call_action is None and session.get(Call, clean.call_id) is None:
                    raise SightingInvalid(f"no call {clean.call_id}")
                if call_action is not None and call_action != action_id:
                    raise SightingInvalid(f"call {clean.call_id} is about another action")
            has_photo = False
            if clean.statement_id is not None:
                has_photo = self._check_photo(session, action_id, clean.statement_id)
            row = Sighting(
                action_id=action_id,
                seen_at=clean.seen_at,
                lat=clean.lat,
                lon=clean.lon,
                direction=clean.direction,
                description=clean.description,
                reliability=clean.reliability,
                call_id=clean.call_id,
                statement_id=clean.statement_id,
                created_by=actor,
                created_at=now,
            )
            session.add(row)
            session.flush()
            record_audit(
                session,
                actor=actor,
                verb="record",
                entity="sighting",
                entity_id=row.id,
                detail={
                    "action_id": action_id,
                    "seen_at": clean.seen_at.isoformat(),
                    "reliability": clean.reliability,
                    "call_id": clean.call_id,
                    "statement_id": clean.statement_id,
                },
                source=source,
            )
            view = _view(row, has_photo)
        try:
            self._live.publish(live_event(LiveEventKind.SIGHTING_ADDED, action_id, sighting_id=view.id))
        except Exception:  # the sighting is stored; pages catch up on their next event or reconnect
            log.exception("sighting %s: live event not published", view.id)
        return view

    @staticmethod
    def _check_photo(session: Session, action_id: int, statement_id: int) -> bool:
        row = session.execute(
            select(Statement.photo_path, Inquiry.action_id)
            .join(Inquiry, Inquiry.id == Statement.inquiry_id)
            .where(Statement.id == statement_id)
        ).first()
        if row is None:
            raise SightingInvalid(f"no statement {statement_id}")
        photo_path, inquiry_action = row
        if inquiry_action != action_id:
            raise SightingInvalid(f"statement {statement_id} belongs to an inquiry of another action")
        if not photo_path:
            raise SightingInvalid(f"statement {statement_id} came without a photo")
        return True

    def for_action(self, action_id: int) -> list[SightingView]:
        """The action's sightings, most recently seen first."""
        with session_scope(self._sessions) as session:
            rows = session.execute(
                select(Sighting, Statement.photo_path)
                .outerjoin(Statement, Statement.id == Sighting.statement_id)
                .where(Sighting.action_id == action_id)
                .order_by(Sighting.seen_at.desc(), Sighting.id.desc())
            ).all()
            return [_view(row, bool(photo)) for row, photo in rows]

    def get(self, sighting_id: int) -> SightingView:
        with session_scope(self._sessions) as session:
            found = session.execute(
                select(Sighting, Statement.photo_path)
                .outerjoin(Statement, Statement.id == Sighting.statement_id)
                .where(Sighting.id == sighting_id)
            ).first()
            if found is None:
                raise NotFoundError(f"no sighting {sighting_id}")
            return _view(found[0], bool(found[1]))

    def photo_choices(self, action_id: int) -> list[PhotoChoice]:
        """Statements with a photo from the action's inquiries, newest first."""
        with session_scope(self._sessions) as session:
            rows = session.execute(
                select(Statement.id, Inquiry.title, Statement.created_at)
                .join(Inquiry, Inquiry.id == Statement.inquiry_id)
                .where(Inquiry.action_id == action_id, Statement.photo_path.is_not(None))
                .order_by(Statement.created_at.desc())
                .limit(50)
            ).all()
        return [PhotoChoice(sid, title, _aware(created)) for sid, title, created in rows]

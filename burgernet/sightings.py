"""Sightings: where and when someone saw what an action is looking for.

A centralist records a sighting during or after a call (the call it came from is linked when
known). It appears on the action's map and timeline for everyone working the action: the
service publishes ``sighting_added`` after the commit (:class:`burgernet.ports.LiveEventPort`).
A photo a participant sent with an inquiry statement can be attached: the statement's inquiry
must be about the same action (the photo file stays the statement's; retention of the statement
takes it away from the sighting too).

A participant can also send a sighting from the app (:meth:`SightingService.record_from_app`):
only for an active action, with a description, a place only when the participant chose to share
it, an optional photo (already checked and cleaned of metadata by the adapter; stored under
``photos/sightings/<action id>/``) and the device's push subscription as a reply channel. It is
recorded as ``possible`` by ``app`` and appears on the action like any other sighting.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
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
from burgernet.push_subscriptions import find_by_endpoint
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


class SightingActionClosed(ConflictError):
    """The action has ended: the app no longer takes sightings for it."""

    code: ClassVar[str] = "sighting.action_closed"


# What the app records every sighting as: a participant's report, not yet weighed by anyone.
APP_RELIABILITY = "possible"
APP_ACTOR = "app"
# Where the app's photos go, below the photos folder the adapter hands over.
APP_PHOTO_FOLDER = "sightings"


@dataclass(frozen=True)
class SightingView:
    id: int
    action_id: int
    seen_at: datetime
    lat: float | None  # None: sent from the app without a place
    lon: float | None
    direction: str | None
    description: str
    reliability: str
    call_id: int | None
    statement_id: int | None
    has_photo: bool
    created_by: str
    created_at: datetime
    source: str = "panel"  # panel | app
    # An app sighting whose device can still be asked a question (its push subscription exists).
    has_reply_channel: bool = False

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
            "source": self.source,
            "has_reply_channel": self.has_reply_channel,
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
class AppPhoto:
    """A photo the adapter checked and re-encoded without metadata (callback_api.photos)."""

    data: bytes
    extension: str  # jpg | png | webp


@dataclass(frozen=True)
class AppSighting:
    """What a participant sent from the app; ``seen_at`` aware; a place only when shared."""

    description: str
    seen_at: datetime
    lat: float | None = None
    lon: float | None = None
    photo: AppPhoto | None = None
    # The device's push subscription endpoint: the reply channel (unknown ones are ignored).
    endpoint: str | None = None


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
        source=row.source,
        has_reply_channel=row.push_subscription_id is not None,
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
        has_photo=has_photo or row.photo_path is not None,
        created_by=row.created_by,
        created_at=_aware(row.created_at),
    )


def _in_nl(lat: float, lon: float) -> bool:
    min_lon, min_lat, max_lon, max_lat = NL_BOUNDS
    return min_lat <= lat <= max_lat and min_lon <= lon <= max_lon


def validate_app(new: AppSighting, now: datetime) -> AppSighting:
    """A sighting from the app cleaned up, or :class:`SightingInvalid` saying what is wrong."""
    description = new.description.strip()
    if not description:
        raise SightingInvalid("describe what you saw")
    if len(description) > MAX_DESCRIPTION:
        raise SightingInvalid(f"the description is longer than {MAX_DESCRIPTION} characters")
    if new.seen_at.tzinfo is None:
        raise SightingInvalid("the time of the sighting needs a time zone")
    if new.seen_at > now + FUTURE_TOLERANCE:
        raise SightingInvalid("the time of the sighting lies in the future")
    if (new.lat is None) != (new.lon is None):
        raise SightingInvalid("a place needs both latitude and longitude, or neither")
    if new.lat is not None and new.lon is not None and not _in_nl(new.lat, new.lon):
        raise SightingInvalid(f"the place ({new.lat:.5f}, {new.lon:.5f}) lies outside the Netherlands")
    endpoint = (new.endpoint or "").strip() or None
    return AppSighting(
        description=description,
        seen_at=new.seen_at.astimezone(UTC),
        # About 10 cm: what a phone's position is worth, and no more.
        lat=round(new.lat, 6) if new.lat is not None else None,
        lon=round(new.lon, 6) if new.lon is not None else None,
        photo=new.photo,
        endpoint=endpoint,
    )


def validate(new: NewSighting, now: datetime) -> NewSighting:
    """The sighting cleaned up, or :class:`SightingInvalid` saying what is wrong."""
    if new.seen_at.tzinfo is None:
        raise SightingInvalid("the time of the sighting needs a time zone")
    if new.seen_at > now + FUTURE_TOLERANCE:
        raise SightingInvalid("the time of the sighting lies in the future")
    if not _in_nl(new.lat, new.lon):
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

    def record_from_app(self, action_id: int, new: AppSighting, *, photos_dir: Path) -> SightingView:
        """Record a participant's sighting from the app; only while the action is active.

        The photo is written inside the transaction and removed again when the row is not
        stored, so no file is left without its sighting. The audit names no device and no
        address: the app is anonymous, and the sighting's own row is all the server keeps.
        """
        now = datetime.now(UTC)
        clean = validate_app(new, now)
        stored_photo: Path | None = None
        try:
            with session_scope(self._sessions) as session:
                action = session.get(Action, action_id)
                # A draft is nobody's business outside the control room: the same answer as none.
                if action is None or action.status == ActionStatus.DRAFT.value:
                    raise SightingActionNotFound(f"no active action {action_id}")
                if action.status != ActionStatus.ACTIVE.value:
                    raise SightingActionClosed(f"action {action_id} has ended: call the free number instead")
                subscription = find_by_endpoint(session, clean.endpoint) if clean.endpoint else None
                if clean.photo is not None:
                    folder = photos_dir / APP_PHOTO_FOLDER / str(int(action_id))
                    folder.mkdir(parents=True, exist_ok=True)
                    stored_photo = folder / f"{secrets.token_hex(8)}.{clean.photo.extension}"
                    temporary = stored_photo.with_suffix(".part")
                    temporary.write_bytes(clean.photo.data)
                    temporary.replace(stored_photo)
                row = Sighting(
                    action_id=action_id,
                    seen_at=clean.seen_at,
                    lat=clean.lat,
                    lon=clean.lon,
                    direction=None,
                    description=clean.description,
                    reliability=APP_RELIABILITY,
                    created_by=APP_ACTOR,
                    created_at=now,
                    source="app",
                    photo_path=str(stored_photo) if stored_photo else None,
                    push_subscription_id=subscription.id if subscription is not None else None,
                )
                session.add(row)
                session.flush()
                record_audit(
                    session,
                    actor=APP_ACTOR,
                    verb="record",
                    entity="sighting",
                    entity_id=row.id,
                    detail={
                        "action_id": action_id,
                        "source": "app",
                        "has_place": clean.lat is not None,
                        "photo_bytes": len(clean.photo.data) if clean.photo else 0,
                        "reply_channel": subscription is not None,
                    },
                    source="app",
                )
                view = _view(row, False)
        except BaseException:
            if stored_photo is not None:
                stored_photo.unlink(missing_ok=True)
            raise
        try:
            self._live.publish(live_event(LiveEventKind.SIGHTING_ADDED, action_id, sighting_id=view.id))
        except Exception:  # the sighting is stored; pages catch up on their next event or reconnect
            log.exception("sighting %s: live event not published", view.id)
        return view

    def photo_path(self, sighting_id: int) -> str | None:
        """The stored photo of a sighting: its own (from the app) or its statement's."""
        with session_scope(self._sessions) as session:
            found = session.execute(
                select(Sighting.photo_path, Statement.photo_path)
                .outerjoin(Statement, Statement.id == Sighting.statement_id)
                .where(Sighting.id == sighting_id)
            ).first()
        if found is None:
            raise NotFoundError(f"no sighting {sighting_id}")
        own, statement = found
        return own or statement

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

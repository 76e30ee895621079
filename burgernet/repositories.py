"""SQLAlchemy adapter: queries that hand plain objects (routing dataclasses, views) to callers.

Nothing outside this module and the services needs to hold an ORM object after its session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, selectinload

from burgernet.areas import stored_area
from burgernet.domain import ACTION_PRIORITY, ActionStatus, ActionType
from burgernet.models import (
    Action,
    ActionCentralist,
    AuditEvent,
    Centralist,
    Participant,
    PostcodeArea,
    Region,
)
from routing import model as rm


@dataclass(frozen=True, slots=True)
class ParticipantInfo:
    id: int
    phone_e164: str
    postcode: str
    lat: float
    lon: float
    region_code: str | None
    language: str
    opted_out: bool

    def as_caller(self) -> rm.Caller:
        return rm.Caller(
            kind=rm.CallerKind.KNOWN,
            number=self.phone_e164,
            participant_id=self.id,
            location=rm.Location(self.lon, self.lat),
            postcode=self.postcode,
            region_code=self.region_code,
            language=self.language,
            opted_out=self.opted_out,
        )


@dataclass(frozen=True, slots=True)
class PostcodePlace:
    pc4: str
    location: rm.Location
    region_code: str


def participant_by_phone(session: Session | Connection, phone_e164: str) -> ParticipantInfo | None:
    row = session.execute(_participant_query().where(Participant.phone_e164 == phone_e164)).first()
    return ParticipantInfo(*row) if row else None


def participant_by_id(session: Session, participant_id: int) -> ParticipantInfo | None:
    row = session.execute(_participant_query().where(Participant.id == participant_id)).first()
    return ParticipantInfo(*row) if row else None


def _participant_query() -> Any:  # a Select of the ParticipantInfo columns, in order
    return select(
        Participant.id,
        Participant.phone_e164,
        Participant.postcode,
        Participant.lat,
        Participant.lon,
        Region.code,
        Participant.language,
        Participant.opted_out,
    ).outerjoin(Region, Region.id == Participant.region_id)


def postcode_place(session: Session, pc4: str) -> PostcodePlace | None:
    row = session.execute(
        select(PostcodeArea.pc4, PostcodeArea.lon, PostcodeArea.lat, Region.code)
        .join(Region, Region.id == PostcodeArea.region_id)
        .where(PostcodeArea.pc4 == pc4)
    ).first()
    return PostcodePlace(row[0], rm.Location(row[1], row[2]), row[3]) if row else None


def action_area(action: Action) -> rm.Area:
    return stored_area(action)


def to_active_action(action: Action) -> rm.ActiveAction:
    started = action.started_at or action.created_at
    return rm.ActiveAction(
        action_id=action.id,
        title=action.title,
        action_type=action.action_type,
        priority=ACTION_PRIORITY[ActionType(action.action_type)],
        region_code=action.region.code,
        area=action_area(action),
        team=tuple(member.centralist.sip_endpoint for member in action.team),
        started_seq=int(started.timestamp()) if started else 0,
        code=action.action_code,  # keyed on the free number (burgernet.action_codes)
    )


def active_actions(session: Session) -> list[rm.ActiveAction]:
    rows = session.scalars(
        select(Action)
        .where(Action.status == ActionStatus.ACTIVE.value)
        .options(
            selectinload(Action.region), selectinload(Action.team).selectinload(ActionCentralist.centralist)
        )
        .order_by(Action.id)
    )
    return [to_active_action(action) for action in rows]


def centralists(session: Session) -> list[rm.Centralist]:
    rows = session.execute(
        select(Centralist.sip_endpoint, Region.code, Centralist.on_duty)
        .join(Region, Region.id == Centralist.region_id)
        .order_by(Centralist.sip_endpoint)
    )
    return [rm.Centralist(endpoint, code, bool(on_duty)) for endpoint, code, on_duty in rows]


def record_audit(
    session: Session,
    *,
    actor: str,
    verb: str,
    entity: str,
    entity_id: object | None,
    detail: dict[str, object] | None = None,
    source: str = "cli",
) -> None:
    """Append who changed what; in the same transaction as the change itself."""
    session.add(
        AuditEvent(
            at=datetime.now(UTC),
            actor=actor,
            verb=verb,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            detail=json.dumps(detail, default=str, sort_keys=True) if detail else None,
            source=source,
        )
    )

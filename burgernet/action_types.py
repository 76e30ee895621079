"""What a new action of each type starts with: its template.

A missing child is searched for close by and at once; a stolen vehicle moves, so its circle is
wider. Each type has a default radius, the channels its alert uses, its urgency and text blocks
(a title and a description to complete) that prefill the new-action form. Operators change
them in the panel's Settings (table ``action_type_templates``); without a row the defaults
below apply.

The words participants receive stay in :mod:`burgernet.message_templates`; the text blocks here
are the operator's starting point for the action's own title and description.

A new action takes the template's channels and urgency (the operator may change them in the
form): its broadcasts go only over those channels, to the participants who chose them, at the
urgency's priority in the queue (``broadcasting.store.priority_for``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from burgernet.actions import ACTION_AREA
from burgernet.db import session_scope
from burgernet.domain import ActionType, Channel
from burgernet.errors import DomainError
from burgernet.models import URGENCIES, ActionTypeTemplate
from burgernet.repositories import record_audit

__all__ = [
    "DEFAULTS",
    "MAX_BLOCK",
    "URGENCIES",
    "ActionTypeTemplateError",
    "ActionTypeTemplates",
    "TypeTemplate",
    "check_template",
    "template_for",
]
MAX_BLOCK = 2000


class ActionTypeTemplateError(DomainError):
    """The template cannot be saved as given; the message says what to change."""

    code: ClassVar[str] = "template.action_type_invalid"


@dataclass(frozen=True)
class TypeTemplate:
    action_type: str
    radius_m: int
    channels: tuple[str, ...]
    urgency: str
    title_block: str
    description_block: str
    customised: bool = False
    # Starting one needs a second person (burgernet.approvals); an AMBER Alert always does.
    needs_approval: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "action_type": self.action_type,
            "radius_m": self.radius_m,
            "channels": list(self.channels),
            "urgency": self.urgency,
            "title_block": self.title_block,
            "description_block": self.description_block,
            "needs_approval": self.needs_approval,
        }


# Every type alerts on every channel by default, the app's push included: a participant gets
# only the channels they chose (push: the devices whose places the area holds).
_ALL = (Channel.VOICE.value, Channel.SMS.value, Channel.EMAIL.value, Channel.PUSH.value)
DEFAULTS: dict[ActionType, TypeTemplate] = {
    ActionType.MISSING_CHILD: TypeTemplate(
        "missing_child",
        3_000,
        _ALL,
        "urgent",
        "Vermist kind, ... jaar",
        "Vermist: ... (... jaar), lengte ..., draagt .... Laatst gezien om ... uur bij ....",
    ),
    ActionType.MISSING_PERSON: TypeTemplate(
        "missing_person",
        5_000,
        _ALL,
        "urgent",
        "Vermiste persoon, ... jaar",
        "Vermist: ... (... jaar), lengte ..., draagt .... Laatst gezien om ... uur bij ....",
    ),
    ActionType.AMBER_ALERT: TypeTemplate(
        "amber_alert",
        50_000,
        _ALL,
        "amber",
        "AMBER Alert: ...",
        "AMBER Alert. Het kind ... (... jaar) is in levensgevaar. ...",
        needs_approval=True,
    ),
    ActionType.SUSPECT: TypeTemplate(
        "suspect",
        5_000,
        _ALL,
        "information",
        "Verdachte ...",
        "Gezocht: man/vrouw, ongeveer ... jaar, lengte ..., draagt .... Vlucht richting ....",
    ),
    ActionType.VEHICLE: TypeTemplate(
        "vehicle",
        10_000,
        _ALL,
        "information",
        "Gezocht voertuig ...",
        "Gezocht: ... (merk, type, kleur), kenteken .... Laatst gezien om ... uur bij ....",
    ),
    ActionType.INFORMATION: TypeTemplate(
        "information",
        2_000,
        _ALL,
        "information",
        "Getuigen gezocht ...",
        "De politie zoekt getuigen van ... op ... rond ... uur bij ....",
    ),
}


def check_template(template: TypeTemplate) -> TypeTemplate:
    """The template cleaned, or ActionTypeTemplateError naming the field."""
    try:
        ActionType(template.action_type)
    except ValueError:
        raise ActionTypeTemplateError(f"unknown action type {template.action_type!r}") from None
    if not 0 < template.radius_m <= ACTION_AREA.max_radius_m:
        raise ActionTypeTemplateError(f"the radius is 1 m to {int(ACTION_AREA.max_radius_m) // 1000} km")
    channels = tuple(c for c in _ALL if c in template.channels)
    unknown = set(template.channels) - set(_ALL)
    if unknown:
        raise ActionTypeTemplateError(f"unknown channel(s) {', '.join(sorted(unknown))}")
    if not channels:
        raise ActionTypeTemplateError("choose at least one channel")
    if template.urgency not in URGENCIES:
        raise ActionTypeTemplateError(f"urgency is one of {', '.join(URGENCIES)}")
    title, description = (
        template.title_block.strip(),
        template.description_block.replace("\r\n", "\n").strip(),
    )
    if len(title) > 120:
        raise ActionTypeTemplateError(
            "the title block is at most 120 characters (titles are spoken in menus)"
        )
    if len(description) > MAX_BLOCK:
        raise ActionTypeTemplateError(f"the description block is at most {MAX_BLOCK} characters")
    # Four eyes on an AMBER Alert is not a setting: it always needs approval.
    approval = template.needs_approval or template.action_type == ActionType.AMBER_ALERT.value
    return replace(
        template,
        channels=channels,
        title_block=title,
        description_block=description,
        needs_approval=approval,
    )


def _from_row(row: ActionTypeTemplate) -> TypeTemplate:
    return TypeTemplate(
        row.action_type,
        row.radius_m,
        tuple(c for c in row.channels.split(",") if c),
        row.urgency,
        row.title_block,
        row.description_block,
        customised=True,
        needs_approval=bool(row.needs_approval) or row.action_type == ActionType.AMBER_ALERT.value,
    )


def template_for(session: Session, kind: ActionType) -> TypeTemplate:
    """The type's template as stored in Settings, or its default."""
    row = session.get(ActionTypeTemplate, kind.value)
    return _from_row(row) if row is not None else DEFAULTS[kind]


class ActionTypeTemplates:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def all(self) -> list[TypeTemplate]:
        """One per action type, in the order of :class:`ActionType`."""
        with session_scope(self._sessions) as session:
            stored = {row.action_type: _from_row(row) for row in session.scalars(select(ActionTypeTemplate))}
        return [stored.get(kind.value, DEFAULTS[kind]) for kind in ActionType]

    def get(self, action_type: str) -> TypeTemplate:
        try:
            kind = ActionType(action_type)
        except ValueError:
            raise ActionTypeTemplateError(f"unknown action type {action_type!r}") from None
        with session_scope(self._sessions) as session:
            return template_for(session, kind)

    def save(self, template: TypeTemplate, *, actor: str, source: str) -> TypeTemplate:
        checked = check_template(template)
        with session_scope(self._sessions) as session:
            row = session.get(ActionTypeTemplate, checked.action_type)
            if row is None:
                row = ActionTypeTemplate(action_type=checked.action_type)
                session.add(row)
            row.radius_m = checked.radius_m
            row.channels = ",".join(checked.channels)
            row.urgency = checked.urgency
            row.title_block = checked.title_block
            row.description_block = checked.description_block
            row.needs_approval = checked.needs_approval
            row.updated_at = datetime.now(UTC)
            row.updated_by = actor
            record_audit(
                session,
                actor=actor,
                verb="save",
                entity="action_type_template",
                entity_id=checked.action_type,
                detail=checked.as_dict(),
                source=source,
            )
        return replace(checked, customised=True)

    def reset(self, action_type: str, *, actor: str, source: str) -> bool:
        """Back to the default; False when there was nothing stored."""
        with session_scope(self._sessions) as session:
            row = session.get(ActionTypeTemplate, action_type)
            if row is None:
                return False
            session.delete(row)
            record_audit(
                session,
                actor=actor,
                verb="reset",
                entity="action_type_template",
                entity_id=action_type,
                detail={},
                source=source,
            )
        return True

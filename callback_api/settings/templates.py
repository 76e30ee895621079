"""Message templates in the panel: the grid of all keys, edit with preview, reset to default."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from burgernet.db import session_scope
from burgernet.domain import ActionType, Channel, Language
from burgernet.message_templates import (
    KINDS,
    RenderedMessage,
    TemplateError,
    TemplateKey,
    TemplateText,
    customised_keys,
    render_text,
    reset_template,
    save_template,
    stored_template,
)
from burgernet.repositories import record_audit

__all__ = ["TemplateError", "TemplateKey"]

# Example values for the preview: what a real alert would carry.
PREVIEW_FIELDS = {
    "nl": {
        "title": "Vermist meisje Utrecht",
        "description": "Meisje, 8 jaar, blond haar, rode jas en blauwe rugzak. Vermist sinds 15.00 uur.",
        "area": "Utrecht-Oost",
        "region": "Midden-Nederland",
        "outcome": "Het meisje is gevonden",
        "result_message": "Zij is ongedeerd en weer thuis.",
    },
    "en": {
        "title": "Missing girl Utrecht",
        "description": "Girl, 8, blond hair, red coat and blue backpack. Missing since 3 pm.",
        "area": "Utrecht-Oost",
        "region": "Midden-Nederland",
        "outcome": "The girl has been found",
        "result_message": "She is unharmed and back home.",
    },
}


@dataclass(frozen=True)
class TemplateCell:
    key: TemplateKey
    customised: bool


def all_keys() -> list[TemplateKey]:
    return [
        TemplateKey(t.value, kind, c.value, lang.value)
        for t in ActionType
        for kind in KINDS
        for c in Channel
        for lang in Language
    ]


def grid(sessions: sessionmaker[Session]) -> list[TemplateCell]:
    with session_scope(sessions) as session:
        custom = customised_keys(session)
    return [TemplateCell(key, key in custom) for key in all_keys()]


def load(sessions: sessionmaker[Session], key: TemplateKey) -> TemplateText:
    with session_scope(sessions) as session:
        return stored_template(session, key.check())


def preview(key: TemplateKey, subject: str | None, body: str, free_number: str) -> RenderedMessage:
    fields = dict(PREVIEW_FIELDS[key.language], free_number=free_number)
    return render_text(key.check(), subject, body, fields)


def save(
    sessions: sessionmaker[Session],
    key: TemplateKey,
    *,
    subject: str | None,
    body: str,
    actor: str,
    source: str,
) -> None:
    with session_scope(sessions) as session:
        subject, body = save_template(session, key, subject=subject, body=body, actor=actor)
        record_audit(
            session,
            actor=actor,
            verb="edit",
            entity="message_template",
            entity_id=_entity_id(key),
            detail={"subject": subject, "body": body[:500]},
            source=source,
        )


def reset(sessions: sessionmaker[Session], key: TemplateKey, *, actor: str, source: str) -> bool:
    with session_scope(sessions) as session:
        if not reset_template(session, key):
            return False
        record_audit(
            session,
            actor=actor,
            verb="reset",
            entity="message_template",
            entity_id=_entity_id(key),
            source=source,
        )
    return True


def _entity_id(key: TemplateKey) -> str:
    return f"{key.action_type}/{key.kind}/{key.channel}/{key.language}"

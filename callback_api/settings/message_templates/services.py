"""Message templates in the panel: the grid of all keys, edit with preview, reset to default.

An unknown key (action type, kind, channel or language) raises
:class:`burgernet.message_templates.UnknownTemplateKey`: the page does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from burgernet.db import session_scope
from burgernet.message_templates import (
    RenderedMessage,
    TemplateError,
    TemplateKey,
    TemplateText,
    UnknownTemplateKey,
    customised_keys,
    render_text,
    reset_template,
    save_template,
    stored_template,
    template_keys,
)
from burgernet.phone import free_number_display
from burgernet.repositories import record_audit
from burgernet.services import Services
from burgernet.settings import Settings

__all__ = ["TemplateError", "TemplateKey", "UnknownTemplateKey"]

# Example values for the preview: what a real alert would carry.
PREVIEW_FIELDS = {
    "nl": {
        "title": "Vermist meisje Utrecht",
        "description": "Meisje, 8 jaar, blond haar, rode jas en blauwe rugzak. Vermist sinds 15.00 uur.",
        "area": "Utrecht-Oost",
        "region": "Midden-Nederland",
        "outcome": "Het meisje is gevonden",
        "result_message": "Zij is ongedeerd en weer thuis.",
        "action_code": "4821",
        # A neighbourhood inquiry's e-mails.
        "question": "Heeft u vannacht tussen 02:00 en 04:00 iets gezien bij de Oudegracht?",
        "closes": "2026-12-01 18:00",
        "url": "https://burgernet.example/inquiry/voorbeeld-link",
        "message": "Dankzij uw tips is de verdachte aangehouden.",
    },
    "en": {
        "title": "Missing girl Utrecht",
        "description": "Girl, 8, blond hair, red coat and blue backpack. Missing since 3 pm.",
        "area": "Utrecht-Oost",
        "region": "Midden-Nederland",
        "outcome": "The girl has been found",
        "result_message": "She is unharmed and back home.",
        "action_code": "4821",
        "question": "Did you see anything near the Oudegracht last night between 2 and 4 am?",
        "closes": "2026-12-01 18:00",
        "url": "https://burgernet.example/inquiry/example-link",
        "message": "Thanks to your tips the suspect has been arrested.",
    },
}


@dataclass(frozen=True)
class TemplateCell:
    key: TemplateKey
    customised: bool


def all_keys() -> list[TemplateKey]:
    return template_keys()


class TemplateAdminService:
    def __init__(self, services: Services, settings: Settings) -> None:
        self._sessions = services.sessions
        self._free_number = free_number_display(settings.asterisk.free_number)

    def grid(self) -> list[TemplateCell]:
        with session_scope(self._sessions) as session:
            custom = customised_keys(session)
        return [TemplateCell(key, key in custom) for key in all_keys()]

    def load(self, key: TemplateKey) -> TemplateText:
        with session_scope(self._sessions) as session:
            return stored_template(session, key.check())

    def preview(self, key: TemplateKey, subject: str | None, body: str) -> RenderedMessage:
        """The text as a participant would get it, filled with an example action's values."""
        fields = dict(PREVIEW_FIELDS[key.language], free_number=self._free_number)
        return render_text(key.check(), subject, body, fields)

    def save(
        self,
        key: TemplateKey,
        *,
        subject: str | None,
        body: str,
        actor: str,
        source: str,
    ) -> None:
        with session_scope(self._sessions) as session:
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

    def reset(self, key: TemplateKey, *, actor: str, source: str) -> bool:
        with session_scope(self._sessions) as session:
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

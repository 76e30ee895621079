"""The panel's side of sightings: need-to-know, form parsing, what the form offers, a sighting's
photo (a participant's, from an inquiry statement or sent with the app) and asking back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from broadcasting.service import BroadcastService
from burgernet.calls import CallLog, CallView
from burgernet.models import SIGHTING_RELIABILITIES
from burgernet.services import Services
from burgernet.settings import Settings
from burgernet.sightings import DIRECTIONS, NewSighting, PhotoChoice, SightingInvalid, SightingView
from callback_api.access import NeedToKnowService, Reader
from callback_api.errors import NotFound, PanelError
from callback_api.local_time import local_time, parse_local
from callback_api.photos import photo_file

# Calls offered in the form's "from call" list: the action's latest.
CALLS_OFFERED = 30


@dataclass(frozen=True)
class FormChoices:
    calls: list[tuple[int, str]]  # (call id, "14:02 +3161234****")
    photos: list[PhotoChoice]
    reliabilities: tuple[str, ...] = SIGHTING_RELIABILITIES
    directions: tuple[str, ...] = DIRECTIONS


def _number(text: str, field: str) -> float:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        raise SightingInvalid(f"{field}: not a number ({text!r}); click on the map or type it") from None


def _optional_id(text: str | None, field: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise SightingInvalid(f"{field}: not an id ({text!r})")
    return int(text)


def parse_form(form: dict[str, str]) -> NewSighting:
    """A sighting from the form's fields (the time meant in Europe/Amsterdam); SightingInvalid."""
    seen_text = (form.get("seen_at") or "").strip()
    try:
        seen_at = parse_local(seen_text) if seen_text else datetime.now(UTC)
    except ValueError:
        raise SightingInvalid(f"seen at: not a date and time ({seen_text!r})") from None
    if not form.get("lat") or not form.get("lon"):
        raise SightingInvalid("where: click on the map where it was seen (or type latitude and longitude)")
    return NewSighting(
        seen_at=seen_at,
        lat=_number(form["lat"], "latitude"),
        lon=_number(form["lon"], "longitude"),
        reliability=form.get("reliability") or "",
        description=form.get("description") or "",
        direction=form.get("direction") or None,
        call_id=_optional_id(form.get("call_id"), "call"),
        statement_id=_optional_id(form.get("statement_id"), "photo"),
    )


class AskBackUnavailable(PanelError):
    """Asking back needs the broadcast service, which this panel was built without."""

    code: ClassVar[str] = "sighting.ask_back_unavailable"
    status: ClassVar[int] = 503


class SightingPanelService:
    def __init__(
        self, services: Services, settings: Settings, broadcasts: BroadcastService | None = None
    ) -> None:
        self._services = services
        self._settings = settings
        self._broadcasts = broadcasts
        self._need_to_know = NeedToKnowService(services.sessions)

    def require(self, reader: Reader, action_id: int) -> None:
        """Sightings are the action's operational data: the action's need-to-know applies."""
        self._services.actions.get(action_id)  # 404 for an unknown action
        self._need_to_know.require(reader, action_id)

    def list(self, reader: Reader, action_id: int) -> list[SightingView]:
        self.require(reader, action_id)
        return self._services.sightings.for_action(action_id)

    def record(
        self, reader: Reader, action_id: int, new: NewSighting, *, actor: str, source: str
    ) -> SightingView:
        self.require(reader, action_id)
        return self._services.sightings.record(action_id, new, actor=actor, source=source)

    def choices(self, reader: Reader, action_id: int) -> FormChoices:
        self.require(reader, action_id)
        calls: list[CallView] = CallLog(self._services.sessions).for_action(action_id, limit=CALLS_OFFERED)
        offered = [
            (call.id, f"{local_time(call.started_at, '%d-%m %H:%M')} {call.caller_number or '—'}")
            for call in reversed(calls)
        ]
        return FormChoices(offered, self._services.sightings.photo_choices(action_id))

    def photo(self, reader: Reader, action_id: int, sighting_id: int) -> Path:
        """The photo of a sighting (its own from the app, or its statement's), audited as a read."""
        self.require(reader, action_id)
        sighting = self._services.sightings.get(sighting_id)
        if sighting.action_id != action_id or not sighting.has_photo:
            raise NotFound(f"sighting {sighting_id} of action {action_id} has no photo")
        path = photo_file(self._settings, self._services.sightings.photo_path(sighting_id))
        if path is None:
            raise NotFound(f"the photo of sighting {sighting_id} is no longer stored")
        self._need_to_know.audit_read(reader, "sighting_photo", sighting_id, {"action_id": action_id})
        return path

    def ask_back(self, reader: Reader, action_id: int, sighting_id: int, question: str, *, user: str) -> int:
        """Push a question to the device an app sighting came from (the broadcast service checks
        the question and the reply channel, queues one push and audits it); the broadcast id."""
        self.require(reader, action_id)
        sighting = self._services.sightings.get(sighting_id)
        if sighting.action_id != action_id:
            raise NotFound(f"sighting {sighting_id} is not one of action {action_id}")
        if self._broadcasts is None:
            raise AskBackUnavailable("asking back is not available in this panel")
        return self._broadcasts.ask_back(sighting_id=sighting_id, question=question, user=user)

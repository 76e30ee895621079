"""The panel's side of the worklist: who sees what (need-to-know), the linked centralist, on duty.

Need-to-know for the worklist (the rule :class:`burgernet.callbacks.WorklistScope` applies):
admins and operators see every item; a centralist sees the items of actions of their region or
whose team they are on, and the items without an action (failure-path tips, calls that found no
action) that came in for their region; a user linked to no centralist, and viewers, see none.
Why a centralist sees their region's items without an action: the failure path rang their
region's pool with that call, so it was already theirs to answer; the number is what they need
to call back, and nothing else of the caller is shown.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from burgernet.callbacks import CallbackService, WorklistItem, WorklistScope
from burgernet.db import session_scope
from burgernet.models import Centralist, Tip
from burgernet.ports import LiveEventKind, live_event
from burgernet.services import Services
from burgernet.settings import Settings
from callback_api.access import NeedToKnowService, Reader
from callback_api.errors import NotFound


@dataclass(frozen=True)
class OwnCentralist:
    """The logged-in user's linked centralist: the phone click-to-call rings first."""

    id: int
    endpoint: str
    name: str
    on_duty: bool
    active: bool


def scope_of(reader: Reader) -> WorklistScope:
    if reader.national:
        return WorklistScope.everything()
    if not reader.sees_personal_data:
        return WorklistScope(False, None)
    return WorklistScope(False, reader.centralist_id)


class WorklistPanelService:
    def __init__(self, services: Services, settings: Settings) -> None:
        self._services = services
        self._settings = settings
        self._need_to_know = NeedToKnowService(services.sessions)

    @property
    def callbacks(self) -> CallbackService:
        return self._services.callbacks

    def open_items(self, reader: Reader) -> list[WorklistItem]:
        return self.callbacks.worklist(scope_of(reader))

    def done_items(self, reader: Reader, limit: int = 20) -> list[WorklistItem]:
        return self.callbacks.worklist(scope_of(reader), done=True, limit=limit)

    def own_centralist(self, reader: Reader) -> OwnCentralist | None:
        if reader.centralist_id is None:
            return None
        with session_scope(self._services.sessions) as session:
            row = session.get(Centralist, reader.centralist_id)
            if row is None:
                return None
            return OwnCentralist(row.id, row.sip_endpoint, row.name, bool(row.on_duty), bool(row.active))

    def set_on_duty(self, reader: Reader, on_duty: bool, *, source: str) -> OwnCentralist:
        """The logged-in user sets their own linked centralist on or off duty (audited)."""
        own = self.own_centralist(reader)
        if own is None:
            raise NotFound("your account is linked to no centralist")
        self._services.centralists.set_on_duty(own.endpoint, on_duty, actor=reader.username, source=source)
        # Stored and audited already: a lost event only means the dashboard catches up on reload.
        with contextlib.suppress(Exception):
            self._services.live.publish(
                live_event(LiveEventKind.CENTRALIST_DUTY, None, endpoint=own.endpoint, on_duty=on_duty)
            )
        updated = self.own_centralist(reader)
        assert updated is not None
        return updated

    def tip_audio(self, reader: Reader, item_id: int) -> Path:
        """The recording of a tip on the reader's worklist (audited as a read)."""
        item = self.callbacks.item(item_id, scope_of(reader))
        if item.tip_id is None:
            raise NotFound(f"call-back {item_id} is a call without a tip")
        with session_scope(self._services.sessions) as session:
            recording = session.scalar(select(Tip.recording_path).where(Tip.id == item.tip_id))
        root = self._settings.recordings_dir.resolve()
        path = Path(recording or "").resolve()
        if not recording or not path.is_relative_to(root) or not path.is_file():
            raise NotFound(f"the recording of tip {item.tip_id} is not stored")
        self._need_to_know.audit_read(
            reader, "tip", item.tip_id, {"action_id": item.action_id, "via": "worklist"}
        )
        return path

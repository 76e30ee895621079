"""Actions as the panel and the API show them: choices for the form, an action's details,
timeline, calls and tips, its map feature and recipient counts, its photo, recording and the
progress of its broadcasts.

The life cycle itself (create, start, update, close) is the core's
:class:`burgernet.actions.ActionService`; this module adds what the pages need around it and
raises typed errors (:mod:`callback_api.errors`, :mod:`burgernet.actions`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from broadcasting.recipients import count_inside
from broadcasting.service import BroadcastService
from burgernet import domain
from burgernet.actions import UPDATE_MAX_CHARS as UPDATE_MAX_CHARS
from burgernet.actions import ActionNotFound, ActionView, AreaSpec
from burgernet.calls import CallLog, CallView, TipView
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.eta import estimate_for_action, estimate_from_json
from burgernet.models import (
    Action,
    ActionCentralist,
    AuditEvent,
    Broadcast,
    Centralist,
    Delivery,
    Region,
    Tip,
)
from burgernet.repositories import action_area, record_audit
from burgernet.services import Services
from burgernet.settings import Settings
from burgernet.tip_inbox import TipAssignError, TipInbox, TipNotFound, UnassignedTip
from callback_api.access import NeedToKnowService, Reader, masked
from callback_api.areas import action_feature, routing_area
from callback_api.errors import InputInvalid, NotFound
from callback_api.photos import check_photo, photo_file, store_photo
from recordings.convert import AudioError, read_wav_format
from recordings.messages import recorded_message_path, store_action_recording
from recordings.paths import tips_dir

# Columns left to right, as a delivery goes; a column is shown only when some delivery has it.
DELIVERY_STATUSES = domain.DELIVERY_STATUSES
CHANNELS = tuple(channel.value for channel in Channel)
MILESTONES = ("50%", "90%", "100%")


class BroadcastNotFound(NotFound):
    code: ClassVar[str] = "broadcast.not_found"


class TipNotAssigned(InputInvalid):
    """The tip cannot be put under that action (already assigned, no such action, a draft)."""

    code: ClassVar[str] = "tip.not_assigned"


class RecordingRefused(InputInvalid):
    """The uploaded sound cannot be used as the alert message; nothing was stored."""

    code: ClassVar[str] = "recording.invalid"

    def __init__(self, reason: str) -> None:
        super().__init__(f"recording refused: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    actor: str
    verb: str
    detail: dict[str, Any]
    source: str | None


@dataclass(frozen=True)
class AreaSummary:
    postcodes: str | None
    radius_m: float | None
    center: tuple[float | None, float | None]  # lon, lat


@dataclass(frozen=True)
class ActionDetails:
    """What the detail page shows beyond the :class:`~burgernet.actions.ActionView`."""

    description: str
    region_name: str
    has_photo: bool
    team: tuple[tuple[str, str], ...]  # (endpoint, name) in ringing order
    area: AreaSummary


@dataclass(frozen=True)
class ChannelCounts:
    channel: str
    counts: tuple[int, ...]  # one per column of the broadcast's table
    total: int


@dataclass(frozen=True)
class BroadcastPanelView:
    id: int
    action_id: int
    kind: str
    status: str
    total: int
    handled: int
    percent: int
    columns: tuple[str, ...]
    channels: tuple[ChannelCounts, ...]
    seconds_to: tuple[tuple[str, float | None], ...]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # The ETA made at the fan-out (burgernet.eta), beside the real times: 50/90/100 % → seconds.
    expected: tuple[tuple[str, float | None], ...] = ()
    # Deliveries the night rules hold: (channel, how many, until when).
    held: tuple[HeldDeliveries, ...] = ()


@dataclass(frozen=True)
class HeldDeliveries:
    channel: str
    count: int
    until: datetime


def percent_handled(handled: int, total: int) -> int:
    """Rounded down: 99.9 % is not shown as done."""
    return min(100, handled * 100 // total) if total > 0 else 0


def _moment(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def panel_view(status: dict[str, Any]) -> BroadcastPanelView:
    """One ``BroadcastStatus.as_dict()`` as a table: channels × the statuses that occur."""
    by_channel: dict[str, dict[str, int]] = status["by_channel"]
    present = {name for counts in by_channel.values() for name in counts}
    # Statuses a newer worker may add are kept, after the known ones.
    columns = tuple(s for s in DELIVERY_STATUSES if s in present) + tuple(
        sorted(present - set(DELIVERY_STATUSES))
    )
    ordered = [c for c in CHANNELS if c in by_channel] + sorted(set(by_channel) - set(CHANNELS))
    channels = tuple(
        ChannelCounts(
            channel=name,
            counts=tuple(by_channel[name].get(column, 0) for column in columns),
            total=sum(by_channel[name].values()),
        )
        for name in ordered
    )
    seconds: dict[str, float] = status["seconds_to"]
    total, handled = int(status["total"]), int(status["handled"])
    return BroadcastPanelView(
        id=int(status["broadcast_id"]),
        action_id=int(status["action_id"]),
        kind=str(status["kind"]),
        status=str(status["status"]),
        total=total,
        handled=handled,
        percent=percent_handled(handled, total),
        columns=columns,
        channels=channels,
        seconds_to=tuple((milestone, seconds.get(milestone)) for milestone in MILESTONES),
        created_at=_moment(status["created_at"]) or datetime.min,
        started_at=_moment(status["started_at"]),
        finished_at=_moment(status["finished_at"]),
    )


class ActionPanelService:
    def __init__(self, services: Services, settings: Settings, broadcasts: BroadcastService) -> None:
        self._services = services
        self._sessions = services.sessions
        self._settings = settings
        self._broadcasts = broadcasts
        self._need_to_know = NeedToKnowService(services.sessions)

    # -- the new-action form --------------------------------------------------------------------
    def region_choices(self) -> list[tuple[str, str]]:
        with session_scope(self._sessions) as session:
            return [
                (code, f"{code} — {name}")
                for code, name in session.execute(select(Region.code, Region.name).order_by(Region.code))
            ]

    def centralist_choices(self) -> list[tuple[str, str, str]]:
        """(endpoint, name, region code) of every centralist, for the team field's suggestions."""
        with session_scope(self._sessions) as session:
            rows = session.execute(
                select(Centralist.sip_endpoint, Centralist.name, Region.code)
                .join(Region, Region.id == Centralist.region_id)
                .order_by(Region.code, Centralist.sip_endpoint)
            )
            return [(endpoint, name, code) for endpoint, name, code in rows]

    def create(
        self,
        *,
        action_type: str,
        title: str,
        description: str,
        region_code: str,
        area: AreaSpec,
        team: tuple[str, ...],
        photo: bytes | None,
        actor: str,
        source: str,
        channels: tuple[str, ...] | None = None,
        urgency: str | None = None,
    ) -> ActionView:
        """A draft action, with its photo when one was sent (PhotoError, ActionError)."""
        # The photo is checked before anything is created: a bad photo loses nothing.
        checked = check_photo(photo) if photo is not None else None
        view = self._services.actions.create(
            action_type=action_type,
            title=title,
            description=description,
            region_code=region_code,
            area=area,
            team=team,
            channels=channels,
            urgency=urgency,
            actor=actor,
            source=source,
        )
        if checked is not None:
            store_photo(self._settings, self._sessions, view.id, checked, actor=actor, source=source)
        return view

    # -- one action ---------------------------------------------------------------------------
    def details(self, action_id: int) -> ActionDetails:
        with session_scope(self._sessions) as session:
            action = session.scalar(
                select(Action)
                .where(Action.id == action_id)
                .options(
                    selectinload(Action.region),
                    selectinload(Action.team).selectinload(ActionCentralist.centralist),
                )
            )
            if action is None:
                raise ActionNotFound(f"no action {action_id}")
            return ActionDetails(
                description=action.description,
                region_name=action.region.name,
                has_photo=bool(action.photo_path),
                team=tuple((m.centralist.sip_endpoint, m.centralist.name) for m in action.team),
                area=AreaSummary(action.postcodes, action.radius_m, (action.center_lon, action.center_lat)),
            )

    def timeline(self, action_id: int) -> list[TimelineEntry]:
        with session_scope(self._sessions) as session:
            rows = session.scalars(
                select(AuditEvent)
                .where(AuditEvent.entity == "action", AuditEvent.entity_id == str(action_id))
                .order_by(AuditEvent.at, AuditEvent.id)
            )
            return [
                TimelineEntry(e.at, e.actor, e.verb, json.loads(e.detail) if e.detail else {}, e.source)
                for e in rows
            ]

    # -- personal data, by need-to-know (callback_api.access) ------------------------------------
    def may_read_personal(self, reader: Reader, action_id: int | None) -> bool:
        return self._need_to_know.may_read(reader, action_id)

    def calls(self, action_id: int, reader: Reader, limit: int | None = None) -> list[CallView]:
        """Calls about the action, newest first; ``limit`` keeps a long search's page short.
        The callers' numbers are masked unless ``reader`` may read the action's personal data."""
        calls = CallLog(self._sessions).for_action(action_id, limit=limit)
        return calls if self._need_to_know.may_read(reader, action_id) else masked(calls, "caller_number")

    def call_count(self, action_id: int) -> int:
        return CallLog(self._sessions).count_for_action(action_id)

    def tips(self, action_id: int, reader: Reader) -> list[TipView]:
        """The action's tips; none for a reader who may not read its personal data."""
        if not self._need_to_know.may_read(reader, action_id):
            return []
        return CallLog(self._sessions).tips(action_id)

    def callbacks(self, action_id: int, reader: Reader) -> tuple[list[CallView], list[TipView]]:
        """Every call and tip of the action with their numbers (the API's export): NeedToKnow
        unless ``reader`` may read them; audited."""
        self._need_to_know.require(reader, action_id)
        log = CallLog(self._sessions)
        calls, tips = log.for_action(action_id), log.tips(action_id)
        self._need_to_know.audit_read(
            reader, "action", action_id, {"what": "calls and tips", "calls": len(calls), "tips": len(tips)}
        )
        return calls, tips

    def area_feature(self, action_id: int) -> dict[str, Any]:
        """The action's area as a GeoJSON Feature for the map."""
        with session_scope(self._sessions) as session:
            action = session.get(Action, action_id)
            if action is None:
                raise ActionNotFound(f"no action {action_id}")
            return action_feature(session, action)

    def recipients(self, action_id: int) -> int:
        """How many participants the action's alert reaches (or reached)."""
        with session_scope(self._sessions) as session:
            action = session.get(Action, action_id)
            if action is None:
                raise ActionNotFound(f"no action {action_id}")
            return count_inside(session, action_area(action))

    def recipients_preview(self, area: AreaSpec) -> int:
        """The live count while an area is drawn: the matching a broadcast would use (AreaInputError)."""
        target = routing_area(area)
        with session_scope(self._sessions) as session:
            return count_inside(session, target)

    def photo(self, action_id: int) -> Path | None:
        with session_scope(self._sessions) as session:
            stored = session.scalar(select(Action.photo_path).where(Action.id == action_id))
        return photo_file(self._settings, stored)

    # -- recordings ---------------------------------------------------------------------------
    def recording(self, action_id: int, lang: str | None = None) -> Path | None:
        """The centralist's recording of the alert message (per language, or for all)."""
        path = recorded_message_path(action_id, lang, settings=self._settings)
        return path if path.is_file() else None

    def store_recording(
        self, action_id: int, data: bytes, filename: str, lang: str | None, *, actor: str, source: str
    ) -> float:
        """Convert and store the upload, audited; returns its length in seconds.

        A file that is no usable sound raises :class:`RecordingRefused` and changes nothing.
        """
        self._services.actions.get(action_id)  # ActionNotFound before anything is written
        try:
            path = store_action_recording(action_id, data, filename, lang=lang, settings=self._settings)
        except AudioError as exc:
            raise RecordingRefused(str(exc)) from None
        seconds = read_wav_format(path)[3]
        with session_scope(self._sessions) as session:
            record_audit(
                session,
                actor=actor,
                verb="upload-recording",
                entity="action",
                entity_id=action_id,
                detail={"lang": lang, "seconds": round(seconds, 1), "file": filename},
                source=source,
            )
        return seconds

    def tip_audio(self, tip_id: int, reader: Reader) -> Path | None:
        """The tip's WAV, only inside the recordings folder (the path comes from the database).

        NeedToKnow unless ``reader`` may read the tip's action's personal data; each playback
        is audited (a browser's range requests for one playback each count)."""
        with session_scope(self._sessions) as session:
            found = session.execute(select(Tip.recording_path, Tip.action_id).where(Tip.id == tip_id)).first()
        if found is None:
            return None
        recording, action_id = found
        self._need_to_know.require(reader, action_id)
        if not recording:
            return None
        root = self._settings.recordings_dir.resolve()
        path = Path(recording).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        self._need_to_know.audit_read(reader, "tip", tip_id, {"action_id": action_id})
        return path

    # -- unassigned tips (failure-path tips the sweep could not place) ---------------------------
    def _tip_inbox(self) -> TipInbox:
        settings = self._settings
        return TipInbox(self._sessions, tips_dir(settings), settings.routing.alerted_window_seconds)

    def unassigned_tips(self, reader: Reader) -> list[UnassignedTip]:
        """Tips without an action; need-to-know treats them as data outside any action (national
        roles only): a centralist sees a tip once it is assigned to an action of theirs."""
        if not self._need_to_know.may_read(reader, None):
            return []
        return self._tip_inbox().unassigned()

    def assignable_actions(self, reader: Reader) -> list[ActionView]:
        """The running and recent actions a tip can be assigned to, newest first."""
        if not self._need_to_know.may_read(reader, None):
            return []
        actions = [
            view
            for status in (domain.ActionStatus.ACTIVE.value, domain.ActionStatus.CLOSED.value)
            for view in self._services.actions.list_actions(status, limit=50)
        ]
        readable = self._need_to_know.readable_actions(reader, [view.id for view in actions])
        return [view for view in actions if view.id in readable]

    def require_tip_assigner(self, reader: Reader) -> None:
        """NeedToKnow unless ``reader`` may see tips outside any action (and so assign them)."""
        self._need_to_know.require(reader, None)

    def assign_tip(self, tip_id: int, action_id: int, reader: Reader) -> None:
        """Put an unassigned tip under an action, audited: NeedToKnow unless the reader may
        read both the unassigned tip and the action; TipNotAssigned when it cannot be done."""
        self._need_to_know.require(reader, None)
        self._need_to_know.require(reader, action_id)
        try:
            self._tip_inbox().assign(tip_id, action_id, actor=reader.username, source=reader.source)
        except TipNotFound:
            raise NotFound(f"no tip {tip_id}") from None
        except TipAssignError as exc:
            raise TipNotAssigned(str(exc)) from None

    # -- broadcasts ---------------------------------------------------------------------------
    def broadcasts(self, action_id: int) -> list[BroadcastPanelView]:
        """The action's broadcasts with their progress, the ETA made when each was fanned out,
        and what the night rules hold (how many, per channel, until when)."""
        views = [panel_view(status.as_dict()) for status in self._broadcasts.of_action(action_id)]
        if not views:
            return views
        ids = [view.id for view in views]
        now = datetime.now(UTC)
        with session_scope(self._sessions) as session:
            estimates: dict[int, str | None] = {
                broadcast_id: text
                for broadcast_id, text in session.execute(
                    select(Broadcast.id, Broadcast.estimate).where(Broadcast.id.in_(ids))
                )
            }
            held: dict[int, list[HeldDeliveries]] = {}
            for broadcast_id, channel, until, number in session.execute(
                select(Delivery.broadcast_id, Delivery.channel, func.max(Delivery.not_before), func.count())
                .where(
                    Delivery.broadcast_id.in_(ids),
                    Delivery.status == "queued",
                    Delivery.not_before > now,
                )
                .group_by(Delivery.broadcast_id, Delivery.channel)
            ):
                if until is None:
                    continue
                moment = until if until.tzinfo else until.replace(tzinfo=UTC)
                held.setdefault(broadcast_id, []).append(HeldDeliveries(channel, int(number), moment))
        enriched = []
        for view in views:
            stored = estimate_from_json(estimates.get(view.id))
            times = stored.get("seconds_to") if stored else None
            expected = tuple((m, times.get(m)) for m in MILESTONES) if isinstance(times, dict) else ()
            enriched.append(replace(view, expected=expected, held=tuple(held.get(view.id, ()))))
        return enriched

    def eta_if_started(self, action_id: int) -> dict[str, Any] | None:
        """A draft's ETA if it were started now (burgernet.eta.estimate_for_action, as a dict)."""
        with session_scope(self._sessions) as session:
            found = estimate_for_action(session, action_id, self._settings)
        return found.as_dict() if found is not None else None

    def broadcast_documents(self, action_id: int) -> list[dict[str, object]]:
        """The action's alert, updates and result message with their delivery counts (for the API)."""
        return [status.as_dict() for status in self._broadcasts.of_action(action_id)]

    def broadcast_document(self, broadcast_id: int) -> dict[str, object]:
        status = self._broadcasts.status(broadcast_id)
        if status is None:
            raise BroadcastNotFound(f"no broadcast {broadcast_id}")
        return status.as_dict()

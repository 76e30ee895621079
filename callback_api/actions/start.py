"""The start-an-action flow: find the place, start from the type's template, pick the team,
see every message before it is sent.

What the new-action page asks while the operator fills it in (each a small JSON answer):

* :meth:`StartService.places` — the search box (:class:`burgernet.addresses.AddressSearch`);
* :meth:`StartService.templates` — each action type's radius, channels, urgency, text blocks
  (:mod:`burgernet.action_types`);
* :meth:`StartService.team` — the region's centralists with their live state (presence in
  Redis, :meth:`burgernet.live.LiveState.presence`) and who is reachable right now;
* :meth:`StartService.preview` — the alert per channel and language exactly as the workers
  will render it (:func:`burgernet.message_templates.render_message` with the fields that
  :mod:`broadcasting.messages` fills), the SMS length and segments, the recipients per channel
  (:func:`broadcasting.recipients.select_recipients`, the broadcast's own selection) and the
  active actions of the same type whose area overlaps;
* :meth:`StartService.voice_preview` — the voice text spoken (TTS on demand through
  :func:`recordings.catalogue.preview_sound`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from broadcasting.recipients import Recipients, select_recipients
from burgernet.action_types import ActionTypeTemplates, TypeTemplate
from burgernet.actions import AreaSpec
from burgernet.addresses import AddressSearch
from burgernet.db import session_scope
from burgernet.domain import ActionType, AreaKind, Channel, Language
from burgernet.eta import estimate, gather_inputs, night_hold, priority_of
from burgernet.message_templates import SMS_LIMIT, render_message
from burgernet.models import URGENCIES, Action, Centralist, Region
from burgernet.phone import free_number_display
from burgernet.services import Services
from burgernet.settings import Settings
from callback_api.areas import action_feature, routing_area
from recordings.catalogue import preview_sound

# A centralist in one of these states can take a call right now (unknown: no live state yet,
# and the routing rings them rather than drop them).
REACHABLE = ("available", "unknown")
# GSM 03.38: the basic alphabet, and the extension characters that take two septets.
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsSize:
    characters: int  # as the phone counts them (septets in GSM-7, UTF-16 units otherwise)
    segments: int
    encoding: str  # GSM-7 | UCS-2
    per_segment: int


def sms_size(text: str) -> SmsSize:
    """How many messages an SMS costs: 160 GSM-7 characters in one, 153 per part when longer;
    one character outside GSM-7 makes it UCS-2 (70, then 67 per part)."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text):
        length = sum(2 if ch in _GSM_EXTENDED else 1 for ch in text)
        single, multi, encoding = SMS_LIMIT, 153, "GSM-7"
    else:
        length = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    segments = 1 if length <= single else math.ceil(length / multi)
    return SmsSize(length, segments, encoding, single if segments == 1 else multi)


@dataclass(frozen=True)
class TeamMember:
    endpoint: str
    name: str
    on_duty: bool
    presence: str  # available | busy | offline | unknown (Asterisk's device state, via Redis)
    state: str  # what the operator reads: on duty and available, in a call, off duty, offline
    reachable: bool
    own: bool  # the signed-in user's own endpoint


@dataclass(frozen=True)
class MessagePreview:
    channel: str
    language: str
    subject: str | None
    body: str
    sms: SmsSize | None


@dataclass(frozen=True)
class Overlap:
    action_id: int
    title: str


@dataclass(frozen=True)
class Preview:
    messages: tuple[MessagePreview, ...]
    recipients: dict[str, int]  # per channel, and "people" (each person once)
    overlaps: tuple[Overlap, ...]
    # The expected time to 50/90/100 % handled if started now (burgernet.eta, Estimate.as_dict).
    eta: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _state(on_duty: bool, presence: str) -> str:
    if not on_duty:
        return "off duty"
    return {"available": "available", "busy": "in a call", "offline": "offline"}.get(presence, "on duty")


def _metres(geometry: shapely.Geometry, lat0: float) -> shapely.Geometry:
    """Lon/lat → metres on a plane through ``lat0``: enough to tell whether two areas meet."""
    scale = math.cos(math.radians(lat0))
    return shapely.transform(geometry, lambda xy: xy * [111_320.0 * scale, 110_574.0])


def _feature_geometry(feature: dict[str, Any], lat0: float) -> shapely.Geometry | None:
    if feature.get("geometry") is None:
        return None
    geometry = _metres(shape(feature["geometry"]), lat0)
    radius = feature.get("properties", {}).get("radius_m")
    return geometry.buffer(float(radius)) if radius else geometry


class StartService:
    def __init__(self, services: Services, settings: Settings) -> None:
        self._services = services
        self._sessions = services.sessions
        self._settings = settings

    # -- the place ---------------------------------------------------------------------------
    def places(self, query: str) -> list[dict[str, object]]:
        """Search hits, each with the region whose territory holds it (the form's region)."""
        hits = AddressSearch(self._sessions).search(query)
        if not hits:
            return []
        with session_scope(self._sessions) as session:
            regions = [
                (code, shape(json.loads(boundary)))
                for code, boundary in session.execute(select(Region.code, Region.boundary_geojson))
                if boundary
            ]
        found = []
        for hit in hits:
            point = shapely.Point(hit.lon, hit.lat)
            region = next((code for code, territory in regions if territory.covers(point)), None)
            found.append({**hit.as_dict(), "region": region})
        return found

    # -- the type's template -------------------------------------------------------------------
    def templates(self) -> dict[str, dict[str, object]]:
        return {t.action_type: t.as_dict() for t in ActionTypeTemplates(self._sessions).all()}

    def template(self, action_type: str) -> TypeTemplate:
        return ActionTypeTemplates(self._sessions).get(action_type)

    # -- the team ------------------------------------------------------------------------------
    def own_endpoint(self, centralist_id: int | None) -> str | None:
        if centralist_id is None:
            return None
        with session_scope(self._sessions) as session:
            return session.scalar(select(Centralist.sip_endpoint).where(Centralist.id == centralist_id))

    def team(self, region_code: str, own_endpoint: str | None) -> list[TeamMember]:
        """The region's active centralists (and the user's own endpoint, wherever it works):
        the user first, then those reachable now, then the rest, each by endpoint."""
        live = self._services.live.presence()
        with session_scope(self._sessions) as session:
            rows = session.execute(
                select(Centralist.sip_endpoint, Centralist.name, Centralist.on_duty)
                .join(Region, Region.id == Centralist.region_id)
                .where(Centralist.active.is_(True))
                .where((Region.code == region_code) | (Centralist.sip_endpoint == (own_endpoint or "")))
                .order_by(Centralist.sip_endpoint)
            ).all()
        members = []
        for endpoint, name, on_duty in rows:
            presence = live[endpoint].value if endpoint in live else "unknown"
            members.append(
                TeamMember(
                    endpoint,
                    name,
                    bool(on_duty),
                    presence,
                    _state(bool(on_duty), presence),
                    bool(on_duty) and presence in REACHABLE,
                    endpoint == own_endpoint,
                )
            )
        members.sort(key=lambda m: (not m.own, not m.reachable, m.endpoint))
        return members

    # -- what participants will receive -----------------------------------------------------------
    def preview(
        self,
        *,
        action_type: str,
        title: str,
        description: str,
        region_code: str,
        area: AreaSpec,
        channels: Sequence[str],
        urgency: str = "",
    ) -> Preview:
        """The alert per channel and language as the workers will render it (AreaInputError,
        TemplateError for an unknown type), and how long it would take to reach everyone."""
        # Only the channels chosen: the alert goes over those alone (burgernet.actions).
        wanted = [c.value for c in Channel if c.value in channels]
        target = routing_area(area)
        with session_scope(self._sessions) as session:
            region_name = session.scalar(select(Region.name).where(Region.code == region_code)) or ""
            # The fields broadcasting.messages.compose fills for an alert: the alert's message is
            # the description, or the title without one (burgernet.actions, starting an action).
            fields = {
                "title": title.strip(),
                "description": description.strip() or title.strip(),
                "area": region_name,
                "region": region_name,
                "outcome": "",
                "result_message": "",
                "free_number": free_number_display(self._settings.asterisk.free_number),
            }
            messages = []
            for channel in wanted:
                for language in Language:
                    rendered = render_message(
                        session,
                        action_type=action_type,
                        kind="alert",
                        channel=channel,
                        language=language.value,
                        fields=fields,
                    )
                    messages.append(
                        MessagePreview(
                            channel,
                            language.value,
                            rendered.subject,
                            rendered.body,
                            sms_size(rendered.body) if channel == Channel.SMS.value else None,
                        )
                    )
            found = select_recipients(session, target)
            reached = Recipients({c: ids for c, ids in found.by_channel.items() if c.value in wanted})
            recipients = {channel: reached.count(Channel(channel)) for channel in wanted}
            recipients["people"] = reached.people()
            overlaps = self._overlaps(session, action_type, area)
            expected = self._eta(session, action_type, urgency, recipients)
        return Preview(tuple(messages), recipients, overlaps, expected)

    def _eta(
        self, session: Any, action_type: str, urgency: str, recipients: dict[str, int]
    ) -> dict[str, Any] | None:
        """The ETA of the alert previewed, at the urgency chosen (the type's without one)."""
        counts = {channel: n for channel, n in recipients.items() if channel != "people" and n > 0}
        chosen = urgency if urgency in URGENCIES else None
        try:
            priority = priority_of(action_type, chosen)
        except ValueError:  # an unknown type: no preview either
            return None
        now = datetime.now(UTC)
        held = night_hold(self._settings, action_type, chosen, "alert", now, counts)
        inputs = gather_inputs(
            session, self._settings, recipients=counts, priority=priority, held_until=held, now=now
        )
        return estimate(inputs).as_dict()

    def _overlaps(self, session: Any, action_type: str, area: AreaSpec) -> tuple[Overlap, ...]:
        """Active actions of the same type whose area meets this one."""
        actions = session.scalars(
            select(Action)
            .where(Action.status == "active", Action.action_type == action_type)
            .options(selectinload(Action.region))
            .order_by(Action.id)
        ).all()
        if not actions:
            return ()
        if area.kind is AreaKind.NATIONAL:
            return tuple(Overlap(a.id, a.title) for a in actions)
        mine_feature = self._spec_feature(session, area)
        lat0 = 52.2
        mine = _feature_geometry(mine_feature, lat0)
        found = []
        for action in actions:
            feature = action_feature(session, action)
            if action.area_kind == AreaKind.NATIONAL.value:
                found.append(Overlap(action.id, action.title))
                continue
            theirs = _feature_geometry(feature, lat0)
            if mine is not None and theirs is not None and mine.intersects(theirs):
                found.append(Overlap(action.id, action.title))
        return tuple(found)

    @staticmethod
    def _spec_feature(session: Any, area: AreaSpec) -> dict[str, Any]:
        """A not yet stored area as the map feature of a stored one (same drawing rules)."""
        draft = Action(area_kind=area.kind.value, action_type="information", title="", status="draft")
        if area.kind is AreaKind.CIRCLE and area.centre is not None:
            draft.center_lon, draft.center_lat = area.centre
            draft.radius_m = area.radius_m
        elif area.kind is AreaKind.POLYGON:
            draft.area_geojson = area.geojson
        elif area.kind is AreaKind.POSTCODES:
            draft.postcodes = ",".join(area.postcodes)
        draft.id = 0
        return action_feature(session, draft)

    def voice_preview(self, language: str, text: str) -> Path:
        """The voice text spoken as the alert call will speak it (espeak-ng, cached)."""
        return preview_sound(Language(language).value, text, settings=self._settings)


# The type a new action form opens with: the most frequent search of all.
DEFAULT_TYPE = ActionType.MISSING_CHILD.value


def start_from_template(form: Any, template: TypeTemplate) -> None:
    """Prefill the new-action form (an ActionForm) with the type's template."""
    form.action_type.data = template.action_type
    form.radius_m.data = str(template.radius_m)
    form.title.data = template.title_block
    form.description.data = template.description_block
    form.channels.data = list(template.channels)
    form.urgency.data = template.urgency

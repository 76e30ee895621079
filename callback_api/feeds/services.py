"""AMBER Alert publication: CAP 1.2, Atom and JSON Feed documents for screens and websites.

Only AMBER Alerts are published, and only while they matter: active ones, and closed ones for
a day afterwards so that every screen that showed the alert also shows the all-clear. A closed
alert no longer carries the child's description or photo (``Update`` with ``AllClear``); it says
the public result message, never the internal outcome (see :class:`AmberAlert`).

CAP times need an explicit offset (``+01:00``; the schema refuses ``Z``), so every time is
written in Europe/Amsterdam with its offset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from lxml import etree
from shapely.geometry import shape
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from burgernet.db import session_scope
from burgernet.domain import ActionStatus, ActionType, AreaKind
from burgernet.models import Action, Region
from burgernet.phone import free_number_display
from burgernet.services import Services
from burgernet.settings import Settings
from callback_api.photos import photo_file

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
LOCAL_TZ = ZoneInfo("Europe/Amsterdam")
ALL_CLEAR_HOURS = 24


def as_utc(moment: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def cap_time(moment: datetime) -> str:
    return as_utc(moment).astimezone(LOCAL_TZ).isoformat(timespec="seconds")


@dataclass(frozen=True)
class AmberAlert:
    """What the public may know of an AMBER Alert: the allow-list every feed is built from.

    Nothing else of the action reaches a feed: not the internal outcome the control room wrote
    when closing it, not the team, the centralists, the calls or the callers. A field added here
    is published; add one only when it is meant for the public.
    """

    id: int
    title: str
    description: str  # the public description of the child (shown while active only)
    region_name: str
    area_kind: str
    center: tuple[float, float] | None  # lon, lat
    radius_m: float | None
    area_geojson: str | None
    postcodes: tuple[str, ...]
    status: str
    started_at: datetime
    closed_at: datetime | None
    result_message: str | None  # the public result message, written for the public
    photo_mime: str | None
    # Keyed on the free number to reach the team at once (burgernet.action_codes); published
    # while the alert is active only: a closed alert's code no longer routes.
    action_code: str | None = None

    @property
    def has_photo(self) -> bool:
        return self.photo_mime is not None

    @property
    def active(self) -> bool:
        return self.status == ActionStatus.ACTIVE.value

    @property
    def updated_at(self) -> datetime:
        return self.closed_at or self.started_at


def _photo_mime(path: str | None) -> str | None:
    if not path:
        return None
    suffix = path.rsplit(".", 1)[-1].lower()
    return {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}.get(suffix)


# The only columns a feed reads: the allow-list in SQL, so nothing else is even loaded.
_PUBLIC_COLUMNS = (
    Action.id,
    Action.title,
    Action.description,
    Region.name,
    Action.area_kind,
    Action.center_lon,
    Action.center_lat,
    Action.radius_m,
    Action.area_geojson,
    Action.postcodes,
    Action.status,
    Action.created_at,
    Action.started_at,
    Action.closed_at,
    Action.result_message,
    Action.photo_path,
    Action.action_code,
)


def amber_alerts(session: Session, now: datetime | None = None) -> list[AmberAlert]:
    """Published AMBER Alerts, newest first: active ones, then those closed in the last day."""
    since = (now or datetime.now(UTC)) - timedelta(hours=ALL_CLEAR_HOURS)
    rows = session.execute(
        select(*_PUBLIC_COLUMNS)
        .join(Region, Region.id == Action.region_id)
        .where(Action.action_type == ActionType.AMBER_ALERT.value)
        .where(
            or_(
                Action.status == ActionStatus.ACTIVE.value,
                and_(
                    Action.status == ActionStatus.CLOSED.value,
                    Action.started_at.is_not(None),
                    Action.closed_at >= since,
                ),
            )
        )
    )
    alerts = [
        AmberAlert(
            id=a.id,
            title=a.title,
            description=a.description or "",
            region_name=a.name,
            area_kind=a.area_kind,
            center=(a.center_lon, a.center_lat)
            if a.center_lon is not None and a.center_lat is not None
            else None,
            radius_m=a.radius_m,
            area_geojson=a.area_geojson,
            postcodes=tuple(code for code in (a.postcodes or "").split(",") if code),
            status=a.status,
            started_at=as_utc(a.started_at or a.created_at),
            closed_at=as_utc(a.closed_at) if a.closed_at else None,
            result_message=(a.result_message or "").strip() or None,
            photo_mime=_photo_mime(a.photo_path),
            action_code=a.action_code if a.status == ActionStatus.ACTIVE.value else None,
        )
        for a in rows
    ]
    alerts.sort(key=lambda alert: (alert.active, alert.updated_at), reverse=True)
    return alerts


class FeedService:
    """The published AMBER Alerts and their photos, read per request (feeds are polled)."""

    def __init__(self, services: Services, settings: Settings) -> None:
        self._sessions = services.sessions
        self._settings = settings

    def alerts(self) -> list[AmberAlert]:
        with session_scope(self._sessions) as session:
            return amber_alerts(session)

    def alert(self, action_id: int) -> AmberAlert | None:
        return next((alert for alert in self.alerts() if alert.id == action_id), None)

    def photo(self, action_id: int) -> Path | None:
        """A child's photo, only while their AMBER Alert is active."""
        with session_scope(self._sessions) as session:
            stored = session.scalar(
                select(Action.photo_path).where(
                    Action.id == action_id,
                    Action.action_type == ActionType.AMBER_ALERT.value,
                    Action.status == ActionStatus.ACTIVE.value,
                )
            )
        return photo_file(self._settings, stored)


# --- CAP 1.2 ----------------------------------------------------------------------------------------
def _sender(settings: Settings) -> str:
    host = urlsplit(settings.web.public_base_url).hostname or "localhost"
    return f"burgernet@{host}"


def cap_identifier(alert: AmberAlert, *, closed: bool = False) -> str:
    # No spaces, commas, '<' or '&' (CAP 1.2, 3.2.1).
    return f"NL-Burgernet-AMBER-{alert.id}" + ("-closed" if closed else "")


_TEXT = {
    "nl-NL": {
        "event": "AMBER Alert: vermist kind",
        "instruction": "Ziet u dit kind? Bel direct gratis {number}. Bij direct gevaar: bel 112.",
        "instruction_code": (
            "Ziet u dit kind? Bel direct gratis {number} en toets actiecode {code}. "
            "Bij direct gevaar: bel 112."
        ),
        "all_clear": "AMBER Alert beëindigd",
        "sender": "Burgernet",
        "nationwide": "Nederland",
    },
    "en-GB": {
        "event": "AMBER Alert: missing child",
        "instruction": (
            "Have you seen this child? Call {number} free of charge now. In immediate danger: call 112."
        ),
        "instruction_code": (
            "Have you seen this child? Call {number} free of charge now and key action code {code}. "
            "In immediate danger: call 112."
        ),
        "all_clear": "AMBER Alert ended",
        "sender": "Burgernet",
        "nationwide": "The Netherlands",
    },
}


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{CAP_NS}}}{name}")
    if text is not None:
        element.text = text
    return element


def _cap_polygons(geojson: str) -> list[str]:
    """CAP polygons: exterior rings as "lat,lon lat,lon ..." (first point = last point)."""
    geometry = shape(json.loads(geojson))
    polygons = list(getattr(geometry, "geoms", [geometry]))
    return [" ".join(f"{lat:.5f},{lon:.5f}" for lon, lat in polygon.exterior.coords) for polygon in polygons]


def _cap_area(info: etree._Element, alert: AmberAlert, language: str) -> None:
    area = _sub(info, "area")
    kind = AreaKind(alert.area_kind)
    _sub(area, "areaDesc", _TEXT[language]["nationwide"] if kind is AreaKind.NATIONAL else alert.region_name)
    if kind is AreaKind.POLYGON and alert.area_geojson:
        for polygon in _cap_polygons(alert.area_geojson):
            _sub(area, "polygon", polygon)
    if kind is AreaKind.CIRCLE and alert.center and alert.radius_m:
        lon, lat = alert.center
        _sub(area, "circle", f"{lat:.5f},{lon:.5f} {alert.radius_m / 1000:.3f}")
    if kind is AreaKind.POSTCODES:
        for code in alert.postcodes:
            geocode = _sub(area, "geocode")
            _sub(geocode, "valueName", "NL-postcode")
            _sub(geocode, "value", code)


def cap_document(alert: AmberAlert, settings: Settings) -> bytes:
    """One CAP 1.2 ``<alert>``: the alert itself while active, the all-clear once closed."""
    base = settings.web.public_base_url.rstrip("/")
    closed = not alert.active and alert.closed_at is not None
    number = free_number_display(settings.asterisk.free_number)
    root = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
    _sub(root, "identifier", cap_identifier(alert, closed=closed))
    _sub(root, "sender", _sender(settings))
    _sub(root, "sent", cap_time(alert.updated_at))
    _sub(root, "status", "Actual")
    _sub(root, "msgType", "Update" if closed else "Alert")
    _sub(root, "scope", "Public")
    if closed:
        original = f"{_sender(settings)},{cap_identifier(alert)},{cap_time(alert.started_at)}"
        _sub(root, "references", original)
    _sub(root, "incidents", f"burgernet-action-{alert.id}")
    for language in ("nl-NL", "en-GB"):
        text = _TEXT[language]
        info = _sub(root, "info")
        _sub(info, "language", language)
        _sub(info, "category", "Rescue")
        _sub(info, "event", text["event"])
        _sub(info, "responseType", "AllClear" if closed else "Monitor")
        _sub(info, "urgency", "Past" if closed else "Immediate")
        _sub(info, "severity", "Minor" if closed else "Severe")
        _sub(info, "certainty", "Observed" if closed else "Likely")
        _sub(info, "effective", cap_time(alert.updated_at))
        _sub(info, "senderName", text["sender"])
        if closed:
            _sub(info, "headline", f"{text['all_clear']}: {alert.title}")
            _sub(info, "description", alert.result_message or text["all_clear"])
        else:
            _sub(info, "headline", alert.title)
            _sub(info, "description", alert.description or alert.title)
            if alert.action_code:
                instruction = text["instruction_code"].format(number=number, code=alert.action_code)
            else:
                instruction = text["instruction"].format(number=number)
            _sub(info, "instruction", instruction)
        _sub(info, "web", f"{base}/amber/{alert.id}")
        _sub(info, "contact", number)
        if alert.has_photo and not closed:
            resource = _sub(info, "resource")
            _sub(resource, "resourceDesc", "foto" if language == "nl-NL" else "photo")
            _sub(resource, "mimeType", alert.photo_mime)
            _sub(resource, "uri", f"{base}/feeds/amber/{alert.id}/photo")
        _cap_area(info, alert, language)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


# --- Atom (RFC 4287) -----------------------------------------------------------------------------------
def atom_document(alerts: list[AmberAlert], settings: Settings, now: datetime | None = None) -> bytes:
    base = settings.web.public_base_url.rstrip("/")
    feed = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})

    def sub(parent: etree._Element, name: str, text: str | None = None, **attributes: str) -> etree._Element:
        element = etree.SubElement(parent, f"{{{ATOM_NS}}}{name}", **attributes)
        if text is not None:
            element.text = text
        return element

    updated = max((alert.updated_at for alert in alerts), default=now or datetime.now(UTC))
    sub(feed, "id", f"{base}/feeds/amber.atom")
    sub(feed, "title", "Burgernet AMBER Alert")
    sub(feed, "updated", cap_time(updated))
    sub(feed, "link", rel="self", href=f"{base}/feeds/amber.atom", type="application/atom+xml")
    author = sub(feed, "author")
    sub(author, "name", "Burgernet")
    for alert in alerts:
        entry = sub(feed, "entry")
        sub(entry, "id", f"{base}/amber/{alert.id}")
        sub(entry, "title", alert.title if alert.active else f"AMBER Alert beëindigd: {alert.title}")
        sub(entry, "updated", cap_time(alert.updated_at))
        sub(entry, "published", cap_time(alert.started_at))
        sub(entry, "link", rel="alternate", href=f"{base}/amber/{alert.id}", type="text/html")
        sub(
            entry,
            "link",
            rel="alternate",
            href=f"{base}/feeds/amber/{alert.id}.cap.xml",
            type="application/cap+xml",
        )
        summary = alert.description if alert.active else (alert.result_message or "")
        sub(entry, "summary", summary or alert.title)
    return bytes(etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True))


# --- JSON Feed 1.1 -------------------------------------------------------------------------------------
def json_feed(alerts: list[AmberAlert], settings: Settings) -> dict[str, Any]:
    base = settings.web.public_base_url.rstrip("/")
    number = free_number_display(settings.asterisk.free_number)
    items = []
    for alert in alerts:
        item: dict[str, Any] = {
            "id": f"{base}/amber/{alert.id}",
            "url": f"{base}/amber/{alert.id}",
            "title": alert.title,
            "content_text": alert.description if alert.active else (alert.result_message or ""),
            "date_published": cap_time(alert.started_at),
            "date_modified": cap_time(alert.updated_at),
            "_burgernet": {
                "status": alert.status,
                "region": alert.region_name,
                "area_kind": alert.area_kind,
                "call": number,
                "cap": f"{base}/feeds/amber/{alert.id}.cap.xml",
            },
        }
        if alert.has_photo and alert.active:
            item["image"] = f"{base}/feeds/amber/{alert.id}/photo"
        if alert.action_code:
            # The code to key, and a link that dials it ("," waits ~2 s after the answer).
            item["_burgernet"]["action_code"] = alert.action_code
            item["_burgernet"]["call_tel"] = f"tel:{settings.asterisk.free_number},{alert.action_code}"
        items.append(item)
    return {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Burgernet AMBER Alert",
        "home_page_url": f"{base}/amber",
        "feed_url": f"{base}/feeds/amber.json",
        "language": "nl",
        "items": items,
    }

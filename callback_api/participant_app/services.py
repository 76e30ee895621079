"""The participant app's server side: no login and no cookie, so every answer is public and small.

* the public document of an active action (``burgernet.app_alerts.action_document``) and its
  photo, for the service worker and the sighting form;
* a postcode's position, for a place the participant types in: looked up, answered, forgotten
  (nothing about the request is stored);
* sightings from the app: parsed, the photo checked and cleaned (:func:`callback_api.photos.
  check_photo`), throttled per device and per address, recorded by the core
  (:meth:`burgernet.sightings.SightingService.record_from_app`).

Errors carry a stable code and are answered as ``{"error": {"code", "message"}}`` (views.py).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import redis
from sqlalchemy import select

from burgernet.addresses import AddressSearch
from burgernet.app_alerts import action_document
from burgernet.db import session_scope
from burgernet.domain import ActionStatus
from burgernet.live import LiveState
from burgernet.models import Action
from burgernet.services import Services
from burgernet.settings import Settings
from burgernet.sightings import AppPhoto, AppSighting, SightingInvalid, SightingView
from callback_api.errors import NotFound, PanelError, RequestInvalid
from callback_api.photos import MAX_PHOTO_BYTES, check_photo, photo_file, photos_dir
from callback_api.security import _MemoryCounters

log = logging.getLogger(__name__)

# A postcode as people type it: "3511", "3511AB", "3511 ab" (no PC4 starts with a zero).
POSTCODE = re.compile(r"([1-9][0-9]{3})\s*([A-Za-z]{2})?")
MAX_ENDPOINT = 1024


class AppActionNotFound(NotFound):
    """No active action with this id (a draft or a closed one is not public either)."""

    code: ClassVar[str] = "app.action_not_found"


class PostcodeInvalid(RequestInvalid):
    code: ClassVar[str] = "app.postcode_invalid"


class PostcodeNotFound(NotFound):
    code: ClassVar[str] = "app.postcode_not_found"


class PhotoTooLarge(PanelError):
    code: ClassVar[str] = "photo.too_large"
    status: ClassVar[int] = 413


class TooManySightings(PanelError):
    """More sightings from one device or one address than a person sends; try again later."""

    code: ClassVar[str] = "app.too_many_sightings"
    status: ClassVar[int] = 429


@dataclass
class SightingThrottle:
    """Sightings from the app, counted per device (its push endpoint) and per client address.

    Every attempt counts, accepted or not: the limits are far above what a person sends
    (a few sightings in ten minutes) and stop a script. The address limit is the higher one:
    many phones share one address behind a mobile operator's NAT. An IPv6 address counts as
    its /64, which one customer gets whole. Endpoints are counted by their SHA-256 only.

    Counted in Redis (shared by every panel process); while Redis cannot be reached, in this
    process's memory (the login throttle's fallback), so the limits hold through an outage.
    """

    live: LiveState
    per_device: int = 5
    per_address: int = 60
    window_seconds: int = 600
    memory: _MemoryCounters = field(default_factory=_MemoryCounters, compare=False, repr=False)

    @staticmethod
    def address_key(address: str) -> str:
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return address[:64] or "unknown"
        if parsed.version == 6:
            return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
        return str(parsed)

    def _keys(self, address: str, endpoint: str | None) -> list[tuple[str, int]]:
        keys = [
            (self.live.keys.counter(f"app-sightings-address:{self.address_key(address)}"), self.per_address)
        ]
        if endpoint:
            digest = hashlib.sha256(endpoint.encode("utf-8")).hexdigest()[:32]
            keys.append((self.live.keys.counter(f"app-sightings-device:{digest}"), self.per_device))
        return keys

    def take(self, address: str, endpoint: str | None) -> None:
        """Count one attempt; :class:`TooManySightings` when it is over a limit."""
        keys = self._keys(address, endpoint)
        try:
            with self.live.client.pipeline(transaction=True) as pipe:
                for key, _limit in keys:
                    # The window starts at the first attempt (SET NX) and the count follows.
                    pipe.set(key, 0, ex=self.window_seconds, nx=True)
                    pipe.incr(key)
                counts = [int(value) for value in pipe.execute()[1::2]]
        except redis.RedisError as exc:
            log.warning("app sightings throttle: Redis unreachable (%s); counting in this process", exc)
            counts = []
            for key, _limit in keys:
                self.memory.incr(key, self.window_seconds)
                counts.append(self.memory.get(key))
        if any(count > limit for count, (_key, limit) in zip(counts, keys, strict=True)):
            minutes = self.window_seconds // 60
            raise TooManySightings(
                f"too many sightings from this phone or address; try again in {minutes} minutes"
            )


def _number(text: str, name: str) -> float:
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise SightingInvalid(f"{name} is not a number ({text[:20]!r})") from None
    if not math.isfinite(value):
        raise SightingInvalid(f"{name} is not a number ({text[:20]!r})")
    return value


def parse_sighting(form: Mapping[str, str], photo: bytes | None, now: datetime | None = None) -> AppSighting:
    """The app's form fields (contract: description, lat, lon, seen_at, endpoint) and photo."""
    seen_text = (form.get("seen_at") or "").strip()
    if seen_text:
        try:
            seen_at = datetime.fromisoformat(seen_text)
        except ValueError:
            raise SightingInvalid(f"seen_at is not ISO 8601: {seen_text[:40]!r}") from None
        if seen_at.tzinfo is None:
            raise SightingInvalid("seen_at needs an offset (…Z or …+01:00)")
    else:
        seen_at = now or datetime.now(UTC)
    lat_text, lon_text = (form.get("lat") or "").strip(), (form.get("lon") or "").strip()
    if bool(lat_text) != bool(lon_text):
        raise SightingInvalid("a place needs both lat and lon, or neither")
    endpoint = (form.get("endpoint") or "").strip() or None
    if endpoint is not None and len(endpoint) > MAX_ENDPOINT:
        raise SightingInvalid(f"endpoint: at most {MAX_ENDPOINT} characters")
    cleaned: AppPhoto | None = None
    if photo is not None:
        if len(photo) > MAX_PHOTO_BYTES:
            raise PhotoTooLarge(f"the photo is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
        checked = check_photo(photo)  # PhotoError (400) for anything that is not a clean photo
        cleaned = AppPhoto(checked.data, checked.extension)
    return AppSighting(
        description=form.get("description") or "",
        seen_at=seen_at,
        lat=_number(lat_text, "lat") if lat_text else None,
        lon=_number(lon_text, "lon") if lon_text else None,
        photo=cleaned,
        endpoint=endpoint,
    )


@dataclass(frozen=True)
class PostcodePosition:
    postcode: str  # "3511 AB" or "3511"
    lat: float
    lon: float

    def as_dict(self) -> dict[str, Any]:
        return {"postcode": self.postcode, "lat": self.lat, "lon": self.lon}


class ParticipantAppService:
    def __init__(self, services: Services, settings: Settings) -> None:
        self._services = services
        self._settings = settings

    def action_document(self, action_id: int) -> dict[str, Any]:
        """The active action as the app reads it (the full area, never "fetch")."""
        with session_scope(self._services.sessions) as session:
            action = session.scalar(
                select(Action).where(Action.id == action_id, Action.status == ActionStatus.ACTIVE.value)
            )
            if action is None:
                raise AppActionNotFound(f"no active action {action_id}")
            return action_document(action, session)

    def action_photo(self, action_id: int) -> Path:
        """The active action's photo (public while the action is, like the AMBER feed's)."""
        with session_scope(self._services.sessions) as session:
            stored = session.scalar(
                select(Action.photo_path).where(
                    Action.id == action_id, Action.status == ActionStatus.ACTIVE.value
                )
            )
        path = photo_file(self._settings, stored)
        if path is None:
            raise AppActionNotFound(f"no photo of an active action {action_id}")
        return path

    def postcode(self, text: str) -> PostcodePosition:
        """Where a PC4 or PC6 lies (from the address register, or the PC4 areas); stores nothing."""
        match = POSTCODE.fullmatch(text.strip())
        if match is None:
            raise PostcodeInvalid("a Dutch postcode: 1234 or 1234AB")
        digits, letters = match.group(1), (match.group(2) or "").upper()
        hits = AddressSearch(self._services.sessions).search(digits + letters)
        hit = next((h for h in hits if h.kind in ("pc6", "pc4", "address")), None)
        if hit is None:
            raise PostcodeNotFound(f"postcode {digits} {letters}".strip() + " is not known")
        label = f"{digits} {letters}" if letters and hit.kind != "pc4" else digits
        return PostcodePosition(label, round(hit.lat, 5), round(hit.lon, 5))

    def record_sighting(self, action_id: int, sighting: AppSighting) -> SightingView:
        return self._services.sightings.record_from_app(
            action_id, sighting, photos_dir=photos_dir(self._settings)
        )

"""The participant app's push subscriptions: who may be pushed to, and what the server keeps.

A device subscribes with what its browser gives (``PushSubscription.toJSON()``: the push
service's endpoint URL and two keys), a language and, if the person chose to, one coarse cell:
a 4-character geohash (about 20 km × 40 km in the Netherlands). Nothing else: no account, no
phone number, no place. Subscribing again with the same endpoint updates the row (idempotent).

**Who gets an action's push.** A national action: every subscription. Otherwise the
subscriptions whose cell's box intersects the area's bounding box, plus those without a cell
(the device matches its own places against the area and stays silent when none is inside).
The cells that touch a bounding box are enumerated here (a handful for a local action, about
250 for the whole country), so the database answers with one ``cell IN (...)`` on an index.

**Retention.** A push service's 404/410 means the subscription is gone for good: the row is
deleted at once (:func:`delete_gone`). Subscriptions that kept failing or never succeeded for
``push.idle_expiry_days`` are removed by :func:`expire_idle`.

The geohash code is a small documented decoder (no geohash library is installed): base-32
characters, alternately refining longitude and latitude, 20 bits for 4 characters.
"""

from __future__ import annotations

import base64
import ipaddress
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from urllib.parse import urlsplit

import numpy as np
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from burgernet.errors import DomainError
from burgernet.models import PostcodeArea as Pc4
from burgernet.models import PushSubscription
from burgernet.settings import PushSettings
from routing import Area, CircleArea, NationalArea, PolygonArea, PostcodeArea
from routing.areas import EARTH_RADIUS_M

__all__ = [
    "CELL_PATTERN",
    "InvalidSubscription",
    "PushKeyMissing",
    "SubscriptionInput",
    "application_server_key",
    "b64url_decode",
    "b64url_encode",
    "cell_box",
    "cells_touching",
    "delete_gone",
    "expire_idle",
    "find_by_endpoint",
    "parse_subscription",
    "record_outcomes",
    "select_for_area",
    "subscribe",
    "unsubscribe",
    "vapid_private_key",
]

GEOHASH_ALPHABET = "0123456789bcdefghjkmnpqrstuvwxyz"
CELL_LENGTH = 4
CELL_PATTERN = re.compile(r"[0-9b-hjkmnp-z]{4}")
_CELL_BITS = 5 * CELL_LENGTH  # 10 for longitude, 10 for latitude
CELL_LON_DEG = 360.0 / 2**10  # 0.3515625°
CELL_LAT_DEG = 180.0 / 2**10  # 0.17578125°
MAX_ENDPOINT = 1024
LANGUAGES = ("nl", "en")


class InvalidSubscription(DomainError):
    """The subscription cannot be stored as given; the message says what is wrong."""

    code: ClassVar[str] = "push.subscription_invalid"


class PushKeyMissing(DomainError):
    """No usable VAPID key: ``burgernet secrets init`` makes one."""

    code: ClassVar[str] = "push.vapid_key_missing"


# --- base64url and the VAPID key -------------------------------------------------------------
def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Base64url with or without padding (browsers send it without)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def vapid_private_key(settings: PushSettings) -> ec.EllipticCurvePrivateKey:
    """The server's VAPID key from ``push.vapid_private_key`` (a raw 32-byte scalar, base64url)."""
    if not settings.vapid_private_key:
        raise PushKeyMissing("push.vapid_private_key is empty: run `burgernet secrets init`")
    try:
        raw = b64url_decode(settings.vapid_private_key)
        if len(raw) != 32:
            raise ValueError("not 32 bytes")
        return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError as exc:
        raise PushKeyMissing(
            f"push.vapid_private_key is not a P-256 private key ({exc}): "
            "rotate it with `burgernet secrets rotate push.vapid_private_key`"
        ) from exc


def application_server_key(settings: PushSettings) -> str:
    """The public key browsers subscribe with: the uncompressed point, base64url, no padding."""
    public = vapid_private_key(settings).public_key()
    return b64url_encode(public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


# --- geohash cells ---------------------------------------------------------------------------
def cell_box(cell: str) -> tuple[float, float, float, float]:
    """(min lon, min lat, max lon, max lat) of a geohash cell."""
    lon = [-180.0, 180.0]
    lat = [-90.0, 90.0]
    even = True  # geohash bits start with longitude
    for char in cell:
        value = GEOHASH_ALPHABET.index(char)
        for shift in range(4, -1, -1):
            bit = (value >> shift) & 1
            span = lon if even else lat
            middle = (span[0] + span[1]) / 2
            span[0 if bit else 1] = middle
            even = not even
    return lon[0], lat[0], lon[1], lat[1]


def _encode(lon_index: int, lat_index: int) -> str:
    """The cell whose 10-bit longitude and latitude indexes are given."""
    bits = 0
    for i in range(9, -1, -1):  # interleave: lon bit, lat bit, ... (longitude first)
        bits = (bits << 2) | (((lon_index >> i) & 1) << 1) | ((lat_index >> i) & 1)
    return "".join(GEOHASH_ALPHABET[(bits >> shift) & 31] for shift in range(_CELL_BITS - 5, -1, -5))


def cells_touching(box: tuple[float, float, float, float]) -> list[str]:
    """Every 4-character cell whose box intersects ``box`` (min lon, min lat, max lon, max lat)."""
    min_lon, min_lat, max_lon, max_lat = box
    first_lon = max(0, int((min_lon + 180.0) // CELL_LON_DEG))
    last_lon = min(2**10 - 1, int((max_lon + 180.0) // CELL_LON_DEG))
    first_lat = max(0, int((min_lat + 90.0) // CELL_LAT_DEG))
    last_lat = min(2**10 - 1, int((max_lat + 90.0) // CELL_LAT_DEG))
    return [_encode(i, j) for i in range(first_lon, last_lon + 1) for j in range(first_lat, last_lat + 1)]


def area_box(session: Session, area: Area) -> tuple[float, float, float, float] | None:
    """The area's bounding box; None for a national action (everyone)."""
    if isinstance(area, NationalArea):
        return None
    if isinstance(area, CircleArea):
        lat, lon, radius = area.centre.lat, area.centre.lon, area.radius_m
        dlat = math.degrees(radius / EARTH_RADIUS_M)
        dlon = dlat / max(0.01, math.cos(math.radians(lat)))
        return lon - dlon, lat - dlat, lon + dlon, lat + dlat
    if isinstance(area, PolygonArea):
        min_lon, min_lat, max_lon, max_lat = area.geometry.bounds
        return float(min_lon), float(min_lat), float(max_lon), float(max_lat)
    if isinstance(area, PostcodeArea):
        pc4s = sorted({code[:4] for code in area.postcodes})
        # A PC4 without a boundary counts as a 2.5 km circle (the app does the same).
        pad_lat = 2500 / 111_000
        boxes = []
        for lat, lon, _boundary in session.execute(
            select(Pc4.lat, Pc4.lon, Pc4.boundary_geojson).where(Pc4.pc4.in_(pc4s))
        ):
            pad_lon = pad_lat / max(0.01, math.cos(math.radians(lat)))
            boxes.append((lon - pad_lon, lat - pad_lat, lon + pad_lon, lat + pad_lat))
        if not boxes:
            return (0.0, 0.0, 0.0, 0.0)  # unknown postcodes: only subscriptions without a cell
        return (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
    raise TypeError(f"unknown area {area!r}")


# --- subscribing -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubscriptionInput:
    endpoint: str
    p256dh: str
    auth: str
    cell: str | None
    lang: str


def _internal_host(host: str) -> bool:
    """An IP literal that is not globally routable, or a local name."""
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False  # a name: push services are named hosts


def check_endpoint(endpoint: str, allow_insecure: bool) -> None:
    if not endpoint or len(endpoint) > MAX_ENDPOINT:
        raise InvalidSubscription(f"the endpoint must be a URL of at most {MAX_ENDPOINT} characters")
    parts = urlsplit(endpoint)
    if parts.scheme == "https" and parts.hostname:
        # The workers POST to this URL: an address inside our own networks would make them a
        # tool against those (SSRF). Push services are public hosts.
        if _internal_host(parts.hostname) and not allow_insecure:
            raise InvalidSubscription("the endpoint must be a public push service, not an internal address")
        return
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if allow_insecure and parts.scheme == "http" and local:
        return
    raise InvalidSubscription("the endpoint must be an https:// URL of a push service")


def parse_subscription(body: object, *, allow_insecure: bool = False) -> SubscriptionInput:
    """The app's JSON ``{"subscription": {...}, "cell": ..., "lang": ...}``, checked."""
    if not isinstance(body, dict):
        raise InvalidSubscription("send a JSON object")
    sub = body.get("subscription")
    if not isinstance(sub, dict):
        raise InvalidSubscription("'subscription' must be the browser's PushSubscription.toJSON()")
    endpoint = sub.get("endpoint")
    keys = sub.get("keys")
    if not isinstance(endpoint, str) or not isinstance(keys, dict):
        raise InvalidSubscription("the subscription needs 'endpoint' and 'keys'")
    check_endpoint(endpoint, allow_insecure)
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not isinstance(p256dh, str) or not isinstance(auth, str):
        raise InvalidSubscription("the subscription's keys need 'p256dh' and 'auth'")
    try:
        point = b64url_decode(p256dh)
        secret = b64url_decode(auth)
    except (ValueError, TypeError) as exc:
        raise InvalidSubscription("the keys must be base64url") from exc
    if len(point) != 65 or point[0] != 4:
        raise InvalidSubscription("keys.p256dh must be an uncompressed P-256 point (65 bytes)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as exc:
        raise InvalidSubscription("keys.p256dh is not a point on P-256") from exc
    if len(secret) != 16:
        raise InvalidSubscription("keys.auth must be 16 bytes")
    cell = body.get("cell")
    if cell is not None and (not isinstance(cell, str) or not CELL_PATTERN.fullmatch(cell)):
        raise InvalidSubscription("'cell' must be null or a geohash of exactly 4 characters")
    lang = body.get("lang", "nl")
    if lang not in LANGUAGES:
        raise InvalidSubscription("'lang' must be 'nl' or 'en'")
    return SubscriptionInput(endpoint, b64url_encode(point), b64url_encode(secret), cell, str(lang))


def find_by_endpoint(session: Session, endpoint: str) -> PushSubscription | None:
    return session.scalars(select(PushSubscription).where(PushSubscription.endpoint == endpoint)).first()


def subscribe(session: Session, given: SubscriptionInput) -> tuple[PushSubscription, bool]:
    """Store or update the subscription; returns it and whether it is new."""
    now = datetime.now(UTC)
    existing = find_by_endpoint(session, given.endpoint)
    if existing is not None:
        existing.p256dh, existing.auth = given.p256dh, given.auth
        existing.cell, existing.lang = given.cell, given.lang
        existing.updated_at = now
        existing.failures = 0
        return existing, False
    row = PushSubscription(
        endpoint=given.endpoint,
        p256dh=given.p256dh,
        auth=given.auth,
        cell=given.cell,
        lang=given.lang,
        created_at=now,
        updated_at=now,
        failures=0,
    )
    session.add(row)
    session.flush()
    return row, True


def unsubscribe(session: Session, endpoint: str) -> bool:
    """Forget the subscription; False when there was none (still a success for the device)."""
    result = session.execute(delete(PushSubscription).where(PushSubscription.endpoint == endpoint))
    return bool(getattr(result, "rowcount", 0))


# --- selection and outcomes --------------------------------------------------------------------
def select_for_area(session: Session, area: Area) -> np.ndarray:
    """Subscription ids an action in ``area`` is pushed to, ascending (see the module doc)."""
    query = select(PushSubscription.id).order_by(PushSubscription.id)
    box = area_box(session, area)
    if box is not None:
        cells = cells_touching(box)
        query = query.where(or_(PushSubscription.cell.is_(None), PushSubscription.cell.in_(cells)))
    return np.fromiter(session.scalars(query), dtype=np.int64)


def delete_gone(session: Session, ids: Iterable[int]) -> int:
    """The push service said 404/410: these subscriptions will never work again."""
    wanted = list(ids)
    if not wanted:
        return 0
    result = session.execute(delete(PushSubscription).where(PushSubscription.id.in_(wanted)))
    return int(getattr(result, "rowcount", 0) or 0)


def record_outcomes(session: Session, succeeded: Sequence[int], failed: Sequence[int]) -> None:
    """Remember the last success (and reset the failure count) or count one more failure."""
    now = datetime.now(UTC)
    # Core statements on the session's connection: the ORM's bulk-update path (which would
    # look for loaded subscriptions to bring up to date; the worker loads none) costs more than
    # the statement, once per batch of pushes.
    connection = session.connection()
    if succeeded:
        connection.execute(
            update(PushSubscription)
            .where(PushSubscription.id.in_(list(succeeded)))
            .values(last_success_at=now, failures=0)
        )
    if failed:
        connection.execute(
            update(PushSubscription)
            .where(PushSubscription.id.in_(list(failed)))
            .values(failures=PushSubscription.failures + 1)
        )


def expire_idle(session: Session, settings: PushSettings, now: datetime | None = None) -> int:
    """Delete subscriptions that failed ``max_failures`` times in a row, or had no success (nor
    renewal) for ``idle_expiry_days``; returns how many."""
    now = now or datetime.now(UTC)
    conditions = []
    if settings.max_failures:
        conditions.append(PushSubscription.failures >= settings.max_failures)
    if settings.idle_expiry_days:
        cutoff = now - timedelta(days=settings.idle_expiry_days)
        last_sign = func.coalesce(PushSubscription.last_success_at, PushSubscription.updated_at)
        conditions.append(last_sign < cutoff)
    if not conditions:
        return 0
    result = session.execute(delete(PushSubscription).where(or_(*conditions)))
    return int(getattr(result, "rowcount", 0) or 0)

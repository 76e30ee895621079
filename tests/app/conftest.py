"""Fixtures for the participant app: the panel's world (an active and a draft action, users per
role), a VAPID key in the settings, push subscriptions made with real P-256 keys, photos with
EXIF, and Chromium in a persistent profile (push and notifications need one)."""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from playwright.sync_api import BrowserContext, Playwright, sync_playwright

from burgernet.db import session_scope
from burgernet.push_subscriptions import SubscriptionInput, b64url_encode, subscribe
from burgernet.settings import Settings
from callback_api.app import create_app
from composition.context import Context
from testbed.browser import chromium_executable
from tests.panel.conftest import PASSWORD, UTRECHT, World, login
from tests.panel.conftest import world as world

__all__ = ["PASSWORD", "UTRECHT", "World", "login"]

# Where the phone is in the browser tests: inside the active action's 3 km circle around
# Utrecht, with digits no other row of the database has (a search for them finds a leak).
INSIDE = (52.094817, 5.127391)


def vapid_key() -> str:
    """A raw P-256 private scalar, base64url: what ``push.vapid_private_key`` holds."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url_encode(key.private_numbers().private_value.to_bytes(32, "big"))


@pytest.fixture
def bn_settings(bn_settings: Settings) -> Settings:
    """The shared settings with a VAPID key (the app's subscribe flow asks for its public half)."""
    push = bn_settings.push.model_copy(update={"vapid_private_key": vapid_key()})
    return bn_settings.model_copy(update={"push": push})


@pytest.fixture
def app(bn_context: Context) -> Iterator[Flask]:
    yield create_app(bn_context.settings, context=bn_context, config={"TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def panel_client(app: Flask, world: World) -> Callable[[str], FlaskClient]:
    def make(role: str) -> FlaskClient:
        logged_in = app.test_client()
        assert login(logged_in, role) == 302
        return logged_in

    return make


@dataclass(frozen=True)
class FakeDevice:
    """A browser's push subscription as ``PushSubscription.toJSON()`` gives it, with real keys."""

    endpoint: str
    p256dh: str
    auth: str

    def as_json(self) -> dict[str, object]:
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
        }


def fake_device() -> FakeDevice:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    )
    # A push service's https endpoint that is never called: no worker runs in these tests.
    endpoint = f"https://push.invalid/wpush/v2/{secrets.token_urlsafe(24)}"
    return FakeDevice(endpoint, b64url_encode(point), b64url_encode(secrets.token_bytes(16)))


def register_device(context: Context, device: FakeDevice, cell: str | None = None) -> int:
    """Store the device's subscription server-side (as A's endpoint would); its id."""
    with session_scope(context.sessions) as session:
        row, _new = subscribe(
            session, SubscriptionInput(device.endpoint, device.p256dh, device.auth, cell, "nl")
        )
        return int(row.id)


def jpeg_with_gps(size: tuple[int, int] = (640, 480)) -> bytes:
    """A JPEG whose EXIF says where it was taken (GPS IFD) and with which camera."""
    image = Image.new("RGB", size, (200, 40, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 12 Secret"  # Model
    gps = {1: "N", 2: (52.0, 5.0, 26.0), 3: "E", 4: (5.0, 7.0, 17.0)}
    exif[0x8825] = gps  # GPSInfo
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


# --- Chromium ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


PHONE_VIEWPORT = {"width": 412, "height": 915}


def phone_context(
    playwright: Playwright, profile: Path, base_url: str, locale: str = "nl-NL"
) -> BrowserContext:
    """Chromium with a persistent profile (an ordinary context is incognito: no push there),
    notifications granted, and the geolocation of a place inside the active action's area."""
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=chromium_executable(),
        headless=True,
        args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        base_url=base_url,
        viewport=PHONE_VIEWPORT,  # type: ignore[arg-type]
        locale=locale,
        permissions=["notifications", "geolocation"],
        geolocation={"latitude": INSIDE[0], "longitude": INSIDE[1]},
    )

"""Geohash cells (what selection by area reads) and the VAPID JWT (signed once per origin)."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from broadcasting.channels.push_webpush import JWT_LIFETIME_SECONDS, VapidSigner, retry_after_seconds
from burgernet.push_subscriptions import (
    InvalidSubscription,
    b64url_decode,
    cell_box,
    cells_touching,
    check_endpoint,
    parse_subscription,
)
from burgernet.secrets import generate
from burgernet.settings import Settings


def test_a_cell_is_the_geohash_box_and_the_cells_touching_a_box_are_all_listed() -> None:
    # Amsterdam's centre is in u173 (a geohash of Dam square starts "u173z").
    min_lon, min_lat, max_lon, max_lat = cell_box("u173")
    assert min_lon <= 4.8930 <= max_lon and min_lat <= 52.3731 <= max_lat
    assert (max_lon - min_lon, max_lat - min_lat) == (0.3515625, 0.17578125)
    assert cells_touching((4.89, 52.37, 4.90, 52.38)) == ["u173"]
    # A box across a corner of u173 touches its neighbours: 2 × 2 cells.
    corner = cells_touching((max_lon - 0.01, max_lat - 0.01, max_lon + 0.01, max_lat + 0.01))
    assert len(corner) == 4 and "u173" in corner
    for cell in corner:
        box = cell_box(cell)
        assert box[0] <= max_lon + 0.01 and box[2] >= max_lon - 0.01
    # The Netherlands is about 200 cells: one `cell IN (...)` stays small.
    assert 150 < len(cells_touching((3.2, 50.7, 7.3, 53.6))) < 300


def test_the_vapid_jwt_is_es256_signed_for_the_origin_and_reused(bn_settings: Settings) -> None:
    settings = bn_settings.push.model_copy(update={"vapid_private_key": generate()})
    signer = VapidSigner(settings)
    now = time.time()
    header = signer.authorization("https://fcm.example.com/fcm/send/abc", now)
    assert signer.authorization("https://fcm.example.com/fcm/send/other", now + 3600) == header
    assert signer.signed == 1
    signer.authorization("https://updates.push.example.net/wpush/v2/x", now)
    assert signer.signed == 2
    # Renewed well before the end of its lifetime.
    signer.authorization("https://fcm.example.com/fcm/send/abc", now + JWT_LIFETIME_SECONDS - 60)
    assert signer.signed == 3

    token, key = header.removeprefix("vapid t=").split(", k=")
    head, body, signature = token.split(".")
    assert json.loads(b64url_decode(head)) == {"typ": "JWT", "alg": "ES256"}
    claims = json.loads(b64url_decode(body))
    assert claims["aud"] == "https://fcm.example.com"
    assert now < claims["exp"] <= now + 24 * 3600
    assert claims["sub"].startswith("mailto:")
    raw = b64url_decode(signature)
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if wrong


def test_retry_after_as_seconds_or_a_date() -> None:
    assert retry_after_seconds("30") == 30.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 02 Dec 2026 12:00:30 GMT", now=1_796_212_800.0) == 30.0


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://10.0.0.5/push/abc",
        "https://127.0.0.1/push/abc",
        "https://[::1]/push/abc",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/push/abc",
        "https://push.internal/abc",
    ],
)
def test_an_endpoint_inside_our_networks_is_refused(endpoint: str) -> None:
    """The workers POST to the endpoint: an internal address would turn them against our own hosts."""
    body = {"subscription": {"endpoint": endpoint, "keys": {"p256dh": "x", "auth": "y"}}}
    with pytest.raises(InvalidSubscription, match="public push service"):
        parse_subscription(body)


def test_a_push_service_by_name_is_accepted_by_the_endpoint_check() -> None:
    parse = check_endpoint  # the endpoint rule alone (the keys are checked by parse_subscription)
    parse("https://fcm.googleapis.com/fcm/send/abc", allow_insecure=False)
    parse("https://updates.push.services.mozilla.com/wpush/v2/abc", allow_insecure=False)

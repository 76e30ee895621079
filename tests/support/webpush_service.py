"""A local Web Push service for tests: a real HTTP server that checks and decrypts what it gets.

It plays the push service a browser would subscribe at (Mozilla's, Google's, Apple's):

* each subscription the test makes (:meth:`WebPushService.subscribe`) gets an endpoint
  ``http://127.0.0.1:<port>/push/<token>`` and a P-256 key pair with a 16-byte auth secret, as a
  browser makes them; the private half stays here, the test gives the public half to Burgernet;
* every push must carry a valid VAPID JWT (RFC 8292): ``Authorization: vapid t=<jwt>, k=<key>``,
  ES256 verified against ``k``, ``aud`` this service's origin, ``exp`` in the future and at most
  24 hours ahead, ``sub`` a mailto: or https: URL; otherwise 401/403, as real services answer;
* the body is DECRYPTED (RFC 8291 aes128gcm, :mod:`http_ece`) with the subscription's private key
  and auth secret; what it holds is recorded (:attr:`WebPushService.received`);
* a test tells it to answer a chosen endpoint with 410, 404, 429 (with ``Retry-After``), 500...
  (:meth:`WebPushService.answer`); after those answers it accepts again (201).

Runs an aiohttp server on its own event loop in a thread, on a free port.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MAX_JWT_SECONDS = 24 * 3600


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class TestSubscription:
    """A browser's subscription: what it gives the server (:meth:`as_json`) and its secrets."""

    __test__ = False  # not a test class, despite the name

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        )

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def decrypt(self, body: bytes) -> bytes:
        """A push body as the browser reads it: RFC 8291 with this subscription's secrets, by
        :mod:`http_ece` (independent of the sender's encryption)."""
        plain: bytes = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth_secret, version="aes128gcm"
        )
        return plain

    def as_json(self) -> dict[str, Any]:
        """``PushSubscription.toJSON()`` as a browser gives it."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
        }


def make_subscription(endpoint: str) -> TestSubscription:
    """A P-256 key pair and a 16-byte auth secret, as a browser makes them."""
    return TestSubscription(endpoint, ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(16))


@dataclass(frozen=True)
class ReceivedPush:
    endpoint: str
    payload: dict[str, Any]  # the decrypted JSON
    ttl: str | None
    urgency: str | None
    topic: str | None
    claims: dict[str, Any]  # the VAPID JWT's
    public_key: str  # the VAPID key that signed it (k=)
    received_at: float


@dataclass
class _Answers:
    statuses: list[int] = field(default_factory=list)
    retry_after: str | None = None


class WebPushService:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.subscriptions: dict[str, TestSubscription] = {}
        self.received: list[ReceivedPush] = []
        self.refused: list[tuple[str, int, str]] = []  # endpoint, status, why
        self.answered: list[tuple[str, int]] = []  # every answer given, in order
        self._answers: dict[str, _Answers] = {}
        self._verified: dict[str, tuple[dict[str, Any], str]] = {}  # token → claims, key
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="webpush-service")
        self._runner: web.AppRunner | None = None

    # -- life cycle ---------------------------------------------------------------------------------
    def start(self) -> WebPushService:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application(client_max_size=8192)
        app.router.add_post("/push/{token}", self._push)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> WebPushService:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- what a test does ---------------------------------------------------------------------------
    def subscribe(self) -> TestSubscription:
        """A new device's subscription at this service."""
        subscription = make_subscription(f"{self.origin}/push/{secrets.token_urlsafe(16)}")
        with self._lock:
            self.subscriptions[subscription.endpoint] = subscription
        return subscription

    def answer(self, endpoint: str, *statuses: int, retry_after: str | None = None) -> None:
        """Answer the next pushes to ``endpoint`` with these statuses, then 201 again."""
        with self._lock:
            self._answers[endpoint] = _Answers(list(statuses), retry_after)

    def pushes_to(self, endpoint: str) -> list[ReceivedPush]:
        with self._lock:
            return [push for push in self.received if push.endpoint == endpoint]

    def wait_for(
        self, count: int, timeout: float = 20.0, where: Callable[[ReceivedPush], bool] | None = None
    ) -> list[ReceivedPush]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [p for p in self.received if where is None or where(p)]
            if len(found) >= count or time.monotonic() > deadline:
                if len(found) < count:
                    raise AssertionError(
                        f"{len(found)} of {count} pushes arrived in {timeout} s; refused: {self.refused[-3:]}"
                    )
                return found
            time.sleep(0.05)

    # -- the push service -----------------------------------------------------------------------------
    def _refuse(self, endpoint: str, status: int, why: str) -> web.Response:
        with self._lock:
            self.refused.append((endpoint, status, why))
            self.answered.append((endpoint, status))
        return web.Response(status=status, text=why)

    def _check_vapid(self, header: str) -> tuple[dict[str, Any], str]:
        """The JWT's claims and the key, or ValueError saying what is wrong (RFC 8292)."""
        if not header.startswith("vapid "):
            raise ValueError("Authorization is not 'vapid t=..., k=...'")
        params = dict(part.strip().split("=", 1) for part in header[len("vapid ") :].split(","))
        token, key = params.get("t", ""), params.get("k", "")
        known = self._verified.get(token)
        if known is None:
            head, body, signature = token.split(".")
            if json.loads(unb64url(head)).get("alg") != "ES256":
                raise ValueError("the JWT is not ES256")
            raw = unb64url(signature)
            if len(raw) != 64:
                raise ValueError("the ES256 signature is not 64 bytes")
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
            der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
            try:
                public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
            except InvalidSignature as exc:
                raise ValueError("the JWT's signature does not verify with k") from exc
            known = (json.loads(unb64url(body)), key)
            self._verified[token] = known
        claims = known[0]
        now = time.time()
        if claims.get("aud") != self.origin:
            raise ValueError(f"aud {claims.get('aud')!r} is not {self.origin}")
        if not now < float(claims.get("exp", 0)) <= now + MAX_JWT_SECONDS:
            raise ValueError("exp is past or more than 24 hours ahead")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            raise ValueError("sub is not a mailto: or https: URL")
        return known

    async def _push(self, request: web.Request) -> web.Response:
        endpoint = f"{self.origin}{request.path}"
        body = await request.read()
        subscription = self.subscriptions.get(endpoint)
        if subscription is None:
            return self._refuse(endpoint, 404, "no such subscription")
        try:
            claims, key = self._check_vapid(request.headers.get("Authorization", ""))
        except ValueError as exc:
            return self._refuse(endpoint, 401, str(exc))
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return self._refuse(endpoint, 400, "Content-Encoding is not aes128gcm")
        if "TTL" not in request.headers:
            return self._refuse(endpoint, 400, "no TTL header")
        if len(body) > 4096:
            return self._refuse(endpoint, 413, "payload over 4096 bytes")
        with self._lock:
            planned = self._answers.get(endpoint)
            status = planned.statuses.pop(0) if planned and planned.statuses else 201
        if status != 201:
            with self._lock:
                self.answered.append((endpoint, status))
            headers = {"Retry-After": planned.retry_after} if planned and planned.retry_after else {}
            return web.Response(status=status, headers=headers)
        try:
            payload = json.loads(subscription.decrypt(body))
        except Exception as exc:  # any failure to decrypt is the sender's fault
            return self._refuse(endpoint, 400, f"cannot decrypt: {exc!r}")
        with self._lock:
            self.received.append(
                ReceivedPush(
                    endpoint=endpoint,
                    payload=payload,
                    ttl=request.headers.get("TTL"),
                    urgency=request.headers.get("Urgency"),
                    topic=request.headers.get("Topic"),
                    claims=claims,
                    public_key=key,
                    received_at=time.time(),
                )
            )
            self.answered.append((endpoint, 201))
        return web.Response(status=201, headers={"Location": f"{self.origin}/message/{secrets.token_hex(8)}"})

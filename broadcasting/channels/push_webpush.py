"""Web Push (RFC 8030) to the participant app, encrypted (RFC 8291) and signed (VAPID, RFC 8292).

The worker hands this sender a *batch* of claimed push deliveries
(:meth:`BroadcastWorker._push_batch`); the sender pushes them concurrently over kept-alive
connections (``push.concurrency`` requests in flight per process) and answers with one
:class:`~broadcasting.store.PushRecord` each. What makes it fast:

* the payload is built once per broadcast and language (:func:`broadcasting.messages.compose_push`),
  only the encryption is per device: a fresh ECDH key pair and salt per message, as RFC 8291
  demands (80 to 100 µs of CPU, most of it the two P-256 operations). A batch is encrypted at
  once by the compiled sealer (``_webpush_seal.c``: OpenSSL, with Python's lock released for
  the whole batch), on a thread beside the event loop; :func:`encrypt` is the same in Python,
  the reference the sealer is tested against;
* the VAPID JWT is signed once per push-service origin and reused for 12 hours (RFC 8292
  allows up to 24); the ``Authorization`` header is cached with it;
* the HTTP is a narrow HTTP/1.1 client (:class:`PushServiceClient`): kept-alive connections
  per push-service origin, one request at a time on each, the request written as one buffer
  and the answer parsed by ``httptools`` (llhttp, the parser of Node.js and uvicorn). A
  general client (aiohttp) measured 150 to 230 µs of CPU per request here, more than the
  encryption; this one 40 to 70 µs. It needs only what push services answer: a status,
  ``Retry-After``, and whether the connection stays open. It follows no redirects (a push
  service has no reason to send one, and following it would POST to an address nobody checked).

Answers: 201/202 (and 200) sent; 404/410 the subscription is gone for good (deleted, the
delivery ends ``failed``); 429 and 5xx are tried again, after the push service's
``Retry-After`` if it gave one; a connection error or a timeout likewise; any other answer
(400 bad request, 403 wrong VAPID key, 413 too large, a 3xx) ends ``failed``.

Headers: ``TTL`` (``push.ttl_seconds``: how long the push service keeps a push for a phone that
is off), ``Urgency`` (``high`` for an AMBER Alert and a missing child, so that a phone in
power-saving mode still wakes), and ``Topic`` (the broadcast: a push sent again after a worker
died replaces the first one at the push service if that was not delivered yet).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import cast
from urllib.parse import urlsplit

import httptools
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broadcasting.channels.base import Message, Outcome, RateLimitedSender, shared_rate
from broadcasting.ratelimit import SharedRate
from broadcasting.store import DeliveryJob, PushRecord, PushTarget
from burgernet.domain import ActionType, Channel
from burgernet.push_subscriptions import (
    PushKeyMissing,
    application_server_key,
    b64url_decode,
    b64url_encode,
    vapid_private_key,
)
from burgernet.settings import PushSettings, Settings

# RFC 8291 for a whole batch in OpenSSL, outside Python's lock (_webpush_seal.c, built by
# setup.py at install). A checkout run without installing it falls back to ``encrypt``.
seal_many: Callable[[Sequence[tuple[bytes, bytes, bytes]]], list[bytes | str]] | None
try:
    from broadcasting.channels._webpush_seal import seal_many
except ImportError:  # pragma: no cover - the tests require the compiled sealer
    seal_many = None

log = logging.getLogger(__name__)

RATE = "rate:push:webpush"
# A VAPID token is reused this long (RFC 8292 allows 24 h; renewed well before it ends).
JWT_LIFETIME_SECONDS = 12 * 3600
JWT_RENEW_BEFORE_SECONDS = 3600
HIGH_URGENCY_TYPES = frozenset({ActionType.AMBER_ALERT.value, ActionType.MISSING_CHILD.value})
SENT_CODES = frozenset({200, 201, 202})
GONE_CODES = frozenset({404, 410})
# An unused connection is closed after this long: push services close theirs after a minute or
# more, and a request written into a connection the other side is closing is lost.
IDLE_CONNECTION_SECONDS = 30.0


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def origin_of(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


class VapidSigner:
    """Signs the VAPID JWT (ES256) once per push-service origin and keeps it for hours."""

    def __init__(self, settings: PushSettings) -> None:
        self._settings = settings
        self._key: ec.EllipticCurvePrivateKey | None = None
        self.subject = settings.vapid_subject
        self._headers: dict[str, tuple[str, float]] = {}
        self.signed = 0  # JWTs made (once per origin per lifetime), for tests and the benchmark

    @property
    def public_key(self) -> str:
        return application_server_key(self._settings)

    def authorization(self, endpoint: str, now: float | None = None) -> str:
        return self.for_origin(origin_of(endpoint), now)

    def for_origin(self, origin: str, now: float | None = None) -> str:
        """The ``Authorization`` header for pushes to ``origin`` (``scheme://host[:port]``)."""
        now = time.time() if now is None else now
        cached = self._headers.get(origin)
        if cached is not None and cached[1] - JWT_RENEW_BEFORE_SECONDS > now:
            return cached[0]
        expires = int(now) + JWT_LIFETIME_SECONDS
        header = self._jwt(origin, expires)
        self._headers[origin] = (header, expires)
        return header

    def _jwt(self, audience: str, expires: int) -> str:
        def part(data: dict[str, object]) -> str:
            return b64url_encode(json.dumps(data, separators=(",", ":")).encode())

        claims = {"aud": audience, "exp": expires, "sub": self.subject}
        signing_input = f"{part({'typ': 'JWT', 'alg': 'ES256'})}.{part(claims)}"
        if self._key is None:
            # Read at the first push, not at start: a process started without the key (which
            # require_strong_secrets refuses) fails its pushes visibly instead of not starting.
            self._key = vapid_private_key(self._settings)
        r, s = decode_dss_signature(self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        signature = b64url_encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        self.signed += 1
        return f"vapid t={signing_input}.{signature}, k={self.public_key}"


# --- RFC 8291 message encryption ------------------------------------------------------------------------
RECORD_SIZE = 4096


# RFC 8188's info strings for the content-encryption key and the nonce, and RFC 8291's key info.
_CEK_INFO = b"Content-Encoding: aes128gcm\x00"
_NONCE_INFO = b"Content-Encoding: nonce\x00"
_KEY_INFO = b"WebPush: info\x00"
_P256 = ec.SECP256R1()
_RECORD_HEADER = RECORD_SIZE.to_bytes(4, "big") + bytes([65])  # rs, then the key id's length


def _hkdf(salt: bytes, secret: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-SHA-256 for one block of output (every key here is 32 bytes or less)."""
    pseudo_random_key = hmac.digest(salt, secret, "sha256")
    return hmac.digest(pseudo_random_key, info + b"\x01", "sha256")[:length]


def encrypt(
    payload: bytes,
    p256dh: str,
    auth: str,
    *,
    private_key: ec.EllipticCurvePrivateKey | None = None,
    salt: bytes | None = None,
) -> bytes:
    """RFC 8291 ``aes128gcm``: one record, a new ECDH key pair and salt per message (reusing a
    key pair across messages is not allowed). ``private_key`` and ``salt`` are for the RFC's
    test vector only.

    The steps are RFC 8291 section 3.4 and RFC 8188 section 2, on ``cryptography``'s P-256 and
    AES-GCM and the standard library's HMAC. Checked byte for byte against the RFC's example.
    The worker sends with the compiled sealer (:func:`encrypt_all`), which does these steps in
    OpenSSL without Python's lock: here the key generation, the key's bytes, the HMACs and
    AES-GCM each take the lock, and the worker's event loop needs it for everything else. This
    is the reference the sealer is tested against, and the fallback where it is not built.
    """
    if len(payload) + 17 > RECORD_SIZE:  # the delimiter and the 16-byte tag share the record
        raise ValueError(f"a push payload of {len(payload)} bytes does not fit one record")
    receiver = b64url_decode(p256dh)
    auth_secret = b64url_decode(auth)
    if len(auth_secret) != 16:
        raise ValueError("the subscription's auth secret is not 16 bytes")
    receiver_key = ec.EllipticCurvePublicKey.from_encoded_point(_P256, receiver)  # ValueError: off the curve
    sender_key = private_key if private_key is not None else ec.generate_private_key(_P256)
    sender = sender_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    shared_secret = sender_key.exchange(ec.ECDH(), receiver_key)
    key_material = _hkdf(auth_secret, shared_secret, _KEY_INFO + receiver + sender, 32)
    salt = salt if salt is not None else os.urandom(16)
    content_key = _hkdf(salt, key_material, _CEK_INFO, 16)
    nonce = _hkdf(salt, key_material, _NONCE_INFO, 12)
    # One record, so it is the last: the padding delimiter 0x02 and no padding.
    record = AESGCM(content_key).encrypt(nonce, payload + b"\x02", None)
    return salt + _RECORD_HEADER + sender + record


# --- HTTP/1.1 to the push services --------------------------------------------------------------------
class PushServiceError(ConnectionError):
    """The push service's connection broke, or it answered something that is not HTTP."""


@dataclass(frozen=True)
class Origin:
    """Where a push service listens: one pool of connections each."""

    scheme: str
    host: str
    port: int
    netloc: str  # the Host header

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}"


class _Connection(asyncio.Protocol):
    """One connection to a push service; one request at a time (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[tuple[int, str | None]] | None = None
        self._status = 0
        self._retry_after: str | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._answer is None:  # nothing asked: a 408 before closing, or garbage
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(PushServiceError(f"not an HTTP answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._answer is not None and self._status:
            # An answer whose body ends with the connection (no length given): complete now.
            self._finish()
        else:
            self._fail(PushServiceError(f"connection closed before an answer ({exc or 'by the service'})"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self._retry_after = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_message_complete(self) -> None:
        self.reusable = self._parser.should_keep_alive() and not self.closed
        self._finish()

    # the pool's side
    async def exchange(self, request: bytes) -> tuple[int, str | None]:
        assert self.transport is not None
        self._status, self._retry_after, self.reusable = 0, None, False
        answer: asyncio.Future[tuple[int, str | None]] = asyncio.get_running_loop().create_future()
        self._answer = answer
        self.transport.write(request)
        return await answer

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def give_up(self, exc: Exception) -> None:
        """End the request in flight with ``exc`` and close: its answer may still come."""
        self._fail(exc)
        self.close()

    def _finish(self) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_result((self._status, self._retry_after))

    def _fail(self, exc: Exception) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(exc)


class _Watchdog:
    """Ends the requests of one batch that outlive the timeout: one timer for the batch, not
    one per push. A request it ends fails with :class:`TimeoutError` (an :class:`OSError`), and
    its connection is closed, since its answer may still come."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._asked: dict[_Connection, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    async def exchange(self, connection: _Connection, request: bytes) -> tuple[int, str | None]:
        loop = asyncio.get_running_loop()
        self._asked[connection] = loop.time()
        if self._timer is None:
            self._timer = loop.call_later(self._tick(), self._check)
        try:
            return await connection.exchange(request)
        finally:
            self._asked.pop(connection, None)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> float:
        return min(0.25, self.timeout / 4)

    def _check(self) -> None:
        loop = asyncio.get_running_loop()
        too_old = loop.time() - self.timeout
        for connection, asked_at in list(self._asked.items()):
            if asked_at <= too_old:
                connection.give_up(TimeoutError(f"no answer within {self.timeout:g} s"))
        self._timer = loop.call_later(self._tick(), self._check) if self._asked else None


class PushServiceClient:
    """Kept-alive HTTP/1.1 connections, pooled per push-service origin.

    A request takes an idle connection of its origin (the most recently used, so that the
    others can age out) or opens one; after the answer the connection goes back to the pool
    unless the service said ``Connection: close``. How many are open at once is bounded by the
    caller's concurrency: each request in flight holds one.
    """

    def __init__(self, idle_seconds: float = IDLE_CONNECTION_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None
        self.opened = 0  # connections made, for tests and the benchmark

    async def connect_or_reuse(self, origin: Origin) -> _Connection:
        """An idle connection to ``origin`` (the most recently used), or a new one."""
        connection = self._take_idle(origin)
        if connection is None:
            connection = await self._connect(origin)
        return connection

    def give_back(self, origin: Origin, connection: _Connection) -> None:
        """A connection whose last answer came in full and that the service keeps open."""
        if connection.reusable and not connection.closed:
            connection.idle_since = time.monotonic()
            self._idle.setdefault(origin, deque()).append(connection)
        else:
            connection.close()

    async def post(self, origin: Origin, request: bytes) -> tuple[int, str | None]:
        """Send one complete request (head and body); returns the status and ``Retry-After``."""
        connection = await self.connect_or_reuse(origin)
        try:
            answer = await connection.exchange(request)
        except BaseException:  # a timeout (cancelled) too: its answer may still come, so never reuse
            connection.close()
            raise
        self.give_back(origin, connection)
        return answer

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        too_old = time.monotonic() - self.idle_seconds
        while idle and (idle[0].closed or idle[0].idle_since < too_old):
            idle.popleft().close()
        while idle:
            connection = idle.pop()
            if not connection.closed and connection.transport and not connection.transport.is_closing():
                return connection
        return None

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        if origin.scheme == "https":
            _, connection = await loop.create_connection(
                _Connection, origin.host, origin.port, ssl=self._tls_context(), server_hostname=origin.host
            )
        else:
            _, connection = await loop.create_connection(_Connection, origin.host, origin.port)
        self.opened += 1
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
            self._tls.set_alpn_protocols(["http/1.1"])
        return self._tls

    async def close(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()


def request_head(
    origin: Origin, target: str, authorization: str, length: int, ttl: int, urgency: str, topic: str
) -> bytes:
    """The request line and headers of one push (RFC 8030 section 5, RFC 8291, RFC 8292)."""
    return (
        f"POST {target} HTTP/1.1\r\n"
        f"Host: {origin.netloc}\r\n"
        f"Authorization: {authorization}\r\n"
        "Content-Encoding: aes128gcm\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {length}\r\n"
        f"TTL: {ttl}\r\n"
        f"Urgency: {urgency}\r\n"
        f"Topic: {topic}\r\n"
        "\r\n"
    ).encode("ascii")


def _safe_in_header(text: str) -> bool:
    """Printable ASCII without spaces: nothing that could end a header line or the request line."""
    return text.isascii() and text.isprintable() and " " not in text


class _Batch:
    """One send_batch call's records, and the moment the last one is in."""

    def __init__(self, size: int, on_sent: Callable[[int], None] | None) -> None:
        self.records: dict[int, PushRecord] = {}
        self.left = size
        self.on_sent = on_sent
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def record(self, record: PushRecord) -> None:
        if record.status == "sent" and self.on_sent is not None:
            # In the step in which the answer arrived: nothing can come between (the journal).
            self.on_sent(record.target.delivery_id)
        self.records[record.target.delivery_id] = record
        self.left -= 1
        if self.left == 0 and not self.done.done():
            self.done.set_result(None)


@dataclass(frozen=True)
class _Job:
    target: PushTarget
    request_target: str
    body: bytes  # the encrypted payload
    urgency: str
    batch: _Batch


def encrypt_all(items: Sequence[tuple[bytes, str, str]]) -> list[bytes | str]:
    """Each payload encrypted for its subscription's keys (``p256dh`` and ``auth`` as the
    subscription gave them, base64url), or why it could not be.

    On the compiled sealer when it is built (the whole batch outside Python's lock), otherwise
    one message at a time on :func:`encrypt`; the same RFC 8291 either way.
    """
    unusable = "subscription keys unusable: "
    if seal_many is None:
        bodies: list[bytes | str] = []
        for payload, p256dh, auth in items:
            try:
                bodies.append(encrypt(payload, p256dh, auth))
            except (ValueError, TypeError) as exc:
                bodies.append(f"{unusable}{exc}")
        return bodies
    decoded: list[tuple[bytes, bytes, bytes]] = []
    errors: dict[int, str] = {}
    for n, (payload, p256dh, auth) in enumerate(items):
        try:
            decoded.append((payload, b64url_decode(p256dh), b64url_decode(auth)))
        except (ValueError, TypeError) as exc:  # not base64url at all
            errors[n] = f"{unusable}{exc}"
    sealed = iter(seal_many(decoded))
    bodies = []
    for n in range(len(items)):
        if n in errors:
            bodies.append(errors[n])
            continue
        body = next(sealed)
        bodies.append(body if isinstance(body, bytes) else f"{unusable}{body}")
    return bodies


class WebPushSender(RateLimitedSender):
    """Pushes batches of claimed deliveries over kept-alive connections, one pool per origin."""

    channel = Channel.PUSH
    batched = True  # the worker hands it batches (send_batch), not one delivery at a time

    def __init__(self, settings: PushSettings, rate: SharedRate) -> None:
        self.settings = settings
        self.rate = rate
        self.vapid = VapidSigner(settings)
        self.http = PushServiceClient()
        self._origins: dict[tuple[str, str], Origin] = {}
        # Pushes waiting per origin, the lanes working them off (kept: see send_batch).
        self._queues: dict[Origin, deque[_Job]] = {}
        self._lanes: set[asyncio.Task[None]] = set()
        self._lanes_of: Counter[Origin] = Counter()
        self._watchdog = _Watchdog(settings.request_timeout_seconds)
        self._closing = False
        # A batch is encrypted on a thread of its own while the lanes send the batch before it:
        # the compiled sealer releases Python's lock for the whole batch, so the encryption runs
        # on the other core beside the event loop's HTTP and the worker's database threads.
        self._encryption = ThreadPoolExecutor(max_workers=1, thread_name_prefix="push-encrypt")
        if seal_many is None:
            log.warning(
                "the compiled push encryption (_webpush_seal) is not built: pushes are encrypted "
                "in Python, at about two thirds of the rate; `pip install -e .` builds it"
            )

    async def acquire_many(self, count: int) -> None:
        await self.rate.wait_turn(count)

    async def send_batch(
        self,
        targets: Sequence[PushTarget],
        payloads: Mapping[int, bytes],
        urgency: Mapping[int, str],
        on_sent: Callable[[int], None] | None = None,
    ) -> list[PushRecord]:
        """Push every target (``payloads`` and ``urgency`` by delivery id); one record each, in
        the order of ``targets``.

        The pushes join their origin's queue, which *lanes* work off: a lane is one task with
        one kept-alive connection that sends the queue's pushes one after the other, across
        batches, until the queue is empty. At most ``push.concurrency`` lanes run per process.
        So a push costs one write and one answer, with no task, permit or timer of its own.

        ``on_sent`` is called with a delivery's id in the same step of the event loop in which
        the push service accepted it (the worker's journal: see :mod:`broadcasting.journal`).
        """
        batch = _Batch(len(targets), on_sent)
        sendable: list[tuple[PushTarget, Origin, str]] = []
        for target in targets:
            where = self._where(target)
            if isinstance(where, PushRecord):
                batch.record(where)
            else:
                sendable.append((target, *where))
        bodies = await asyncio.get_running_loop().run_in_executor(
            self._encryption,
            encrypt_all,
            [(payloads[target.delivery_id], target.p256dh, target.auth) for target, _o, _r in sendable],
        )
        for (target, origin, request_target), body in zip(sendable, bodies, strict=True):
            if isinstance(body, str):
                batch.record(PushRecord(target, "failed", error=body))
                continue
            job = _Job(target, request_target, body, urgency.get(target.delivery_id, "normal"), batch)
            self._queues.setdefault(origin, deque()).append(job)
        for origin, queue in self._queues.items():
            self._open_lanes(origin, queue)
        if batch.left:
            await batch.done
        return [batch.records[t.delivery_id] for t in targets]

    def _open_lanes(self, origin: Origin, queue: deque[_Job]) -> None:
        # Counted by _lanes_of, which a lane leaves in the step it ends in: a task's own
        # done-callbacks run a step later, when the next batch may already be waiting.
        while (
            queue
            and self._lanes_of.total() < self.settings.concurrency
            and self._lanes_of[origin] < len(queue)
        ):
            lane = asyncio.create_task(self._lane(origin, queue), name=f"push lane {origin.netloc}")
            self._lanes.add(lane)
            self._lanes_of[origin] += 1
            lane.add_done_callback(self._lanes.discard)

    def _where(self, target: PushTarget) -> tuple[Origin, str] | PushRecord:
        """The origin and request target of a push, or why it cannot be sent."""
        if target.subscription_id is None:
            return PushRecord(target, "failed", error="unsubscribed before the push")
        scheme, netloc, path, query, _ = urlsplit(target.endpoint)
        origin = self._origin(scheme, netloc)
        request_target = f"{path or '/'}?{query}" if query else path or "/"
        if origin is None or not _safe_in_header(request_target):
            return PushRecord(target, "failed", error="endpoint unusable")
        return origin, request_target

    def _origin(self, scheme: str, netloc: str) -> Origin | None:
        origin = self._origins.get((scheme, netloc))
        if origin is None:
            parts = urlsplit(f"{scheme}://{netloc}")
            try:
                port = parts.port
            except ValueError:
                return None
            if scheme not in ("https", "http") or not parts.hostname or "@" in netloc:
                return None
            if not _safe_in_header(netloc):
                return None
            origin = Origin(scheme, parts.hostname, port or (443 if scheme == "https" else 80), netloc)
            self._origins[(scheme, netloc)] = origin
        return origin

    async def _lane(self, origin: Origin, queue: deque[_Job]) -> None:
        connection: _Connection | None = None
        job: _Job | None = None
        try:
            while queue:
                job = queue.popleft()
                request = self._request(origin, job)
                if isinstance(request, PushRecord):
                    job.batch.record(request)
                    continue
                try:
                    if connection is None:
                        connection = await self.http.connect_or_reuse(origin)
                    status, retry_after_header = await self._watchdog.exchange(connection, request)
                except OSError as exc:  # PushServiceError, ssl errors and the watchdog's timeout
                    if connection is not None:
                        connection.close()
                        connection = None
                    error = f"push service unreachable: {exc!r}"[:300]
                    job.batch.record(PushRecord(job.target, "failed", error=error, retry=True))
                    continue
                if not connection.reusable:
                    connection.close()
                    connection = None
                job.batch.record(self._record(job.target, status, retry_after_header))
            job = None
        except BaseException as exc:
            # Stopped (the sender closes) or a bug: the batches waiting for these pushes must not
            # wait for ever. Each push not answered is tried again: it was not surely sent.
            if not isinstance(exc, asyncio.CancelledError):
                log.exception("push lane to %s failed; its pushes are tried again", origin.netloc)
            unanswered = (
                [job] if job is not None and job.target.delivery_id not in job.batch.records else []
            ) + list(queue)
            queue.clear()
            for left in unanswered:
                error = f"not sent: {exc!r}"[:300]
                left.batch.record(PushRecord(left.target, "failed", error=error, retry=True))
            raise
        finally:
            self._lanes_of[origin] -= 1
            if connection is not None:
                self.http.give_back(origin, connection)
            # Pushes to other origins may be waiting for a lane to be free.
            for other, waiting in self._queues.items():
                if waiting and not self._closing:
                    self._open_lanes(other, waiting)

    def _request(self, origin: Origin, job: _Job) -> bytes | PushRecord:
        target = job.target
        try:
            authorization = self.vapid.for_origin(origin.url)
        except PushKeyMissing as exc:
            return PushRecord(target, "failed", error=str(exc))
        head = request_head(
            origin,
            job.request_target,
            authorization,
            len(job.body),
            self.settings.ttl_seconds,
            job.urgency,
            f"bn-b{target.broadcast_id}",
        )
        return head + job.body

    @staticmethod
    def _record(target: PushTarget, status: int, retry_after_header: str | None) -> PushRecord:
        if status in SENT_CODES:
            return PushRecord(target, "sent")
        if status in GONE_CODES:
            return PushRecord(target, "failed", error=f"gone ({status}): subscription deleted", gone=True)
        if status == 429 or status >= 500:
            retry_after = retry_after_seconds(retry_after_header)
            error = f"push service {status}" + (f", retry after {retry_after:.0f} s" if retry_after else "")
            return PushRecord(target, "failed", error=error, retry=True, retry_after=retry_after)
        return PushRecord(target, "failed", error=f"push service refused: {status}")

    # The worker drives push in batches; one delivery at a time is not how push is sent.
    async def send(self, job: DeliveryJob, message: Message, permit: object) -> Outcome:
        return Outcome("failed", error="push deliveries are sent in batches")

    async def reconcile(self, job: DeliveryJob, message: Message) -> Outcome | None:
        return None

    async def close(self) -> None:
        self._closing = True
        for lane in list(self._lanes):
            lane.cancel()
        await asyncio.gather(*self._lanes, return_exceptions=True)
        self._watchdog.stop()
        await self.http.close()
        self._encryption.shutdown(wait=False, cancel_futures=True)


def urgency_for(action_type: str, kind: str) -> str:
    if kind == "result":
        return "normal"
    return "high" if action_type in HIGH_URGENCY_TYPES else "normal"


async def create(settings: Settings, client: aioredis.Redis) -> WebPushSender:
    per_second = settings.push.pushes_per_second
    return WebPushSender(settings.push, shared_rate(client, settings, RATE, per_second))

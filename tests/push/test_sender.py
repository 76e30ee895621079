"""The push sender on its own: RFC 8291 encryption, and its HTTP/1.1 client against real sockets
(kept-alive connections reused, ``Connection: close``, a dropped connection, a silent service,
a redirect that is not followed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric import ec

from broadcasting.channels import push_webpush
from broadcasting.channels.push_webpush import RECORD_SIZE, WebPushSender, encrypt
from broadcasting.store import PushRecord, PushTarget
from burgernet.push_subscriptions import b64url_decode, b64url_encode
from burgernet.settings import Settings
from tests.support.webpush_service import TestSubscription, WebPushService

# RFC 8291, section 5 and appendix A: the example's keys, salt, plaintext and message.
RFC_AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_RECEIVER_PUBLIC = (
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
)
RFC_SENDER_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
RFC_SALT = "DGv6ra1nlYgDCS1FRnbzlw"
RFC_MESSAGE = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml"
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT"
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)


def test_encryption_gives_the_rfc_8291_example_byte_for_byte() -> None:
    sender_key = ec.derive_private_key(
        int.from_bytes(b64url_decode(RFC_SENDER_PRIVATE), "big"), ec.SECP256R1()
    )
    message = encrypt(
        b"When I grow up, I want to be a watermelon",
        RFC_RECEIVER_PUBLIC,
        RFC_AUTH,
        private_key=sender_key,
        salt=b64url_decode(RFC_SALT),
    )
    assert b64url_encode(message) == RFC_MESSAGE


def test_every_push_has_its_own_key_pair_and_salt_and_decrypts_elsewhere() -> None:
    device = ec.generate_private_key(ec.SECP256R1())
    subscription = TestSubscription("https://push.example.net/x", device, b"0123456789abcdef")
    first, second = (encrypt(b'{"v":1}', subscription.p256dh, subscription.auth) for _ in range(2))
    # salt (16) | rs (4) | idlen (1) | keyid: the sender's public key for this message
    assert first[:16] != second[:16] and first[21:86] != second[21:86]
    assert int.from_bytes(first[16:20], "big") == RECORD_SIZE and first[20] == 65
    for message in (first, second):
        assert subscription.decrypt(message) == b'{"v":1}'


def targets_for(devices: list[TestSubscription], first_id: int = 1) -> list[PushTarget]:
    return [
        PushTarget(
            delivery_id=first_id + n,
            broadcast_id=7,
            action_id=3,
            kind="alert",
            attempt=1,
            subscription_id=first_id + n,
            endpoint=device.endpoint,
            p256dh=device.p256dh,
            auth=device.auth,
            lang="nl",
            sighting_id=None,
            resent=False,
        )
        for n, device in enumerate(devices)
    ]


async def push_all(
    sender: WebPushSender, targets: list[PushTarget], on_sent: Callable[[int], None] | None = None
) -> list[PushRecord]:
    payloads = {t.delivery_id: b'{"v":1,"kind":"alert"}' for t in targets}
    return await sender.send_batch(targets, payloads, {}, on_sent)


async def make_sender(settings: Settings, **push: object) -> WebPushSender:
    tuned = settings.model_copy(update={"push": settings.push.model_copy(update=push)})
    return await push_webpush.create(tuned, aioredis.Redis.from_url(settings.redis.url))


async def test_pushes_reuse_a_few_kept_alive_connections(
    bn_settings: Settings, push_service: WebPushService
) -> None:
    sender = await make_sender(bn_settings, concurrency=4)
    devices = [push_service.subscribe() for _ in range(40)]
    sent: list[int] = []
    try:
        records = await push_all(sender, targets_for(devices), sent.append)
        records += await push_all(sender, targets_for(devices, first_id=100))
    finally:
        await sender.close()
    assert [r.status for r in records] == ["sent"] * 80
    assert sorted(sent) == list(range(1, 41))  # told as each was accepted
    assert sender.http.opened <= 4  # 80 pushes, at most 4 at once, over the same connections
    assert len(push_service.received) == 80
    assert {p.payload["kind"] for p in push_service.received} == {"alert"}
    assert {p.topic for p in push_service.received} == {"bn-b7"}


async def test_a_subscription_with_unusable_keys_fails_alone_and_the_rest_of_its_batch_goes(
    bn_settings: Settings, push_service: WebPushService
) -> None:
    sender = await make_sender(bn_settings, concurrency=4)
    targets = targets_for([push_service.subscribe() for _ in range(3)])
    # A device key that is no point on P-256 (as a broken browser or a forged row might store).
    broken = replace(targets[1], p256dh=b64url_encode(b"\x04" + bytes(64)))
    try:
        records = await push_all(sender, [targets[0], broken, targets[2]])
    finally:
        await sender.close()
    assert [r.status for r in records] == ["sent", "failed", "sent"]
    assert records[1].error is not None and records[1].error.startswith("subscription keys unusable")
    assert not records[1].retry and not records[1].gone
    assert len(push_service.received) == 2


@asynccontextmanager
async def raw_service(answer: Callable[[int], bytes | None]) -> AsyncIterator[str]:
    """A bare TCP server: for the n-th request (from 0) ``answer(n)`` gives the bytes to send
    back (then the connection stays open), or None to close the connection without a word."""
    requests = 0

    class Service(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            nonlocal requests
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode().lower()
            length = int(head.split("content-length:")[1].split("\r\n")[0])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            reply = answer(requests)
            requests += 1
            if reply is None:
                self.transport.close()
            else:
                self.transport.write(reply)  # type: ignore[attr-defined]

    server = await asyncio.get_running_loop().create_server(Service, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def device_at(origin: str, name: str) -> TestSubscription:
    return TestSubscription(f"{origin}/push/{name}", ec.generate_private_key(ec.SECP256R1()), bytes(16))


async def test_connection_close_a_dropped_connection_and_a_silent_service(bn_settings: Settings) -> None:
    answers = {
        0: b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        1: b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        2: None,  # closed without an answer
        3: b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nbusy",
        4: b"HTTP/1.1 301 Moved\r\nLocation: http://10.0.0.1/\r\nContent-Length: 0\r\n\r\n",
        5: b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        6: b"",  # never answers
    }
    sender = await make_sender(bn_settings, concurrency=1, request_timeout_seconds=0.5)
    try:
        async with raw_service(lambda n: answers.get(n, b"")) as origin:
            records = []
            for n in range(7):  # one at a time, so that each request meets the answer planned
                (target,) = targets_for([device_at(origin, f"d{n}")], first_id=n)
                (record,) = await push_all(sender, [target])
                records.append(record)
    finally:
        await sender.close()
    closed, kept, dropped, busy, moved, chunked, silent = records
    assert closed.status == "sent" and kept.status == "sent" and chunked.status == "sent"
    assert dropped.retry and dropped.error is not None and "unreachable" in dropped.error
    assert busy.retry and busy.retry_after == 7.0 and busy.error == "push service 429, retry after 7 s"
    assert moved.status == "failed" and not moved.retry and moved.error == "push service refused: 301"
    assert silent.retry and silent.error is not None and "TimeoutError" in silent.error
    # A new connection only after "Connection: close" and after the drop; the rest kept one.
    assert sender.http.opened == 3


async def test_pushes_to_a_second_origin_wait_for_a_free_lane_and_all_arrive(bn_settings: Settings) -> None:
    """One lane for the process: the pushes of the origin that got none wait until the other
    origin's queue is empty, then go; two batches at once each get all their records."""
    created = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    sender = await make_sender(bn_settings, concurrency=1)
    try:
        async with raw_service(lambda _n: created) as first, raw_service(lambda _n: created) as second:
            one = targets_for([device_at(first, f"a{n}") for n in range(5)], first_id=1)
            other = targets_for([device_at(second, f"b{n}") for n in range(5)], first_id=100)
            mixed = targets_for([device_at(second, "c0"), device_at(first, "c1")], first_id=200)
            batches = await asyncio.wait_for(
                asyncio.gather(push_all(sender, one + other), push_all(sender, mixed)), 10
            )
    finally:
        await sender.close()
    assert [[r.target.delivery_id for r in batch] for batch in batches] == [
        [t.delivery_id for t in one + other],
        [t.delivery_id for t in mixed],
    ]
    assert {r.status for batch in batches for r in batch} == {"sent"}
    assert sender.http.opened == 2  # one connection per origin, one after the other

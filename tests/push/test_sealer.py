"""The compiled sealer (``broadcasting/channels/_webpush_seal.c``): RFC 8291 for a batch in OpenSSL,
outside Python's lock. Its output is decrypted by ``http_ece`` (an implementation independent of
it and of the Python reference), every message gets its own key pair and salt, a bad message
fails alone with its reason, and other Python threads run while a batch is encrypted."""

from __future__ import annotations

import logging
import os
import threading

import pytest

from broadcasting.channels import push_webpush
from broadcasting.channels.push_webpush import RECORD_SIZE, encrypt, encrypt_all
from burgernet.push_subscriptions import b64url_decode, b64url_encode
from burgernet.settings import Settings
from tests.support.webpush_service import TestSubscription, make_subscription


def device() -> TestSubscription:
    return make_subscription("https://push.example.net/x")


def test_the_compiled_sealer_is_built() -> None:
    # Without it a worker encrypts in Python at about two thirds of the rate (and logs a warning).
    assert push_webpush.seal_many is not None


@pytest.mark.parametrize("size", [0, 1, 700, RECORD_SIZE - 17])
def test_sealed_pushes_decrypt_elsewhere_with_a_key_pair_and_salt_each(size: int) -> None:
    subscriptions = [device() for _ in range(3)]
    payloads = [os.urandom(size) for _ in subscriptions]
    items = [(p, s.p256dh, s.auth) for p, s in zip(payloads, subscriptions, strict=True)]
    bodies = encrypt_all(items + items[:1])  # the first device twice
    assert all(isinstance(b, bytes) for b in bodies)
    sealed = [b for b in bodies if isinstance(b, bytes)]
    # salt (16) | rs (4) | idlen (1) | keyid: this message's own public key | record + tag
    assert len({b[:16] for b in sealed}) == 4 and len({b[21:86] for b in sealed}) == 4
    for body in sealed:
        assert int.from_bytes(body[16:20], "big") == RECORD_SIZE and body[20] == 65
        assert len(body) == 86 + size + 1 + 16
    for body, payload, subscription in zip(
        sealed, payloads + payloads[:1], subscriptions + subscriptions[:1], strict=True
    ):
        assert subscription.decrypt(body) == payload


def test_the_sealer_and_the_python_reference_agree() -> None:
    # Both decrypt to the payload with the same receiver key, so they use the same derivation;
    # the reference itself is checked against RFC 8291's example in test_sender.
    subscription = device()
    payload = b'{"v":1,"kind":"alert","title":"Vermist: Sanne (7)"}'
    native = encrypt_all([(payload, subscription.p256dh, subscription.auth)])[0]
    reference = encrypt(payload, subscription.p256dh, subscription.auth)
    assert isinstance(native, bytes)
    assert len(native) == len(reference)
    assert subscription.decrypt(native) == subscription.decrypt(reference) == payload


def test_a_bad_message_fails_alone_with_its_reason() -> None:
    good = device()
    ok = (b"ok", good.p256dh, good.auth)
    off_curve = b64url_encode(b"\x04" + bytes(64))
    compressed = b64url_encode(b"\x02" + bytes(32))
    bodies = encrypt_all(
        [
            ok,
            (b"x", "not base64url!", good.auth),
            (b"x", off_curve, good.auth),
            (b"x", compressed, good.auth),
            (b"x", good.p256dh, b64url_encode(bytes(15))),
            (b"x" * (RECORD_SIZE - 16), good.p256dh, good.auth),
            ok,
        ]
    )
    assert isinstance(bodies[0], bytes) and isinstance(bodies[6], bytes)
    assert good.decrypt(bodies[0]) == good.decrypt(bodies[6]) == b"ok"
    reasons = bodies[1:6]
    assert all(isinstance(r, str) and r.startswith("subscription keys unusable: ") for r in reasons)
    assert "not a point on P-256" in str(reasons[1])
    assert "uncompressed" in str(reasons[2])
    assert "auth secret is not 16 bytes" in str(reasons[3])
    assert "does not fit one record" in str(reasons[4])


def test_the_sealer_refuses_what_is_not_a_batch_of_byte_triples() -> None:
    assert push_webpush.seal_many is not None
    good = device()
    key, auth = b64url_decode(good.p256dh), good.auth_secret
    not_triples: list[object] = [("text", key, auth), (b"x", key), 5]
    assert push_webpush.seal_many(not_triples) == [  # type: ignore[arg-type]
        "a message part is not bytes",
        "a message is not a (payload, public key, auth secret) tuple",
        "a message is not a (payload, public key, auth secret) tuple",
    ]
    assert push_webpush.seal_many([]) == []
    with pytest.raises(TypeError):
        push_webpush.seal_many(5)  # type: ignore[arg-type]


def test_without_the_compiled_sealer_the_python_encryption_takes_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(push_webpush, "seal_many", None)
    subscription = device()
    bodies = encrypt_all([(b"a", subscription.p256dh, subscription.auth), (b"b", "!!", subscription.auth)])
    assert isinstance(bodies[0], bytes) and subscription.decrypt(bodies[0]) == b"a"
    assert isinstance(bodies[1], str) and bodies[1].startswith("subscription keys unusable: ")


def test_other_threads_run_while_a_batch_is_encrypted() -> None:
    """What the sealer is for: the worker's event loop keeps running during a batch. This thread
    counts while another encrypts 12,000 messages: with the lock released it counts on the other
    core the whole time (hundreds of steps per message here); holding it, it would get a step in
    only now and then (a build without the release measured one step per message)."""
    subscription = device()
    batch = [(b"x" * 600, b64url_decode(subscription.p256dh), subscription.auth_secret)] * 12_000
    seal_many = push_webpush.seal_many
    assert seal_many is not None
    sealer = threading.Thread(target=seal_many, args=(batch,))
    steps = 0
    sealer.start()
    while sealer.is_alive():
        steps += 1
    sealer.join()
    assert steps >= 10 * len(batch), f"{steps} steps of this thread during the batch"


async def test_a_worker_without_the_compiled_sealer_says_so_at_start(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, bn_settings: Settings
) -> None:
    monkeypatch.setattr(push_webpush, "seal_many", None)
    with caplog.at_level(logging.WARNING, logger=push_webpush.__name__):
        sender = push_webpush.WebPushSender(bn_settings.push, rate=None)  # type: ignore[arg-type]
    await sender.close()
    assert any("_webpush_seal" in r.getMessage() and "not built" in r.getMessage() for r in caplog.records)

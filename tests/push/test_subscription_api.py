"""``/app/api/push``: the key, subscribing (valid, invalid, idempotent), unsubscribing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from burgernet.db import session_scope
from burgernet.models import PushSubscription
from burgernet.push_subscriptions import application_server_key, b64url_decode
from callback_api.app import create_app
from callback_api.push.services import REQUESTS_PER_MINUTE
from composition.context import Context
from tests.support.webpush_service import make_subscription

ENDPOINT = "https://push.example.org/send/abc123"


@pytest.fixture
def client(bn_context: Context) -> Iterator[FlaskClient]:
    app: Flask = create_app(bn_context.settings, context=bn_context, config={"TESTING": True})
    yield app.test_client()


def rows(context: Context) -> list[PushSubscription]:
    with session_scope(context.sessions) as session:
        found = list(session.scalars(select(PushSubscription).order_by(PushSubscription.id)))
        session.expunge_all()
        return found


def body(endpoint: str = ENDPOINT, cell: str | None = "u173", lang: str = "nl") -> dict[str, object]:
    return {"subscription": make_subscription(endpoint).as_json(), "cell": cell, "lang": lang}


def test_the_key_is_the_vapid_public_key_as_browsers_want_it(
    client: FlaskClient, bn_context: Context
) -> None:
    answer = client.get("/app/api/push/key")
    assert answer.status_code == 200
    key = answer.get_json()["public_key"]
    assert key == application_server_key(bn_context.settings.push)
    assert "=" not in key
    point = b64url_decode(key)
    assert len(point) == 65 and point[0] == 4


def test_subscribing_stores_the_subscription_and_again_updates_it(
    client: FlaskClient, bn_context: Context
) -> None:
    first = body(cell="u173", lang="nl")
    answer = client.post("/app/api/push/subscriptions", json=first)
    assert answer.status_code == 201 and answer.get_json() == {"ok": True}
    (row,) = rows(bn_context)
    assert (row.endpoint, row.cell, row.lang) == (ENDPOINT, "u173", "nl")
    assert row.p256dh == first["subscription"]["keys"]["p256dh"]  # type: ignore[index]

    again = body(cell=None, lang="en")  # new keys, no cell, English: the same endpoint
    assert client.post("/app/api/push/subscriptions", json=again).status_code == 201
    (row,) = rows(bn_context)
    assert (row.cell, row.lang) == (None, "en")
    assert row.p256dh == again["subscription"]["keys"]["p256dh"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda b: b["subscription"].update(endpoint="http://push.example.org/x"), "https"),
        (lambda b: b["subscription"].update(endpoint="ftp://push.example.org/x"), "https"),
        (lambda b: b["subscription"]["keys"].update(p256dh="AAAA"), "p256dh"),
        (lambda b: b["subscription"]["keys"].update(auth="c2hvcnQ"), "auth"),
        (lambda b: b["subscription"]["keys"].pop("auth"), "auth"),
        (lambda b: b.update(cell="u17"), "cell"),
        (lambda b: b.update(cell="u17a"), "cell"),  # "a" is not a geohash character
        (lambda b: b.update(lang="de"), "lang"),
        (lambda b: b.pop("subscription"), "subscription"),
    ],
)
def test_a_bad_subscription_is_refused_with_a_code_and_nothing_stored(
    client: FlaskClient, bn_context: Context, change: object, words: str
) -> None:
    given = body()
    change(given)  # type: ignore[operator]
    answer = client.post("/app/api/push/subscriptions", json=given)
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["code"] == "push.subscription_invalid"
    assert words in error["message"]
    assert rows(bn_context) == []


def test_not_json_and_too_large_bodies_are_refused(client: FlaskClient, bn_context: Context) -> None:
    answer = client.post("/app/api/push/subscriptions", data="endpoint=x", content_type="text/plain")
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "push.body_invalid"
    huge = body()
    huge["padding"] = "x" * 10_000
    answer = client.post("/app/api/push/subscriptions", json=huge)
    assert answer.status_code == 413
    assert answer.get_json()["error"]["code"] == "request.too_large"
    assert rows(bn_context) == []


def test_unsubscribing_forgets_the_endpoint(client: FlaskClient, bn_context: Context) -> None:
    client.post("/app/api/push/subscriptions", json=body())
    client.post("/app/api/push/subscriptions", json=body("https://push.example.org/send/other"))
    answer = client.delete("/app/api/push/subscriptions", json={"endpoint": ENDPOINT})
    assert answer.status_code == 204
    assert [row.endpoint for row in rows(bn_context)] == ["https://push.example.org/send/other"]
    # Unknown (already gone): still 204, the device's wish is fulfilled.
    assert client.delete("/app/api/push/subscriptions", json={"endpoint": ENDPOINT}).status_code == 204
    answer = client.delete("/app/api/push/subscriptions", json={"nothing": 1})
    assert answer.status_code == 400


def test_one_address_is_limited(client: FlaskClient, bn_context: Context) -> None:
    for n in range(REQUESTS_PER_MINUTE):
        assert client.post("/app/api/push/subscriptions", json=body(f"{ENDPOINT}/{n}")).status_code == 201
    answer = client.post("/app/api/push/subscriptions", json=body(f"{ENDPOINT}/last"))
    assert answer.status_code == 429
    assert answer.get_json()["error"]["code"] == "push.rate_limited"
    with session_scope(bn_context.sessions) as session:
        assert session.scalar(select(func.count()).select_from(PushSubscription)) == REQUESTS_PER_MINUTE

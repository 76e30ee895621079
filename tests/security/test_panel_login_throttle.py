"""The login throttle (callback_api.security.LoginThrottle): per (address, username) and per
address, never per username alone; behind a trusted proxy by the forwarded address; in-process
while Redis is down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from callback_api.app import create_app
from callback_api.security import LoginThrottle
from composition.context import Context
from testbed.ports import free_port
from tests.panel import conftest as panel_fixtures
from tests.panel.conftest import PASSWORD, World, audit_count, csrf_token

X, Y = "203.0.113.7", "198.51.100.20"
PER_USER, PER_ADDRESS = LoginThrottle.per_user_limit, LoginThrottle.per_address_limit

# The panel's fixtures (tests/panel/conftest.py), reused here.
app = panel_fixtures.app
world = panel_fixtures.world


def _login(client: FlaskClient, username: str, password: str, **request: object) -> int:
    token = csrf_token(client)
    data = {"username": username, "password": password, "csrf_token": token}
    return client.post("/login", data=data, **request).status_code


def _from(address: str) -> dict[str, object]:
    return {"environ_base": {"REMOTE_ADDR": address}}


def test_a_wrong_password_flood_from_x_does_not_lock_the_admin_out_from_y(world: World, app: Flask) -> None:
    attacker = app.test_client()
    for _ in range(PER_ADDRESS + 5):
        assert _login(attacker, "admin", "wrong password!", **_from(X)) in (401, 429)
    # X is stopped, even with the right password...
    assert _login(app.test_client(), "admin", PASSWORD, **_from(X)) == 429
    # ...but the admin at Y logs in at once.
    assert _login(app.test_client(), "admin", PASSWORD, **_from(Y)) == 302


def test_many_usernames_from_one_address_are_throttled_too(world: World, app: Flask) -> None:
    client = app.test_client()
    # Below the per-user limit for each name, but the address adds them all up.
    assert PER_USER > 1
    for n in range(PER_ADDRESS):
        assert _login(client, f"guess-{n}", "wrong password!", **_from(X)) == 401
    assert _login(client, "operator", PASSWORD, **_from(X)) == 429
    assert _login(app.test_client(), "operator", PASSWORD, **_from(Y)) == 302


def _proxied_app(bn_context: Context, hops: int) -> Flask:
    web = bn_context.settings.web.model_copy(update={"trusted_proxy_hops": hops})
    settings = bn_context.settings.model_copy(update={"web": web})
    return create_app(settings, context=bn_context, config={"TESTING": True})


def test_behind_a_trusted_proxy_the_forwarded_address_counts(world: World, bn_context: Context) -> None:
    proxied = _proxied_app(bn_context, hops=1)
    via_proxy = {"environ_base": {"REMOTE_ADDR": "127.0.0.1"}}
    for _ in range(PER_USER):
        forwarded = {**via_proxy, "headers": {"X-Forwarded-For": X}}
        assert _login(proxied.test_client(), "operator", "wrong password!", **forwarded) == 401
    blocked = {**via_proxy, "headers": {"X-Forwarded-For": X}}
    assert _login(proxied.test_client(), "operator", PASSWORD, **blocked) == 429
    # The same proxy, another client: not throttled, and audited with the client's address.
    other = {**via_proxy, "headers": {"X-Forwarded-For": Y}}
    assert _login(proxied.test_client(), "operator", PASSWORD, **other) == 302
    assert audit_count(bn_context, verb="login", actor="operator", source=f"web {Y}") == 1


def test_without_a_proxy_configured_forwarded_headers_are_ignored(world: World, bn_context: Context) -> None:
    direct = _proxied_app(bn_context, hops=0)
    for n in range(PER_USER):
        # A client making up a new X-Forwarded-For each time gains nothing.
        spoofed = {"headers": {"X-Forwarded-For": f"10.0.0.{n}"}}
        assert _login(direct.test_client(), "operator", "wrong password!", **spoofed) == 401
    assert _login(direct.test_client(), "operator", PASSWORD, headers={"X-Forwarded-For": Y}) == 429


@pytest.fixture
def redis_down_app(world: World, bn_context: Context) -> Iterator[Flask]:
    """The panel on the same database, its Redis at a port where nothing listens."""
    redis = bn_context.settings.redis.model_copy(update={"url": f"redis://127.0.0.1:{free_port()}/0"})
    context = Context(bn_context.settings.model_copy(update={"redis": redis}))
    yield create_app(context.settings, context=context, config={"TESTING": True})
    context.close()


def test_login_and_logout_work_with_redis_down_and_stay_throttled(redis_down_app: Flask) -> None:
    client = redis_down_app.test_client()
    assert _login(client, "operator", PASSWORD) == 302
    assert client.get("/people").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/people")}).status_code == 302
    assert client.get("/people").status_code == 302

    for _ in range(PER_USER):
        assert _login(redis_down_app.test_client(), "operator", "wrong password!", **_from(X)) == 401
    # Counted in this process: X is throttled for that user, Y is not.
    assert _login(redis_down_app.test_client(), "operator", PASSWORD, **_from(X)) == 429
    assert _login(redis_down_app.test_client(), "operator", PASSWORD, **_from(Y)) == 302

"""CSRF on every form, login with its throttle, secure cookies, the language switch."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from composition.context import Context
from tests.panel.conftest import PASSWORD, World, audit_count, csrf_token, login


def test_forged_posts_are_rejected_and_change_nothing(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("admin")
    before = audit_count(bn_context)
    forged = {
        f"/actions/{world.draft_id}/start": {},
        f"/actions/{world.active_id}/close": {"outcome": "x"},
        "/actions/new": {"action_type": "vehicle", "title": "x", "region": "MN", "area_kind": "national"},
        f"/people/{world.participant_id}/erase": {},
        f"/people/{world.participant_id}/opt-out": {"opted_out": "1"},
        "/logout": {},
    }
    for path, data in forged.items():
        for token in (None, "forged-token"):
            payload = dict(data) if token is None else {**data, "csrf_token": token}
            response = client.post(path, data=payload)
            assert response.status_code == 400, path
    assert bn_context.actions.get(world.draft_id).status == "draft"
    assert bn_context.actions.get(world.active_id).status == "active"
    assert audit_count(bn_context) == before
    assert client.get("/people").status_code == 200  # still logged in: the forged logout failed


def test_login_without_token_is_refused(world: World, app: Flask) -> None:
    client = app.test_client()
    response = client.post("/login", data={"username": "admin", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/actions").status_code == 302


def test_login_sets_a_hardened_cookie_and_is_audited(world: World, bn_context: Context, app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client)
    response = client.post("/login", data={"username": "operator", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert audit_count(bn_context, verb="login", actor="operator", source="web 127.0.0.1") == 1


def test_secure_cookie_behind_https(world: World, bn_context: Context) -> None:
    from callback_api.app import create_app

    settings = bn_context.settings.model_copy(
        update={"web": bn_context.settings.web.model_copy(update={"public_base_url": "https://bn.example"})}
    )
    app = create_app(settings, context=bn_context)
    client = app.test_client()
    token = csrf_token(client)
    response = client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert "Secure" in response.headers["Set-Cookie"]


def test_open_redirect_after_login_is_refused(world: World, app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client)
    response = client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/x"},
    )
    assert response.headers["Location"] == "/"


def test_login_throttle_per_address_and_username(world: World, app: Flask) -> None:
    client = app.test_client()
    for _ in range(5):
        assert login(client, "operator", "wrong password!") == 401
    # Now even the right password is refused for this address + username...
    assert login(client, "operator") == 429
    # ...but not for another user from the same address, nor from another address.
    assert login(app.test_client(), "admin") == 302
    other = app.test_client()
    token = csrf_token(other)
    response = other.post(
        "/login",
        data={"username": "operator", "password": PASSWORD, "csrf_token": token},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert response.status_code == 302


def test_unknown_user_and_wrong_password_look_the_same(world: World, app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client)
    a = client.post("/login", data={"username": "nobody", "password": "x" * 12, "csrf_token": token})
    b = client.post("/login", data={"username": "admin", "password": "x" * 12, "csrf_token": token})
    assert a.status_code == b.status_code == 401


def test_language_switch_is_kept_in_the_session(
    world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    token = csrf_token(client, "/")
    client.post("/lang", data={"lang": "en", "next": "/actions", "csrf_token": token})
    english = client.get("/actions").get_data(as_text=True)
    assert 'lang="en"' in english and ">Actions</h1>" in english
    client.post("/lang", data={"lang": "nl", "csrf_token": token})
    dutch = client.get("/actions").get_data(as_text=True)
    assert 'lang="nl"' in dutch and ">Acties</h1>" in dutch


def test_logout_ends_the_session(world: World, client_for: Callable[[str | None], FlaskClient]) -> None:
    client = client_for("viewer")
    token = csrf_token(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_security_headers(world: World, client_for: Callable[[str | None], FlaskClient]) -> None:
    response = client_for("viewer").get("/")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"

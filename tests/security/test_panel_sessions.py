"""Sessions end on the server: a cookie kept from before a logout, a new password, a new role or
a deactivation no longer works (401 for scripts and the API, the login page for a browser)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from callback_api.settings.users.services import UserAdminService
from composition.context import Context
from tests.panel import conftest as panel_fixtures
from tests.panel.conftest import World, csrf_token

ClientFor = Callable[[str | None], FlaskClient]
COOKIE = "burgernet_session"
JSON = {"Accept": "application/json"}

# The panel's fixtures (tests/panel/conftest.py), reused here.
app = panel_fixtures.app
client_for = panel_fixtures.client_for
world = panel_fixtures.world


def _cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def _replay(app: Flask, cookie: str) -> FlaskClient:
    """A fresh browser (or an attacker) presenting a copy of the cookie."""
    client = app.test_client()
    client.set_cookie(COOKIE, cookie)
    return client


def _user_id(context: Context, username: str) -> int:
    return next(row.id for row in UserAdminService(context).list_all() if row.username == username)


def test_a_cookie_replayed_after_logout_gets_401(world: World, app: Flask, client_for: ClientFor) -> None:
    client = client_for("operator")
    kept = _cookie(client)
    # The copy works while the session lives: what follows can fail.
    assert _replay(app, kept).get("/dashboard/presence.json", headers=JSON).status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/")}).status_code == 302

    replayed = _replay(app, kept)
    refused = replayed.get("/dashboard/presence.json", headers=JSON)
    assert refused.status_code == 401
    assert refused.get_json()["error_id"] == "auth.unauthenticated"
    xhr = replayed.get("/actions", headers={"X-Requested-With": "XMLHttpRequest"})
    assert xhr.status_code == 401
    page = replayed.get("/people")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    # The API never takes a cookie: only a bearer token.
    api = replayed.get("/api/v1/actions")
    assert api.status_code == 401 and api.get_json()["error_id"] == "auth.unauthenticated"
    # Logging in again gives a new, working session.
    assert client_for("operator").get("/people").status_code == 200


def test_a_new_password_ends_every_session_of_the_user(
    world: World, app: Flask, bn_context: Context, client_for: ClientFor
) -> None:
    kept = _cookie(client_for("viewer"))
    assert _replay(app, kept).get("/", headers=JSON).status_code == 200
    UserAdminService(bn_context).reset_password(_user_id(bn_context, "viewer"), actor="admin", source="test")
    assert _replay(app, kept).get("/", headers=JSON).status_code == 401


def test_the_admin_changing_a_password_in_the_panel_ends_the_sessions(
    world: World, app: Flask, bn_context: Context, client_for: ClientFor
) -> None:
    kept = _cookie(client_for("operator"))
    admin = client_for("admin")
    path = f"/settings/users/{_user_id(bn_context, 'operator')}"
    response = admin.post(f"{path}/password", data={"csrf_token": csrf_token(admin, path)})
    assert response.status_code == 200
    assert _replay(app, kept).get("/people", headers=JSON).status_code == 401
    assert admin.get("/people").status_code == 200  # the admin's own session is untouched


def test_a_new_role_or_deactivation_ends_every_session(
    world: World, app: Flask, bn_context: Context, client_for: ClientFor
) -> None:
    users = UserAdminService(bn_context)
    operator = _cookie(client_for("operator"))
    users.set_role(
        _user_id(bn_context, "operator"), role="viewer", centralist_endpoint=None, actor="admin", source="t"
    )
    # With the old cookie the former operator would still reach the people pages.
    assert _replay(app, operator).get("/people", headers=JSON).status_code == 401

    centralist = _cookie(client_for("centralist"))
    users.set_active(_user_id(bn_context, "centralist"), False, actor="admin", source="t")
    assert _replay(app, centralist).get("/", headers=JSON).status_code == 401


def test_a_rotated_api_token_replaces_the_old_one(world: World, app: Flask, bn_context: Context) -> None:
    client = app.test_client()
    old = world.tokens["operator"]
    assert client.get("/api/v1/actions", headers={"Authorization": f"Bearer {old}"}).status_code == 200
    new = UserAdminService(bn_context).new_token(_user_id(bn_context, "operator"), actor="admin", source="t")
    assert client.get("/api/v1/actions", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    assert client.get("/api/v1/actions", headers={"Authorization": f"Bearer {new}"}).status_code == 200

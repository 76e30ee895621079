"""Request bodies are limited per route (callback_api.limits): small for anyone not logged in,
moderate for the panel and the API, answered 413 ``request.too_large`` before the body is read."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from broadcasting.twilio import paths
from callback_api.app import csrf
from callback_api.limits import ANONYMOUS_BYTES, LOGIN_BYTES, MIB, body_limit
from composition.context import Context
from tests.panel import conftest as panel_fixtures
from tests.panel.conftest import PASSWORD, World, audit_count, csrf_token

ClientFor = Callable[[str | None], FlaskClient]

# The panel's fixtures (tests/panel/conftest.py), reused here.
app = panel_fixtures.app
client_for = panel_fixtures.client_for
world = panel_fixtures.world


def test_an_oversized_anonymous_login_gets_413_and_logs_nobody_in(
    world: World, app: Flask, bn_context: Context
) -> None:
    client = app.test_client()
    token = csrf_token(client)
    padding = "x" * LOGIN_BYTES
    response = client.post(
        "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token, "pad": padding}
    )
    assert response.status_code == 413
    assert "text/html" in response.content_type
    assert audit_count(bn_context, verb="login") == 0
    # The same form without the padding is fine.
    ok = client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert ok.status_code == 302


def test_an_oversized_webhook_gets_a_json_413(world: World, app: Flask) -> None:
    rule = next(path.rule for path in paths.ALL if "POST" in path.methods and "<" not in path.rule)
    response = app.test_client().post(rule, data={"MessageSid": "SM1", "pad": "x" * ANONYMOUS_BYTES})
    assert response.status_code == 413
    body = response.get_json()
    assert body["error_id"] == "request.too_large" and body["status"] == 413


def test_anonymous_posts_anywhere_are_small(world: World, app: Flask) -> None:
    client = app.test_client()
    for path in ("/lang", "/actions/new", "/no-such-page"):
        response = client.post(path, data={"pad": "x" * ANONYMOUS_BYTES})
        assert response.status_code == 413, path


def test_logged_in_panel_and_api_get_a_moderate_limit(
    world: World, app: Flask, client_for: ClientFor
) -> None:
    client = client_for("operator")
    token = csrf_token(client, "/")
    # 1 MiB is fine for a logged-in user (the form is refused for its content, not its size)...
    fine = client.post("/actions/recipients-preview", data={"csrf_token": token, "pad": "x" * MIB})
    assert fine.status_code == 400
    # ...a body announced larger than the panel's limit is refused before it is read.
    huge = {"CONTENT_LENGTH": str(app.config["BODY_LIMIT_PANEL"] + 1)}
    refused = client.post("/actions/recipients-preview", data={"csrf_token": token}, environ_overrides=huge)
    assert refused.status_code == 413
    api = app.test_client().post(
        "/api/v1/actions",
        json={},
        headers={"Authorization": f"Bearer {world.tokens['operator']}"},
        environ_overrides=huge,
    )
    assert api.status_code == 413 and api.get_json()["error_id"] == "request.too_large"


def test_a_route_can_have_its_own_limit(world: World, app: Flask) -> None:
    """What the CSV import uses (``@body_limit(IMPORT_BYTES)``), shown on routes of the test's own."""

    @app.route("/test-large", methods=["POST"])
    @csrf.exempt
    @body_limit(2 * app.config["BODY_LIMIT_PANEL"])
    def large() -> str:
        return "large ok"

    @app.route("/test-tiny", methods=["POST"])
    @csrf.exempt
    @body_limit(10)
    def tiny() -> str:
        return "tiny ok"

    client = app.test_client()
    announced = {"CONTENT_LENGTH": str(app.config["BODY_LIMIT_PANEL"] + 1)}
    response = client.post("/test-large", data=b"x", environ_overrides=announced)
    assert (response.status_code, response.get_data(as_text=True)) == (200, "large ok")
    assert client.post("/test-tiny", data=b"x" * 10).status_code == 200
    assert client.post("/test-tiny", data=b"x" * 11).status_code == 413

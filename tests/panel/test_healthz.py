"""The panel's ``/healthz`` (what the supervisor asks) and the system status page (admins and
operators): heartbeats, the supervisor's view of its children, recent restarts."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from burgernet import health
from burgernet.settings import load_settings
from callback_api.app import create_app
from composition.context import Context
from testbed.ports import free_port
from tests.panel.conftest import World


def test_healthz_reports_database_and_redis_and_beats_for_the_panel(app: Flask, bn_context: Context) -> None:
    prefix = bn_context.settings.redis.key_prefix
    client = bn_context.live.client
    assert health.read_beat(client, prefix, health.PANEL) is None

    response = app.test_client().get("/healthz")  # no login: the supervisor asks it

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "redis": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    beat = health.read_beat(client, prefix, health.PANEL)
    assert beat is not None and beat.age() < 5 and beat.details == {"database": "ok"}


def test_healthz_still_answers_200_while_redis_is_unreachable(bn_context: Context) -> None:
    # Restarting the panel would not bring Redis back: it says so, and keeps serving.
    settings = bn_context.settings.model_copy(
        update={"redis": load_settings(redis={"url": f"redis://:x@127.0.0.1:{free_port()}/0"}).redis}
    )
    unreachable = Context(settings)
    try:
        app = create_app(settings, context=unreachable, config={"TESTING": True})
        response = app.test_client().get("/healthz")
    finally:
        unreachable.close()
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "redis": "unreachable"}


@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 302), ("viewer", 403), ("centralist", 403), ("operator", 200), ("admin", 200)],
)
def test_system_status_is_for_admins_and_operators(
    role: str | None, expected: int, world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for(role)
    assert client.get("/system").status_code == expected
    page = client.get("/").get_data(as_text=True)
    assert ('href="/system"' in page) == (expected == 200)


def _row(page: str, table: str, component: str) -> str:
    body = page.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0]
    match = re.search(rf'<tr data-component="{component}"[^>]*>.*?</tr>', body, re.S)
    assert match, f"no {component} row in {table}"
    return match.group(0)


def test_system_status_shows_states_beats_and_restarts(
    bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    prefix, client = bn_context.settings.redis.key_prefix, bn_context.live.client
    health.beat(
        client,
        prefix,
        health.SUPERVISOR,
        {
            "child:asterisk": "running",
            "child:serve": "restarting",
            "child:worker": "running",
            "pid:worker": "4242",
        },
    )
    health.beat(client, prefix, health.SERVE, {"ami": "connected"})
    health.record_restart(client, prefix, health.SERVE, "exited with -9", 2, 0.5)

    page = client_for("admin").get("/system").get_data(as_text=True)

    assert 'data-state="restarting"' in _row(page, "components", "serve")
    assert "ami=connected" in _row(page, "components", "serve")
    assert 'data-state="running"' in _row(page, "components", "asterisk")
    # The supervisor says the worker runs, but its own heartbeat never came: that is shown.
    worker = _row(page, "components", "worker")
    assert 'data-state="running"' in worker and "4242" in worker
    assert 'data-state="running"' in _row(page, "components", "supervisor")
    restart = _row(page, "restarts", "serve")
    assert "exited with -9" in restart and "<td>2</td>" in restart and "0.5 s" in restart


def test_without_a_supervisor_the_states_come_from_the_heartbeats(
    bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    prefix, client = bn_context.settings.redis.key_prefix, bn_context.live.client
    health.beat(client, prefix, health.SERVE, {"ami": "connected"})

    page = client_for("operator").get("/system").get_data(as_text=True)

    assert "Geen hartslag van de supervisor" in page  # the panel speaks Dutch first
    assert 'data-state="running"' in _row(page, "components", "serve")
    assert 'data-state="running"' in _row(page, "components", "asterisk")  # serve's AMI is connected
    assert 'data-state="down"' in _row(page, "components", "worker")
    assert "Geen herstarts." in page

"""Every route × every role → the expected status; wrong roles change nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from burgernet.db import session_scope
from burgernet.models import Action, Participant
from composition.context import Context
from tests.panel.conftest import World, audit_count, csrf_token

ROLES = [None, "viewer", "centralist", "operator", "admin"]
ANON, VIEW, CENT, OPER, ADMIN = range(5)


def everyone(status: int = 200) -> tuple[int, ...]:
    return (302, status, status, status, status)


def acting(status: int = 200) -> tuple[int, ...]:
    return (302, 403, status, status, status)


def people_only(status: int = 200) -> tuple[int, ...]:
    return (302, 403, 403, status, status)


def public(status: int = 200) -> tuple[int, ...]:
    return (status,) * 5


def get_table(w: World) -> dict[str, tuple[int, ...]]:
    return {
        "/": everyone(),
        "/actions": everyone(),
        "/actions?status=active": everyone(),
        f"/actions/{w.active_id}": everyone(),
        f"/actions/{w.draft_id}": everyone(),
        "/actions/999999": everyone(404),
        "/actions/new": acting(),
        f"/actions/{w.active_id}/area.json": everyone(),
        f"/actions/{w.draft_id}/area.json": everyone(),
        f"/actions/{w.active_id}/recipients.json": everyone(),
        f"/actions/{w.active_id}/photo": everyone(404),  # authorised, but no photo stored
        f"/tips/{w.tip_id}/audio": acting(),
        "/tips/999999/audio": acting(404),
        "/dashboard/actions.geojson": everyone(),
        "/dashboard/regions.geojson": everyone(),
        "/dashboard/presence.json": everyone(),
        "/people": people_only(),
        "/people?q=3511AB": people_only(),
        f"/people/{w.participant_id}": people_only(),
        "/people/999999": people_only(404),
        "/people/import": people_only(),
        "/people/export.csv": people_only(),
        "/login": public(),
        "/amber": public(),
        "/feeds/amber.json": public(),
        "/feeds/amber.atom": public(),
        "/feeds/amber.cap.xml": public(404),  # no AMBER Alert in this world
        "/api/v1/openapi.json": public(),
        "/vendor/leaflet/leaflet.js": public(),
        "/vendor/leaflet-draw/leaflet.draw.js": public(),
        "/vendor/leaflet/../../package.json": public(404),
        "/vendor/unknown/x.js": public(404),
        "/no-such-page": public(404),
    }


@pytest.mark.parametrize("role_index", range(len(ROLES)), ids=[str(r) for r in ROLES])
def test_every_get_route_for_role(
    role_index: int, world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for(ROLES[role_index])
    wrong = {}
    for path, expected in get_table(world).items():
        status = client.get(path).status_code
        if status != expected[role_index]:
            wrong[path] = (status, expected[role_index])
    assert wrong == {}, f"(got, expected) for role {ROLES[role_index]}"


def test_anonymous_is_sent_to_login_with_next(client_for: Callable[[str | None], FlaskClient]) -> None:
    response = client_for(None).get("/actions")
    assert response.status_code == 302
    assert "/login?next=%2Factions" in response.headers["Location"]


def _action_status(context: Context, action_id: int) -> str:
    with session_scope(context.sessions) as session:
        return str(session.scalar(select(Action.status).where(Action.id == action_id)))


def _counts(context: Context) -> tuple[int, int, int]:
    with session_scope(context.sessions) as session:
        return (
            int(session.scalar(select(func.count()).select_from(Action)) or 0),
            int(session.scalar(select(func.count()).select_from(Participant)) or 0),
            audit_count(context),
        )


@pytest.mark.parametrize("role", ["viewer"])
def test_wrong_role_cannot_change_actions(
    role: str, world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for(role)
    token = csrf_token(client, "/")
    before = _counts(bn_context)
    posts = {
        f"/actions/{world.draft_id}/start": {},
        f"/actions/{world.active_id}/close": {"outcome": "gevonden", "result_message": "dank"},
        "/actions/new": {
            "action_type": "vehicle",
            "title": "x",
            "region": "MN",
            "area_kind": "circle",
            "lon": "5.1",
            "lat": "52.1",
            "radius_m": "1000",
        },
        "/actions/recipients-preview": {"area_kind": "national"},
    }
    for path, data in posts.items():
        assert client.post(path, data={**data, "csrf_token": token}).status_code == 403, path
    assert _action_status(bn_context, world.draft_id) == "draft"
    assert _action_status(bn_context, world.active_id) == "active"
    assert _counts(bn_context) == before


@pytest.mark.parametrize("role", ["viewer", "centralist"])
def test_wrong_role_cannot_change_people(
    role: str, world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for(role)
    token = csrf_token(client, "/")
    before = _counts(bn_context)
    pid = world.participant_id
    posts = {
        f"/people/{pid}": {"postcode": "3512CD", "language": "en"},
        f"/people/{pid}/opt-out": {"opted_out": "1"},
        f"/people/{pid}/erase": {},
        "/people/import": {},
    }
    for path, data in posts.items():
        assert client.post(path, data={**data, "csrf_token": token}).status_code == 403, path
    assert _counts(bn_context) == before
    with session_scope(bn_context.sessions) as session:
        participant = session.get(Participant, pid)
        assert participant is not None
        assert (participant.postcode, participant.opted_out, participant.language) == ("3511AB", False, "nl")


def test_allowed_roles_can_start(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("centralist")
    token = csrf_token(client, "/")
    assert client.post(f"/actions/{world.draft_id}/start", data={"csrf_token": token}).status_code == 302
    assert _action_status(bn_context, world.draft_id) == "active"
    assert (
        audit_count(
            bn_context,
            verb="active",
            entity_id=str(world.draft_id),
            actor="centralist",
            source="web 127.0.0.1",
        )
        == 1
    )

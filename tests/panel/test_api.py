"""REST API: bearer tokens, roles, JSON errors with a stable error_id and a request_id, the OpenAPI
document."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask

from composition.context import Context
from tests.panel.conftest import UTRECHT, World, audit_count


def _auth(world: World, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[role]}"}


def _is_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """A JSON error: the stable code as error_id, and the request's id (also in the header)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == status and body["message"]
    assert body["error_id"] == code, body
    uuid.UUID(body["request_id"])
    assert response.headers["X-Request-Id"] == body["request_id"]
    return dict(body)


def test_errors_are_json_with_a_stable_code_and_the_request_id(world: World, app: Flask) -> None:
    client = app.test_client()
    _is_error(client.get("/api/v1/actions"), 401, "auth.unauthenticated")
    _is_error(
        client.get("/api/v1/actions", headers={"Authorization": "Bearer nope"}), 401, "auth.unauthenticated"
    )
    _is_error(
        client.get("/api/v1/actions", headers={"Authorization": "Basic abc"}), 401, "auth.unauthenticated"
    )
    _is_error(client.get("/api/v1/no-such-thing", headers=_auth(world, "admin")), 404, "http.not_found")
    _is_error(client.get("/api/v1/actions/999999", headers=_auth(world, "admin")), 404, "action.not_found")
    _is_error(client.delete("/api/v1/actions", headers=_auth(world, "admin")), 405, "http.method_not_allowed")
    _is_error(
        client.get("/api/v1/actions?status=nonsense", headers=_auth(world, "admin")), 400, "request.invalid"
    )
    _is_error(
        client.post("/api/v1/actions", headers=_auth(world, "admin"), data="not json"), 400, "request.invalid"
    )


def test_each_request_has_its_own_id(world: World, app: Flask) -> None:
    client = app.test_client()
    first = client.get("/api/v1/actions/999999", headers=_auth(world, "admin"))
    second = client.get("/api/v1/actions/999999", headers=_auth(world, "admin"))
    assert first.get_json()["error_id"] == second.get_json()["error_id"] == "action.not_found"
    assert first.get_json()["request_id"] != second.get_json()["request_id"]
    # Answers that are no error carry the id too: a caller can quote it for any request.
    ok = client.get("/api/v1/actions", headers=_auth(world, "admin"))
    assert ok.status_code == 200
    uuid.UUID(ok.headers["X-Request-Id"])


def test_unexpected_failure_is_a_json_500(world: World, app: Flask) -> None:
    def boom() -> str:
        raise RuntimeError("kaput")

    app.add_url_rule("/api/v1/boom", view_func=boom)
    body = _is_error(app.test_client().get("/api/v1/boom"), 500, "server.internal_error")
    assert "kaput" not in body["message"]  # internals stay in the log


def test_create_start_close_and_callbacks(world: World, bn_context: Context, app: Flask) -> None:
    client = app.test_client()
    created = client.post(
        "/api/v1/actions",
        headers=_auth(world, "centralist"),
        json={
            "type": "vehicle",
            "title": "Gestolen rode auto",
            "region": "MN",
            "area": {"kind": "circle", "lon": UTRECHT[0], "lat": UTRECHT[1], "radius_m": 1500},
            "team": ["c-mn-3"],
        },
    )
    assert created.status_code == 201, created.get_json()
    action = created.get_json()
    assert (action["status"], action["team"]) == ("draft", ["c-mn-3"])
    started = client.post(f"/api/v1/actions/{action['id']}/start", headers=_auth(world, "centralist"))
    assert started.get_json()["status"] == "active"
    _is_error(
        client.post(f"/api/v1/actions/{action['id']}/start", headers=_auth(world, "centralist")),
        409,
        "action.invalid_transition",
    )
    _is_error(
        client.post(
            f"/api/v1/actions/{action['id']}/close", headers=_auth(world, "centralist"), json={"outcome": " "}
        ),
        422,
        "input.invalid",
    )
    closed = client.post(
        f"/api/v1/actions/{action['id']}/close",
        headers=_auth(world, "centralist"),
        json={"outcome_kind": "found_otherwise", "outcome": "auto gevonden", "result_message": "Dank!"},
    )
    assert closed.get_json()["status"] == "closed"
    # create, start, close — and the broadcasts those asked for: the alert, then the result.
    for verb in ("create", "active", "closed", "broadcast-alert", "broadcast-result"):
        assert (
            audit_count(
                bn_context, entity_id=str(action["id"]), actor="centralist", source="api 127.0.0.1", verb=verb
            )
            == 1
        ), verb
    listed = client.get("/api/v1/actions?status=closed", headers=_auth(world, "viewer")).get_json()
    assert [a["id"] for a in listed["actions"]] == [action["id"]]

    callbacks = client.get(f"/api/v1/actions/{world.active_id}/callbacks", headers=_auth(world, "operator"))
    body = callbacks.get_json()
    assert [c["caller_number"] for c in body["calls"]] == ["+31612345678"]
    assert body["tips"][0]["audio_url"] == f"/tips/{world.tip_id}/audio"
    assert "recording_path" not in body["tips"][0]


def test_invalid_actions_are_422_with_the_reason(world: World, bn_context: Context, app: Flask) -> None:
    client = app.test_client()
    before = len(bn_context.actions.list_actions())
    cases = [
        (
            {
                "type": "vehicle",
                "title": "x",
                "region": "MN",
                "area": {"kind": "polygon", "geojson": {"type": "Point", "coordinates": [5, 52]}},
            },
            "Polygon",
            "area.invalid",
        ),
        (
            {"type": "vehicle", "title": "x", "region": "MN", "area": {"kind": "national"}},
            "only an AMBER Alert",
            "action.invalid",
        ),
        (
            {"type": "ufo", "title": "x", "region": "MN", "area": {"kind": "national"}},
            "unknown action type",
            "action.invalid",
        ),
        (
            {
                "type": "vehicle",
                "title": "x",
                "region": "XX",
                "area": {"kind": "circle", "lon": 5.1, "lat": 52.1, "radius_m": 10},
            },
            "unknown region",
            "action.invalid",
        ),
        (
            {"type": "vehicle", "title": "x", "region": "MN", "area": "here"},
            "area must be an object",
            "input.invalid",
        ),
        (
            {
                "type": "vehicle",
                "title": "x",
                "region": "MN",
                "area": {"kind": "circle", "lon": 5.1, "lat": 52.1, "radius_m": 10},
                "team": ["nobody"],
            },
            "unknown centralist",
            "action.invalid",
        ),
    ]
    for body, message, code in cases:
        response = client.post("/api/v1/actions", headers=_auth(world, "operator"), json=body)
        assert message in _is_error(response, 422, code)["message"], body
    assert len(bn_context.actions.list_actions()) == before


def test_roles_on_the_api(world: World, bn_context: Context, app: Flask) -> None:
    client = app.test_client()
    assert client.get("/api/v1/actions", headers=_auth(world, "viewer")).status_code == 200
    _is_error(
        client.post(f"/api/v1/actions/{world.draft_id}/start", headers=_auth(world, "viewer")),
        403,
        "auth.forbidden",
    )
    _is_error(
        client.get(f"/api/v1/actions/{world.active_id}/callbacks", headers=_auth(world, "viewer")),
        403,
        "auth.forbidden",
    )
    assert bn_context.actions.get(world.draft_id).status == "draft"


def test_api_needs_no_csrf_token_but_panel_cookies_do_not_work_on_it(world: World, app: Flask) -> None:
    from tests.panel.conftest import login

    client = app.test_client()
    assert login(client, "admin") == 302
    # A logged-in browser session is not an API credential (so the CSRF exemption is safe).
    _is_error(client.post(f"/api/v1/actions/{world.draft_id}/start"), 401, "auth.unauthenticated")


def test_openapi_document(world: World, app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/actions",
        "/actions/{action_id}",
        "/actions/{action_id}/start",
        "/actions/{action_id}/close",
        "/actions/{action_id}/callbacks",
        "/actions/{action_id}/recording",
        "/actions/{action_id}/broadcasts",
        "/actions/{action_id}/updates",
        "/actions/{action_id}/sightings",
        "/actions/{action_id}/approval",
        "/approvals",
        "/approvals/{request_id}",
        "/approvals/{request_id}/approve",
        "/approvals/{request_id}/refuse",
        "/broadcasts/{broadcast_id}",
        "/reports",
        "/reports/{table}",
    }
    # Every documented path exists in the app.
    rules = {str(rule) for rule in app.url_map.iter_rules()}
    for path in document["paths"]:
        rule = path.replace("{action_id}", "<int:action_id>").replace("{broadcast_id}", "<int:broadcast_id>")
        rule = rule.replace("{table}", "<table>").replace("{request_id}", "<int:request_id>")
        assert "/api/v1" + rule in rules


def test_actions_are_listed_newest_first_a_page_at_a_time(app: Flask, world: World) -> None:
    client = app.test_client()
    headers = _auth(world, "viewer")
    everything = client.get("/api/v1/actions?limit=500", headers=headers).get_json()
    ids = [a["id"] for a in everything["actions"]]
    assert ids == sorted(ids, reverse=True) and everything["next_before"] is None
    first = client.get("/api/v1/actions?limit=1", headers=headers).get_json()
    assert [a["id"] for a in first["actions"]] == ids[:1] and first["next_before"] == ids[0]
    second = client.get(f"/api/v1/actions?limit=1&before={first['next_before']}", headers=headers).get_json()
    assert [a["id"] for a in second["actions"]] == ids[1:2]
    for bad in ("0", "501", "many"):
        _is_error(client.get(f"/api/v1/actions?limit={bad}", headers=headers), 400, "request.invalid")


def test_patch_corrects_title_and_description_audited_and_never_after_close(
    app: Flask, world: World, bn_context: Context
) -> None:
    client = app.test_client()
    path = f"/api/v1/actions/{world.active_id}"
    edited = client.patch(
        path,
        json={"title": "Vermist: meisje (8)", "description": "Rode jas"},
        headers=_auth(world, "operator"),
    )
    assert edited.status_code == 200 and edited.get_json()["title"] == "Vermist: meisje (8)"
    assert bn_context.actions.get(world.active_id).title == "Vermist: meisje (8)"
    assert audit_count(bn_context, entity_id=str(world.active_id), verb="edit", actor="operator") == 1
    # Wrong role, unknown field, empty title: refused, nothing changed.
    _is_error(client.patch(path, json={"title": "x"}, headers=_auth(world, "viewer")), 403, "auth.forbidden")
    _is_error(
        client.patch(path, json={"status": "closed"}, headers=_auth(world, "operator")), 422, "input.invalid"
    )
    _is_error(
        client.patch(path, json={"title": "  "}, headers=_auth(world, "operator")), 422, "action.invalid"
    )
    _is_error(client.patch(path, json={"title": 5}, headers=_auth(world, "operator")), 422, "input.invalid")
    assert bn_context.actions.get(world.active_id).title == "Vermist: meisje (8)"
    bn_context.actions.close(world.active_id, outcome="Gevonden", result_message="", actor="test")
    _is_error(
        client.patch(path, json={"title": "Later"}, headers=_auth(world, "operator")),
        409,
        "action.invalid_state",
    )
    assert audit_count(bn_context, entity_id=str(world.active_id), verb="edit") == 1

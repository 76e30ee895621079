"""Four-eyes approval through the API: request, list, approve, refuse; typed errors with stable
codes (403 for who may not decide, 409 for the state)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from burgernet.actions import AreaSpec
from burgernet.approvals import set_approver
from burgernet.domain import AreaKind
from composition.context import Context
from tests.panel.conftest import UTRECHT, World, audit_count


def _auth(world: World, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[role]}"}


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error_id"] == code and body["status"] == status and body["message"], body
    uuid.UUID(body["request_id"])
    return dict(body)


def _amber(context: Context, *, national: bool = False) -> int:
    area = (
        AreaSpec(AreaKind.NATIONAL) if national else AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=3000)
    )
    return context.actions.create(
        action_type="amber_alert", title="AMBER Alert Sanne", region_code="MN", area=area, actor="operator"
    ).id


def _request(client: FlaskClient, world: World, action_id: int, role: str = "operator") -> dict[str, Any]:
    response = client.post(f"/api/v1/actions/{action_id}/approval", headers=_auth(world, role))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["Location"].endswith(f"/api/v1/approvals/{response.get_json()['id']}")
    return dict(response.get_json())


def test_start_without_approval_is_refused_with_approval_required(
    app: Flask, world: World, bn_context: Context
) -> None:
    client = app.test_client()
    action_id = _amber(bn_context, national=True)
    _error(
        client.post(f"/api/v1/actions/{action_id}/start", headers=_auth(world, "admin")),
        409,
        "approval.required",
    )
    created = client.post(
        "/api/v1/actions",
        headers=_auth(world, "operator"),
        json={
            "type": "amber_alert",
            "title": "AMBER Alert Noor",
            "region": "MN",
            "area": {"kind": "national"},
            "start": True,
        },
    )
    body = _error(created, 409, "approval.required")
    assert "/approval" in body["message"]  # names the draft to ask approval for
    # A regional missing child still starts at once.
    assert (
        client.post(f"/api/v1/actions/{world.draft_id}/start", headers=_auth(world, "operator")).status_code
        == 200
    )


def test_request_list_and_approve_by_a_second_person(app: Flask, world: World, bn_context: Context) -> None:
    set_approver(bn_context.sessions, "admin", True, actor="test", source="test")
    client = app.test_client()
    action_id = _amber(bn_context)
    request = _request(client, world, action_id)
    assert request["status"] == "pending" and request["requested_by"] == "operator"
    assert request["recipients"]["people"] == 1 and request["recipients"]["sms"] == 1
    # The estimate of burgernet.eta, as a whole number of seconds to 100 % handled.
    assert isinstance(request["eta_seconds"], int) and request["eta_seconds"] >= 0
    assert 0 < request["seconds_left"] <= 15 * 60
    assert request["expires_at"].endswith("+00:00")
    _error(
        client.post(f"/api/v1/actions/{action_id}/approval", headers=_auth(world, "operator")),
        409,
        "approval.pending",
    )

    listed = client.get("/api/v1/approvals", headers=_auth(world, "centralist")).get_json()
    assert [a["id"] for a in listed["approvals"]] == [request["id"]]

    approved = client.post(f"/api/v1/approvals/{request['id']}/approve", headers=_auth(world, "admin"))
    assert approved.status_code == 200, approved.get_data(as_text=True)
    body = approved.get_json()
    assert body["action"]["status"] == "active" and body["action"]["id"] == action_id
    assert body["approval"]["status"] == "approved" and body["approval"]["decided_by"] == "admin"
    assert audit_count(bn_context, verb="approval-approve", actor="admin", source="api 127.0.0.1") == 1
    assert client.get("/api/v1/approvals", headers=_auth(world, "admin")).get_json() == {"approvals": []}
    _error(
        client.post(f"/api/v1/approvals/{request['id']}/approve", headers=_auth(world, "admin")),
        409,
        "approval.already_decided",
    )


def test_self_approval_and_non_approvers_get_403(app: Flask, world: World, bn_context: Context) -> None:
    set_approver(bn_context.sessions, "operator", True, actor="test", source="test")
    client = app.test_client()
    request = _request(client, world, _amber(bn_context))
    path = f"/api/v1/approvals/{request['id']}/approve"
    _error(client.post(path, headers=_auth(world, "operator")), 403, "approval.self_approval")
    _error(client.post(path, headers=_auth(world, "centralist")), 403, "approval.not_approver")
    _error(client.post(path, headers=_auth(world, "viewer")), 403, "auth.forbidden")
    _error(client.get("/api/v1/approvals", headers=_auth(world, "viewer")), 403, "auth.forbidden")
    assert bn_context.actions.get(request["action_id"]).status == "draft"


def test_refuse_needs_a_reason_and_keeps_the_draft(app: Flask, world: World, bn_context: Context) -> None:
    set_approver(bn_context.sessions, "admin", True, actor="test", source="test")
    client = app.test_client()
    request = _request(client, world, _amber(bn_context))
    path = f"/api/v1/approvals/{request['id']}/refuse"
    _error(client.post(path, headers=_auth(world, "admin"), data="x"), 400, "request.invalid")
    _error(client.post(path, headers=_auth(world, "admin"), json={}), 422, "input.invalid")
    _error(
        client.post(path, headers=_auth(world, "admin"), json={"reason": " "}),
        422,
        "approval.reason_required",
    )
    refused = client.post(path, headers=_auth(world, "admin"), json={"reason": "Kind is terecht"})
    assert refused.status_code == 200
    assert refused.get_json()["status"] == "refused" and refused.get_json()["reason"] == "Kind is terecht"
    assert bn_context.actions.get(request["action_id"]).status == "draft"
    one = client.get(f"/api/v1/approvals/{request['id']}", headers=_auth(world, "viewer"))
    assert one.status_code == 403
    assert (
        client.get(f"/api/v1/approvals/{request['id']}", headers=_auth(world, "operator")).get_json()[
            "status"
        ]
        == "refused"
    )


def test_no_approval_for_an_action_that_does_not_need_it(app: Flask, world: World) -> None:
    client = app.test_client()
    _error(
        client.post(f"/api/v1/actions/{world.draft_id}/approval", headers=_auth(world, "operator")),
        422,
        "approval.not_needed",
    )
    _error(
        client.post("/api/v1/actions/99999/approval", headers=_auth(world, "operator")),
        404,
        "action.not_found",
    )
    _error(
        client.post("/api/v1/approvals/99999/approve", headers=_auth(world, "admin")),
        404,
        "approval.not_found",
    )

"""Four-eyes approval in the panel: "Request approval" instead of "Start", the approvers' list,
Approve and Refuse by a second person, the approver flag and the per-type setting."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy import select

from burgernet.actions import AreaSpec
from burgernet.approvals import ApprovalService, set_approver
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import AuditEvent, Participant, User
from callback_api.approvals.services import approval_service
from composition.context import Context
from tests.panel.conftest import UTRECHT, World, audit_count, csrf_token

ENGLISH = {"Accept-Language": "en"}


def _service(context: Context) -> ApprovalService:
    return approval_service(context)


Clients = Callable[[str | None], FlaskClient]


def _amber(context: Context) -> int:
    with session_scope(context.sessions) as session:  # someone the alert would reach, by SMS
        session.add(
            Participant(
                phone_e164="+31611112222",
                postcode="3511AB",
                lat=UTRECHT[1],
                lon=UTRECHT[0],
                language="nl",
                channel_voice=False,
                channel_sms=True,
                channel_email=False,
                inquiry_opt_in=False,
                opted_out=False,
                created_at=datetime.now(UTC),
            )
        )
    return context.actions.create(
        action_type="amber_alert",
        title="AMBER Alert Sanne",
        region_code="MN",
        area=AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=3000),
        team=["c-mn-1"],
        actor="operator",
    ).id


def _post(
    client: FlaskClient, path: str, data: dict[str, str] | None = None, page: str = "/approvals"
) -> str:
    token = csrf_token(client, page)
    response = client.post(path, data={"csrf_token": token, **(data or {})}, headers=ENGLISH)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return str(response.headers["Location"])


def _page(client: FlaskClient, path: str) -> str:
    return client.get(path, headers=ENGLISH).get_data(as_text=True)


def _approvers(context: Context, *names: str) -> None:
    for name in names:
        set_approver(context.sessions, name, True, actor="test", source="test")


def test_an_amber_draft_offers_request_approval_instead_of_start(
    world: World, bn_context: Context, client_for: Clients
) -> None:
    action_id = _amber(bn_context)
    operator = client_for("operator")
    html = _page(operator, f"/actions/{action_id}")
    assert "Request approval" in html and f"/actions/{action_id}/start" not in html
    # A regional draft of a type without approval still has its Start button.
    assert f"/actions/{world.draft_id}/start" in _page(operator, f"/actions/{world.draft_id}")
    # Starting it anyway is refused by the domain, with what to do.
    _post(operator, f"/actions/{action_id}/start", page=f"/actions/{action_id}")
    assert "request approval" in _page(operator, f"/actions/{action_id}")
    assert bn_context.actions.get(action_id).status == "draft"


def test_request_then_a_second_person_approves_and_the_action_starts(
    world: World, bn_context: Context, client_for: Clients
) -> None:
    _approvers(bn_context, "operator", "admin")
    action_id = _amber(bn_context)
    operator, admin = client_for("operator"), client_for("admin")

    _post(operator, f"/actions/{action_id}/approval", page=f"/actions/{action_id}")
    detail = _page(operator, f"/actions/{action_id}")
    assert "Waiting for approval" in detail and "Request approval" not in detail

    own = _page(operator, "/approvals")
    assert "AMBER Alert Sanne" in own and "Your own request" in own and "Approve and start" not in own
    listing = _page(admin, "/approvals")
    assert "Approve and start" in listing and "operator" in listing
    # The counts when asked, in channel order (the world's participant and this one, both in Utrecht).
    assert "voice 1, sms 2, email 0, push 0" in listing and "<strong>2</strong> people" in listing
    assert "not estimated" in listing or " min" in listing

    (request_id,) = [r.id for r in _service(bn_context).pending()]
    location = _post(admin, f"/approvals/{request_id}/approve")
    assert location.endswith(f"/actions/{action_id}")
    assert bn_context.actions.get(action_id).status == "active"
    with session_scope(bn_context.sessions) as session:
        started = session.execute(
            select(AuditEvent.actor, AuditEvent.detail).where(
                AuditEvent.entity == "action",
                AuditEvent.entity_id == str(action_id),
                AuditEvent.verb == "active",
            )
        ).one()
    assert started.actor == "admin"
    assert json.loads(started.detail)["approval"]["requested_by"] == "operator"
    assert "No requests are waiting." in _page(admin, "/approvals")


def test_self_approval_and_non_approvers_are_refused(
    world: World, bn_context: Context, client_for: Clients
) -> None:
    _approvers(bn_context, "operator")
    action_id = _amber(bn_context)
    operator, centralist = client_for("operator"), client_for("centralist")
    _post(operator, f"/actions/{action_id}/approval", page=f"/actions/{action_id}")
    (request_id,) = [r.id for r in _service(bn_context).pending()]

    _post(operator, f"/approvals/{request_id}/approve")
    assert "another approver must decide" in _page(operator, "/approvals")
    _post(centralist, f"/approvals/{request_id}/approve")
    assert "is not an approver" in _page(centralist, "/approvals")
    assert bn_context.actions.get(action_id).status == "draft"
    assert audit_count(bn_context, verb="approval-denied") == 2
    # A viewer may not even see the list.
    assert client_for("viewer").get("/approvals").status_code == 403


def test_approve_needs_the_csrf_token(world: World, bn_context: Context, client_for: Clients) -> None:
    _approvers(bn_context, "admin")
    action_id = _amber(bn_context)
    request = _service(bn_context).request_start(action_id, actor="operator")
    assert client_for("admin").post(f"/approvals/{request.id}/approve").status_code == 400
    assert bn_context.actions.get(action_id).status == "draft"


def test_refuse_with_a_reason_keeps_the_draft(world: World, bn_context: Context, client_for: Clients) -> None:
    _approvers(bn_context, "admin")
    action_id = _amber(bn_context)
    request = _service(bn_context).request_start(action_id, actor="operator")
    admin = client_for("admin")
    _post(admin, f"/approvals/{request.id}/refuse", {"reason": ""})
    assert "Say why" in _page(admin, "/approvals")
    _post(admin, f"/approvals/{request.id}/refuse", {"reason": "Kind is al terecht"})
    assert bn_context.actions.get(action_id).status == "draft"
    detail = _page(client_for("operator"), f"/actions/{action_id}")
    assert "refused by admin: Kind is al terecht" in detail and "Request approval" in detail


def test_admin_sets_the_approver_flag_on_the_users_page(
    world: World, bn_context: Context, client_for: Clients
) -> None:
    with session_scope(bn_context.sessions) as session:
        ids = {name: uid for name, uid in session.execute(select(User.username, User.id))}
    admin = client_for("admin")
    page = f"/settings/users/{ids['operator']}"
    assert "Make approver" in _page(admin, page)
    _post(admin, f"/settings/users/{ids['operator']}/approver", {"approver": "1"}, page=page)
    assert "Take the approver flag" in _page(admin, page)
    assert audit_count(bn_context, verb="approver-on") == 1
    # A viewer cannot approve starts: refused with the reason.
    token = csrf_token(admin, f"/settings/users/{ids['viewer']}")
    refused = admin.post(
        f"/settings/users/{ids['viewer']}/approver",
        data={"csrf_token": token, "approver": "1"},
        headers=ENGLISH,
    )
    assert refused.status_code == 400 and "only an admin, operator or centralist" in refused.get_data(
        as_text=True
    )
    # Only admins.
    assert client_for("operator").post(f"/settings/users/{ids['operator']}/approver").status_code in (
        400,
        403,
    )


def test_a_type_can_be_set_to_need_approval(world: World, bn_context: Context, client_for: Clients) -> None:
    admin = client_for("admin")
    page = "/settings/action-types/vehicle"
    token = csrf_token(admin, page)
    response = admin.post(
        page,
        data={
            "csrf_token": token,
            "do": "save",
            "radius_m": "10000",
            "channels": ["voice", "sms"],
            "urgency": "information",
            "title_block": "Gezocht voertuig ...",
            "description_block": "",
            "needs_approval": "y",
        },
        headers=ENGLISH,
    )
    assert response.status_code == 302
    assert "needed" in _page(admin, "/settings/action-types")
    vehicle = bn_context.actions.create(
        action_type="vehicle",
        title="Bus",
        region_code="MN",
        area=AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=1000),
        actor="operator",
    )
    assert "Request approval" in _page(client_for("operator"), f"/actions/{vehicle.id}")
    # The AMBER Alert's box is always ticked and cannot be changed.
    assert 'id="needs_approval" checked disabled' in _page(admin, "/settings/action-types/amber_alert")


def test_create_and_start_an_amber_alert_asks_for_approval(
    world: World, bn_context: Context, client_for: Clients
) -> None:
    operator = client_for("operator")
    token = csrf_token(operator, "/actions/new")
    response = operator.post(
        "/actions/new",
        data={
            "csrf_token": token,
            "action_type": "amber_alert",
            "title": "AMBER Alert Noor",
            "description": "",
            "region": "MN",
            "area_kind": "circle",
            "lon": str(UTRECHT[0]),
            "lat": str(UTRECHT[1]),
            "radius_m": "3000",
            "team": "c-mn-1",
            "channels": ["sms"],
            "channels_offered": "1",
            "urgency": "amber",
            "start_now": "y",
        },
        headers=ENGLISH,
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:800]
    (request,) = _service(bn_context).pending()
    assert request.action_title == "AMBER Alert Noor" and request.requested_by == "operator"
    assert bn_context.actions.get(request.action_id).status == "draft"

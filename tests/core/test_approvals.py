"""Four-eyes approval in the domain: which actions need it, who may approve, expiry, the audit."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.orm import Session

from burgernet.action_types import ActionTypeTemplates
from burgernet.actions import ApprovalRequired, AreaSpec
from burgernet.approvals import (
    ApprovalDecided,
    ApprovalExpired,
    ApprovalNotNeeded,
    ApprovalPending,
    ApprovalService,
    ApproverInvalid,
    NotAnApprover,
    ReasonRequired,
    SelfApproval,
    estimated_seconds,
    set_approver,
)
from burgernet.db import session_scope
from burgernet.domain import AreaKind, Role
from burgernet.models import Action, ActionApproval, AuditEvent, Base, User
from composition.context import Context
from testbed.approvals import ensure_approver, start_approved

UTRECHT = (5.1214, 52.0907)
CODE = r"[a-z]+(\.[a-z_]+)+"


def _create(context: Context, action_type: str = "amber_alert", *, national: bool = False) -> int:
    area = (
        AreaSpec(AreaKind.NATIONAL) if national else AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=3000)
    )
    return context.actions.create(
        action_type=action_type, title="Test", region_code="MN", area=area, team=["c-mn-1"], actor="anouk"
    ).id


def _counts(_session: Session, _action: Action) -> Mapping[str, int]:
    return {"sms": 12, "voice": 7, "people": 15}


def _service(context: Context, clock: datetime | None = None, minutes: int = 15) -> ApprovalService:
    return ApprovalService(
        context.sessions,
        context.actions,
        approval_minutes=minutes,
        count_recipients=_counts,
        estimate_eta=lambda _s, _a, counts: 60 + counts["people"],
        clock=(lambda: clock) if clock else (lambda: datetime.now(UTC)),
    )


def _audit(context: Context, action_id: int) -> list[tuple[str, str, dict[str, object]]]:
    with session_scope(context.sessions) as session:
        rows = session.execute(
            select(AuditEvent.actor, AuditEvent.verb, AuditEvent.detail)
            .where(AuditEvent.entity == "action", AuditEvent.entity_id == str(action_id))
            .order_by(AuditEvent.id)
        ).all()
    return [(actor, verb, json.loads(detail) if detail else {}) for actor, verb, detail in rows]


@pytest.fixture
def approvers(bn_context: Context) -> Context:
    ensure_approver(bn_context, "bram")
    ensure_approver(bn_context, "anouk")  # the requester is an approver too: still not for her own
    return bn_context


def test_an_amber_alert_does_not_start_without_approval(bn_context: Context) -> None:
    action_id = _create(bn_context)
    with pytest.raises(ApprovalRequired, match="request approval") as refused:
        bn_context.actions.start(action_id, actor="anouk")
    assert refused.value.code == "approval.required"
    assert bn_context.actions.get(action_id).status == "draft"


def test_a_national_action_needs_approval_and_an_urgent_regional_one_does_not(bn_context: Context) -> None:
    national = _create(bn_context, national=True)
    with pytest.raises(ApprovalRequired):
        bn_context.actions.start(national, actor="anouk")
    regional = _create(bn_context, "missing_child")
    assert bn_context.actions.start(regional, actor="anouk").status == "active"
    with pytest.raises(ApprovalNotNeeded):
        _service(bn_context).request_start(_create(bn_context, "missing_child"), actor="anouk")


def test_a_type_configured_to_need_approval_needs_it(bn_context: Context) -> None:
    templates = ActionTypeTemplates(bn_context.sessions)
    saved = templates.save(
        templates.get("vehicle").__class__(**{**templates.get("vehicle").__dict__, "needs_approval": True}),
        actor="admin",
        source="test",
    )
    assert saved.needs_approval
    with pytest.raises(ApprovalRequired):
        bn_context.actions.start(_create(bn_context, "vehicle"), actor="anouk")
    # An AMBER Alert's template cannot be switched off.
    amber = templates.get("amber_alert")
    unchecked = amber.__class__(**{**amber.__dict__, "needs_approval": False})
    assert templates.save(unchecked, actor="admin", source="test").needs_approval


def test_approve_starts_the_action_with_both_names_in_the_audit(approvers: Context) -> None:
    context = approvers
    action_id = _create(context)
    approvals = _service(context)
    request = approvals.request_start(action_id, actor="anouk", source="test")
    assert request.recipients == {"sms": 12, "voice": 7, "people": 15}
    assert request.eta_seconds == 75
    assert request.pending and 14 * 60 < request.seconds_left <= 15 * 60
    assert [r.id for r in approvals.pending()] == [request.id]

    view = approvals.approve(request.id, approver="bram", source="test")

    assert view.status == "active"
    assert approvals.get(request.id).status == "approved"
    assert approvals.get(request.id).decided_by == "bram"
    assert approvals.pending() == []
    events = _audit(context, action_id)
    verbs = [(actor, verb) for actor, verb, _ in events]
    assert ("anouk", "approval-request") in verbs
    assert ("bram", "approval-approve") in verbs
    started = next(detail for actor, verb, detail in events if verb == "active")
    assert next(actor for actor, verb, _ in events if verb == "active") == "bram"
    assert started["approval"] == {"approval": request.id, "requested_by": "anouk", "approved_by": "bram"}
    assert any(verb == "broadcast-alert" for _, verb, _ in events)  # the alert was requested


def test_self_approval_is_refused_and_audited(approvers: Context) -> None:
    action_id = _create(approvers)
    approvals = _service(approvers)
    request = approvals.request_start(action_id, actor="anouk")
    with pytest.raises(SelfApproval) as refused:
        approvals.approve(request.id, approver="anouk")
    assert refused.value.code == "approval.self_approval"
    # Nor through the action service directly.
    with pytest.raises(SelfApproval):
        approvers.actions.start(action_id, actor="anouk", approval_id=request.id)
    assert approvers.actions.get(action_id).status == "draft"
    assert approvals.get(request.id).pending
    assert ("anouk", "approval-denied") in [(a, v) for a, v, _ in _audit(approvers, action_id)]


def test_a_user_without_the_approver_flag_cannot_approve(approvers: Context) -> None:
    with session_scope(approvers.sessions) as session:
        session.add(User(username="carla", password_hash="!", role=Role.OPERATOR.value))
    action_id = _create(approvers)
    approvals = _service(approvers)
    request = approvals.request_start(action_id, actor="anouk")
    for who in ("carla", "nobody"):
        with pytest.raises(NotAnApprover) as refused:
            approvals.approve(request.id, approver=who)
        assert refused.value.code == "approval.not_approver"
    assert approvers.actions.get(action_id).status == "draft"


def test_an_expired_request_is_refused_and_marked_expired(approvers: Context) -> None:
    action_id = _create(approvers)
    then = datetime.now(UTC) - timedelta(minutes=20)
    request = _service(approvers, clock=then).request_start(action_id, actor="anouk")
    approvals = _service(approvers)
    with pytest.raises(ApprovalExpired) as refused:
        approvals.approve(request.id, approver="bram")
    assert refused.value.code == "approval.expired"
    assert approvals.get(request.id).status == "expired"
    with pytest.raises(ApprovalDecided):
        approvals.approve(request.id, approver="bram")
    assert approvers.actions.get(action_id).status == "draft"
    # A new request may follow; the stale one does not block it.
    assert approvals.request_start(action_id, actor="anouk").pending


def test_the_sweep_expires_stale_requests_and_the_list_leaves_them_out(approvers: Context) -> None:
    then = datetime.now(UTC) - timedelta(minutes=16)
    stale = _service(approvers, clock=then).request_start(_create(approvers), actor="anouk")
    fresh = _service(approvers).request_start(_create(approvers), actor="anouk")
    approvals = _service(approvers)
    assert approvals.expire_stale() == 1
    assert approvals.expire_stale() == 0
    assert [r.id for r in approvals.pending()] == [fresh.id]
    assert approvals.get(stale.id).status == "expired"
    assert ("system", "approval-expire") in [(a, v) for a, v, _ in _audit(approvers, stale.action_id)]


def test_refuse_keeps_the_draft_and_needs_a_reason(approvers: Context) -> None:
    action_id = _create(approvers)
    approvals = _service(approvers)
    request = approvals.request_start(action_id, actor="anouk")
    with pytest.raises(ApprovalPending):
        approvals.request_start(action_id, actor="anouk")
    with pytest.raises(ReasonRequired):
        approvals.refuse(request.id, approver="bram", reason="  ")
    with pytest.raises(SelfApproval):
        approvals.refuse(request.id, approver="anouk", reason="changed my mind")
    refused = approvals.refuse(request.id, approver="bram", reason="Kind al gevonden")
    assert (refused.status, refused.decided_by, refused.reason) == ("refused", "bram", "Kind al gevonden")
    assert approvers.actions.get(action_id).status == "draft"
    with pytest.raises(ApprovalDecided):
        approvals.approve(request.id, approver="bram")
    assert ("bram", "approval-refuse") in [(a, v) for a, v, _ in _audit(approvers, action_id)]


def test_error_codes_are_stable_and_well_formed() -> None:
    errors = [
        ApprovalRequired,
        ApprovalExpired,
        ApprovalDecided,
        ApprovalNotNeeded,
        ApprovalPending,
        NotAnApprover,
        SelfApproval,
        ReasonRequired,
        ApproverInvalid,
    ]
    codes = [error.code for error in errors]
    assert all(re.fullmatch(CODE, code) for code in codes)
    assert len(set(codes)) == len(codes)


def test_the_approver_flag_is_for_roles_that_start_actions_and_audited(bn_context: Context) -> None:
    with session_scope(bn_context.sessions) as session:
        session.add(User(username="vera", password_hash="!", role=Role.VIEWER.value))
        session.add(User(username="olaf", password_hash="!", role=Role.OPERATOR.value))
    with pytest.raises(ApproverInvalid):
        set_approver(bn_context.sessions, "vera", True, actor="admin", source="test")
    assert set_approver(bn_context.sessions, "olaf", True, actor="admin", source="test")
    assert not set_approver(bn_context.sessions, "olaf", True, actor="admin", source="test")
    with session_scope(bn_context.sessions) as session:
        verbs = session.scalars(select(AuditEvent.verb).where(AuditEvent.entity == "user")).all()
    assert "approver-on" in verbs


def test_start_approved_helper_goes_through_a_request(bn_context: Context) -> None:
    action_id = _create(bn_context)
    assert start_approved(bn_context, action_id, broadcast=False).status == "active"
    with session_scope(bn_context.sessions) as session:
        assert session.scalar(
            select(ActionApproval.decision).where(ActionApproval.action_id == action_id)
        ) == ("approved")


def test_migrated_schema_matches_the_approval_models(bn_context: Context) -> None:
    with bn_context.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    mine = [d for d in diff if any(t in str(d) for t in ("action_approvals", "approver", "needs_approval"))]
    assert mine == []


def test_the_eta_comes_from_the_estimator_and_a_failing_one_leaves_it_empty(
    approvers: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    import math

    from burgernet import eta

    context = approvers
    settings = context.settings
    hook = estimated_seconds(settings)
    action_id = _create(context)
    with session_scope(context.sessions) as session:
        action = session.get(Action, action_id)
        assert action is not None
        counts = {"sms": 40, "voice": 10, "people": 45}
        expected = eta.estimate_for_action(session, action_id, settings, recipients={"sms": 40, "voice": 10})
        assert expected is not None and expected.longest_seconds is not None
        assert hook(session, action, counts) == math.ceil(expected.longest_seconds)

        def broken(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("estimator down")

        monkeypatch.setattr(eta, "estimate_for_action", broken)
        assert hook(session, action, counts) is None
    request = ApprovalService(
        context.sessions, context.actions, approval_minutes=15, count_recipients=_counts, estimate_eta=hook
    ).request_start(action_id, actor="anouk")
    assert request.eta_seconds is None and request.recipients["people"] == 15  # asked all the same

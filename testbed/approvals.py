"""Starting an action that needs four-eyes approval, the way the domain demands, for tests,
benchmarks and scripts: a request by one user, approved by another (burgernet.approvals)."""

from __future__ import annotations

from sqlalchemy import select

from burgernet.actions import ActionView
from burgernet.approvals import ApprovalService, needs_approval
from burgernet.db import session_scope
from burgernet.domain import Role
from burgernet.models import Action, User
from burgernet.services import Services

REQUESTER, APPROVER = "test-requester", "test-approver"


def ensure_approver(services: Services, username: str = APPROVER, role: Role = Role.OPERATOR) -> None:
    """A user with the approver flag (no usable password: it never logs in)."""
    with session_scope(services.sessions) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            session.add(User(username=username, password_hash="!", role=role.value, approver=True))
        else:
            user.approver, user.active = True, True


def start_approved(
    services: Services,
    action_id: int,
    *,
    requester: str = REQUESTER,
    approver: str = APPROVER,
    source: str = "test",
    broadcast: bool = True,
) -> ActionView:
    """Start the action: straight away when it needs no approval, else through a request by
    ``requester`` that ``approver`` (made an approver here) approves."""
    with session_scope(services.sessions) as session:
        action = session.get(Action, action_id)
        needed = action is not None and needs_approval(session, action)
    if not needed:
        return services.actions.start(action_id, actor=requester, source=source, broadcast=broadcast)
    ensure_approver(services, approver)
    approvals = ApprovalService(
        services.sessions, services.actions, approval_minutes=services.settings.actions.approval_minutes
    )
    request = approvals.request_start(action_id, actor=requester, source=source)
    return services.actions.start(
        action_id, actor=approver, source=source, broadcast=broadcast, approval_id=request.id
    )

"""Panel users for admins: list, create with a role, link a centralist, role, (de)activate,
reset the password, issue or revoke the API token. Builds on :mod:`callback_api.auth.services`
(hashing, token format); every change is audited.

Lock-out guards: an admin cannot deactivate or demote themselves, and the last active admin
stays an active admin. A deactivated user's sessions and token stop working at once (both
are looked up per request and require ``active``). A new role, centralist or password, and
deactivation, end every session of the user (:func:`callback_api.auth.services.end_sessions`):
they log in again and get what the new state allows.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from burgernet.approvals import ApproverInvalid, set_approver
from burgernet.db import session_scope
from burgernet.domain import Role
from burgernet.models import Centralist, User
from burgernet.repositories import record_audit
from burgernet.services import Services
from callback_api.auth.services import (
    UserError,
    UserInfo,
    UserNotFound,
    create_user,
    end_sessions,
    issue_token,
)


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    role: Role
    active: bool
    centralist_id: int | None
    centralist_endpoint: str | None
    has_token: bool
    # May approve another person's start of an AMBER Alert or national action.
    approver: bool = False


def _centralist_id(session: Session, endpoint: str | None) -> int | None:
    if not endpoint:
        return None
    found = session.execute(
        select(Centralist.id, Centralist.active).where(Centralist.sip_endpoint == endpoint)
    ).first()
    if found is None:
        raise UserError(f"no centralist with endpoint {endpoint!r}")
    if not found[1]:
        raise UserError(f"centralist {endpoint!r} is deactivated")
    return int(found[0])


def _check_link(role: Role, endpoint: str | None) -> None:
    if endpoint and role is not Role.CENTRALIST:
        raise UserError("only a user with the role centralist can be linked to a centralist")


def _active_admins(session: Session) -> int:
    count = session.scalar(
        select(func.count()).select_from(User).where(User.role == Role.ADMIN.value, User.active)
    )
    return int(count or 0)


def _load(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise UserNotFound(f"no user {user_id}")
    return user


class UserAdminService:
    def __init__(self, services: Services) -> None:
        self._sessions = services.sessions

    def list_all(self) -> list[UserRow]:
        with session_scope(self._sessions) as session:
            rows = session.execute(
                select(
                    User.id,
                    User.username,
                    User.role,
                    User.active,
                    User.centralist_id,
                    Centralist.sip_endpoint,
                    User.api_token_hash.is_not(None),
                    User.approver,
                )
                .outerjoin(Centralist, Centralist.id == User.centralist_id)
                .order_by(User.username)
            )
            return [
                UserRow(uid, name, Role(role), bool(a), cid, ep, bool(t), bool(ap))
                for uid, name, role, a, cid, ep, t, ap in rows
            ]

    def get(self, user_id: int) -> UserRow:
        row = next((row for row in self.list_all() if row.id == user_id), None)
        if row is None:
            raise UserNotFound(f"no user {user_id}")
        return row

    def create(
        self,
        *,
        username: str,
        role: str,
        password: str,
        centralist_endpoint: str | None,
        actor: str,
        source: str,
    ) -> UserInfo:
        try:
            role_value = Role(role)
        except ValueError:
            raise UserError(f"unknown role {role!r}") from None
        _check_link(role_value, centralist_endpoint)
        with session_scope(self._sessions) as session:
            _centralist_id(session, centralist_endpoint)  # refuse before anything is created
        info = create_user(
            self._sessions, username=username, role=role, password=password, actor=actor, source=source
        )
        if centralist_endpoint:
            self.set_role(
                info.id, role=role, centralist_endpoint=centralist_endpoint, actor=actor, source=source
            )
        return info

    def set_role(
        self,
        user_id: int,
        *,
        role: str,
        centralist_endpoint: str | None,
        actor: str,
        source: str,
    ) -> None:
        try:
            role_value = Role(role)
        except ValueError:
            raise UserError(f"unknown role {role!r}") from None
        _check_link(role_value, centralist_endpoint)
        with session_scope(self._sessions) as session:
            user = _load(session, user_id)
            if user.role == Role.ADMIN.value and role_value is not Role.ADMIN:
                if user.username == actor:
                    raise UserError("you cannot take the admin role from yourself")
                if user.active and _active_admins(session) <= 1:
                    raise UserError("this is the last active admin; make another admin first")
            centralist_id = _centralist_id(session, centralist_endpoint)
            changed: dict[str, object] = {}
            if user.role != role_value.value:
                changed["role"] = [user.role, role_value.value]
            if user.centralist_id != centralist_id:
                changed["centralist"] = centralist_endpoint or None
            if not changed:
                return
            user.role, user.centralist_id = role_value.value, centralist_id
            end_sessions(user)
            record_audit(
                session,
                actor=actor,
                verb="edit",
                entity="user",
                entity_id=user.id,
                detail=changed,
                source=source,
            )

    def set_active(self, user_id: int, active: bool, *, actor: str, source: str) -> None:
        with session_scope(self._sessions) as session:
            user = _load(session, user_id)
            if user.active == active:
                return
            if not active:
                if user.username == actor:
                    raise UserError("you cannot deactivate yourself")
                if user.role == Role.ADMIN.value and _active_admins(session) <= 1:
                    raise UserError("this is the last active admin; make another admin first")
            user.active = active
            end_sessions(user)
            record_audit(
                session,
                actor=actor,
                verb="activate" if active else "deactivate",
                entity="user",
                entity_id=user.id,
                detail={"username": user.username},
                source=source,
            )

    def set_approver(self, user_id: int, approver: bool, *, actor: str, source: str) -> None:
        """Give or take the approver flag (burgernet.approvals; audited)."""
        row = self.get(user_id)
        try:
            set_approver(self._sessions, row.username, approver, actor=actor, source=source)
        except ApproverInvalid as exc:
            raise UserError(str(exc)) from None

    def reset_password(self, user_id: int, *, actor: str, source: str) -> str:
        """A new random password (returned once, only its hash is stored)."""
        password = secrets.token_urlsafe(12)
        with session_scope(self._sessions) as session:
            user = _load(session, user_id)
            user.password_hash = generate_password_hash(password)
            end_sessions(user)
            record_audit(
                session,
                actor=actor,
                verb="reset-password",
                entity="user",
                entity_id=user.id,
                detail={"username": user.username},
                source=source,
            )
        return password

    def new_token(self, user_id: int, *, actor: str, source: str) -> str:
        row = self.get(user_id)
        if not row.active:
            raise UserError("the user is deactivated; activate them first")
        return issue_token(self._sessions, row.username, actor=actor, source=source)

    def revoke_token(self, user_id: int, *, actor: str, source: str) -> bool:
        with session_scope(self._sessions) as session:
            user = _load(session, user_id)
            if user.api_token_hash is None:
                return False
            user.api_token_hash = None
            record_audit(
                session, actor=actor, verb="revoke-token", entity="user", entity_id=user.id, source=source
            )
        return True

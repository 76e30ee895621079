"""Panel users: create, authenticate by password or API token (only hashes are stored).

The functions take the ``sessionmaker``: the ``burgernet web`` commands and the composition
root use them too. :class:`AccountService` binds them to the process's services for the views,
and audits logging in and out.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import check_password_hash, generate_password_hash

from burgernet.db import session_scope
from burgernet.domain import Role
from burgernet.models import User
from burgernet.repositories import record_audit
from burgernet.services import Services
from callback_api.errors import InputInvalid, NotFound

MIN_PASSWORD_LENGTH = 12
# Computed once so that a login for an unknown user costs as much as one for a known user
# (no timing oracle for valid usernames).
_DUMMY_HASH = generate_password_hash("burgernet-timing-equaliser")


class UserError(InputInvalid):
    """The user cannot be created or changed; the message says why."""

    code: ClassVar[str] = "user.invalid"


class UserNotFound(UserError, NotFound):
    code: ClassVar[str] = "user.not_found"
    status: ClassVar[int] = 404


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    role: Role
    centralist_id: int | None
    active: bool
    session_version: int = 0


def _info(user: User) -> UserInfo:
    return UserInfo(
        user.id, user.username, Role(user.role), user.centralist_id, user.active, user.session_version or 0
    )


def end_sessions(user: User) -> None:
    """Make every session cookie issued to ``user`` so far worthless (see callback_api.security)."""
    user.session_version = (user.session_version or 0) + 1


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    sessions: sessionmaker[Session], *, username: str, role: str, password: str, actor: str, source: str
) -> UserInfo:
    username = username.strip()
    if not username or len(username) > 80:
        raise UserError("a username of 1 to 80 characters is required")
    try:
        role_value = Role(role)
    except ValueError:
        raise UserError(f"unknown role {role!r} (one of {', '.join(r.value for r in Role)})") from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    with session_scope(sessions) as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise UserError(f"user {username!r} already exists")
        user = User(
            username=username,
            password_hash=generate_password_hash(password),
            role=role_value.value,
            active=True,
        )
        session.add(user)
        session.flush()
        record_audit(
            session,
            actor=actor,
            verb="create",
            entity="user",
            entity_id=user.id,
            detail={"username": username, "role": role_value.value},
            source=source,
        )
        return _info(user)


def issue_token(sessions: sessionmaker[Session], username: str, *, actor: str, source: str) -> str:
    """A new API token for ``username`` (replacing any old one); only its SHA-256 is stored."""
    token = secrets.token_urlsafe(32)
    with session_scope(sessions) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise UserNotFound(f"no user {username!r}")
        user.api_token_hash = token_hash(token)
        record_audit(
            session, actor=actor, verb="issue-token", entity="user", entity_id=user.id, source=source
        )
    return token


def authenticate(sessions: sessionmaker[Session], username: str, password: str) -> UserInfo | None:
    with session_scope(sessions) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            check_password_hash(_DUMMY_HASH, password)
            return None
        if not check_password_hash(user.password_hash, password) or not user.active:
            return None
        return _info(user)


def by_id(sessions: sessionmaker[Session], user_id: int) -> UserInfo | None:
    with session_scope(sessions) as session:
        user = session.get(User, user_id)
        return _info(user) if user is not None and user.active else None


def by_session(sessions: sessionmaker[Session], user_id: int, session_version: int) -> UserInfo | None:
    """The active user of a session cookie, if the cookie's session version is still theirs."""
    info = by_id(sessions, user_id)
    return info if info is not None and info.session_version == session_version else None


def by_token(sessions: sessionmaker[Session], token: str) -> UserInfo | None:
    if not token:
        return None
    with session_scope(sessions) as session:
        user = session.scalar(select(User).where(User.api_token_hash == token_hash(token)))
        return _info(user) if user is not None and user.active else None


class AccountService:
    """Logging in and out (audited) and finding the user of a cookie or an API token."""

    def __init__(self, services: Services) -> None:
        self._sessions = services.sessions

    def log_in(self, username: str, password: str, *, source: str) -> UserInfo | None:
        """The active user with this password, the login audited; None otherwise."""
        info = authenticate(self._sessions, username, password)
        if info is not None:
            self._audit(info, "login", source)
        return info

    def log_out(self, info: UserInfo, *, source: str) -> None:
        """Audited; ends every session of the user on the server (a kept cookie no longer works)."""
        with session_scope(self._sessions) as session:
            user = session.get(User, info.id)
            if user is not None:
                end_sessions(user)
        self._audit(info, "logout", source)

    def by_id(self, user_id: int) -> UserInfo | None:
        return by_id(self._sessions, user_id)

    def by_session(self, user_id: int, session_version: int) -> UserInfo | None:
        return by_session(self._sessions, user_id, session_version)

    def by_token(self, token: str) -> UserInfo | None:
        return by_token(self._sessions, token)

    def _audit(self, info: UserInfo, verb: str, source: str) -> None:
        with session_scope(self._sessions) as session:
            record_audit(
                session, actor=info.username, verb=verb, entity="user", entity_id=info.id, source=source
            )

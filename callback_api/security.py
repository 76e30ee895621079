"""Who may do what: the logged-in user, role checks, the login throttle, the audit source."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar, cast

from flask import abort, current_app, request, session
from flask_login import UserMixin, current_user

from burgernet.domain import Role
from burgernet.live import LiveState

if TYPE_CHECKING:  # the auth feature imports this module: no import cycle at run time
    from callback_api.auth.services import UserInfo

F = TypeVar("F", bound=Callable[..., Any])

ALL_ROLES = frozenset(Role)
# Start, close and create actions; listen to tips (the people handling the search).
ACTION_ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.CENTRALIST})
# Personal data in bulk: search, edit, erase, import and export participants.
PEOPLE_ROLES = frozenset({Role.ADMIN, Role.OPERATOR})


class PanelUser(UserMixin):
    def __init__(self, info: UserInfo) -> None:
        self.info = info

    def get_id(self) -> str:
        return str(self.info.id)

    @property
    def username(self) -> str:
        return self.info.username

    @property
    def role(self) -> Role:
        return self.info.role


def user() -> PanelUser:
    return cast(PanelUser, current_user._get_current_object())


def can(roles: frozenset[Role]) -> bool:
    return bool(current_user.is_authenticated) and user().role in roles


def roles_required(roles: frozenset[Role]) -> Callable[[F], F]:
    """Anonymous → the login page (302); logged in with another role → 403."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            if user().role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate


def reset_cookie() -> None:
    """Empty the signed cookie (no session fixation across a login or logout), keeping only
    the language choice."""
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language


def audit_source() -> str:
    """``web <address>`` for the audit log (the proxy's address unless ProxyFix is configured)."""
    return f"web {request.remote_addr or 'unknown'}"[:80]


@dataclass(frozen=True)
class LoginThrottle:
    """Failed logins per (address, username) in Redis, expiring: at most ``limit`` per window.

    Keyed on both so that one attacker cannot lock a colleague out from another address, and
    a shared address (a control room behind NAT) does not lock out everyone at once.
    """

    live: LiveState
    limit: int = 5
    window_seconds: int = 15 * 60

    def _key(self, address: str, username: str) -> str:
        return self.live.keys.counter(f"login-failures:{address}:{username.strip().lower()[:80]}")

    def blocked(self, address: str, username: str) -> bool:
        value = self.live.client.get(self._key(address, username))
        return value is not None and int(value) >= self.limit

    def failed(self, address: str, username: str) -> None:
        key = self._key(address, username)
        with self.live.client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.window_seconds)
            pipe.execute()

    def succeeded(self, address: str, username: str) -> None:
        self.live.client.delete(self._key(address, username))

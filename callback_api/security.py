"""Who may do what: the logged-in user, role checks, the login throttle, the audit source.

Sessions: the signed cookie names the user *and* their session version (``"12.3"``); the user
loader refuses a cookie whose version is not the user's current one. Logging out, a new
password, a new role or centralist, and deactivation raise the version, so every cookie issued
before (a copied or replayed one included) is worthless from then on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar, cast

import redis
from flask import abort, current_app, request, session
from flask_login import UserMixin, current_user

from burgernet.domain import Role
from burgernet.live import LiveState
from callback_api.access import Reader

if TYPE_CHECKING:  # the auth feature imports this module: no import cycle at run time
    from callback_api.auth.services import UserInfo

F = TypeVar("F", bound=Callable[..., Any])

ALL_ROLES = frozenset(Role)
# Start, close and create actions; listen to tips (the people handling the search).
ACTION_ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.CENTRALIST})
# Personal data in bulk: search, edit, erase, import and export participants.
PEOPLE_ROLES = frozenset({Role.ADMIN, Role.OPERATOR})


log = logging.getLogger(__name__)


def parse_session_id(value: str) -> tuple[int, int] | None:
    """``"12.3"`` → (user id 12, session version 3); anything else (an old plain id) → None."""
    user_id, dot, version = value.partition(".")
    if not dot or not user_id.isdigit() or not version.isdigit():
        return None
    return int(user_id), int(version)


class PanelUser(UserMixin):
    def __init__(self, info: UserInfo) -> None:
        self.info = info

    def get_id(self) -> str:
        """What the cookie carries: the user id and the session version (see the module doc)."""
        return f"{self.info.id}.{self.info.session_version}"

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


def reader() -> Reader:
    """The logged-in user as need-to-know sees them (:mod:`callback_api.access`)."""
    info = user().info
    return Reader(info.username, info.role, info.centralist_id, audit_source())


def audit_source() -> str:
    """``web <address>`` for the audit log (the proxy's address unless ProxyFix is configured)."""
    return f"web {request.remote_addr or 'unknown'}"[:80]


class _MemoryCounters:
    """Expiring counters in this process: the throttle's fallback while Redis is unreachable."""

    MAX_KEYS = 100_000  # a flood of made-up usernames cannot grow it without bound

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}  # key → (count, expires at, monotonic)

    def get(self, key: str) -> int:
        with self._lock:
            count, expires = self._counts.get(key, (0, 0.0))
            return count if expires > time.monotonic() else 0

    def incr(self, key: str, window_seconds: int) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._counts) >= self.MAX_KEYS:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
                if len(self._counts) >= self.MAX_KEYS:
                    self._counts.pop(next(iter(self._counts)))  # the oldest key
            count, expires = self._counts.get(key, (0, 0.0))
            # As in Redis: the window runs from the latest failure.
            self._counts[key] = ((count if expires > now else 0) + 1, now + window_seconds)

    def delete(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)


@dataclass(frozen=True)
class LoginThrottle:
    """Failed logins, counted per (address, username) and per address; a count expires
    ``window_seconds`` after its latest failure.

    * ``per_user_limit`` failures for one username from one address block that pair: guessing
      one account's password is slow, yet the real user logs in from any other address.
    * ``per_address_limit`` failures from one address, whatever the usernames, block that
      address: trying many accounts from one place is slow too.

    Never per username alone: a flood of wrong passwords for ``admin`` from one address cannot
    lock the admin out elsewhere. A success clears its (address, username) pair only. The
    address is the client's as ProxyFix sees it (``web.trusted_proxy_hops`` behind a proxy).

    Counted in Redis (shared by every panel process); while Redis cannot be reached the counts
    go to this process's memory instead, so logging in keeps working and stays throttled.
    Counts in memory are checked as well as Redis's until they expire.
    """

    live: LiveState
    per_user_limit: int = 5
    per_address_limit: int = 20
    window_seconds: int = 15 * 60
    memory: _MemoryCounters = field(default_factory=_MemoryCounters, compare=False, repr=False)

    def _keys(self, address: str, username: str) -> tuple[str, str]:
        pair = self.live.keys.counter(f"login-failures:{address}:{username.strip().lower()[:80]}")
        return pair, self.live.keys.counter(f"login-failures-address:{address}")

    def blocked(self, address: str, username: str) -> bool:
        pair, whole = self._keys(address, username)
        limits = ((pair, self.per_user_limit), (whole, self.per_address_limit))
        if any(self.memory.get(key) >= limit for key, limit in limits):
            return True
        try:
            values = self.live.client.mget([pair, whole])
        except redis.RedisError as exc:
            log.warning("login throttle: Redis unreachable (%s); counting in this process", exc)
            return False
        counts = [int(value or 0) for value in values]
        return any(count >= limit for count, (_, limit) in zip(counts, limits, strict=True))

    def failed(self, address: str, username: str) -> None:
        keys = self._keys(address, username)
        try:
            with self.live.client.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.incr(key)
                    pipe.expire(key, self.window_seconds)
                pipe.execute()
        except redis.RedisError:
            for key in keys:
                self.memory.incr(key, self.window_seconds)

    def succeeded(self, address: str, username: str) -> None:
        pair, _ = self._keys(address, username)
        self.memory.delete(pair)
        with contextlib.suppress(redis.RedisError):  # else the pair's failures expire on their own
            self.live.client.delete(pair)

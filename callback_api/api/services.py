"""What the API adds to the features it exposes: the caller, from a bearer token.

Everything else the API does is the actions feature's (:mod:`burgernet.actions`,
:mod:`callback_api.actions.services`); the API only speaks JSON about it.
"""

from __future__ import annotations

from burgernet.domain import Role
from burgernet.services import Services
from callback_api.auth.services import AccountService, UserInfo
from callback_api.errors import Forbidden, NotAuthenticated


class TokenAuth:
    def __init__(self, services: Services) -> None:
        self._accounts = AccountService(services)

    def user(self, authorization: str, roles: frozenset[Role]) -> UserInfo:
        """The active user whose token is in the ``Authorization: Bearer <token>`` header and whose
        role is one of ``roles``; NotAuthenticated or Forbidden otherwise."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("missing bearer token (Authorization: Bearer <token>)")
        info = self._accounts.by_token(token.strip())
        if info is None:
            raise NotAuthenticated("invalid or revoked token")
        if info.role not in roles:
            raise Forbidden(f"role {info.role.value} may not do this")
        return info

"""Errors the core raises when it refuses a request, each with a stable ``code``.

The message is for people and may be reworded; the ``code`` (``"action.not_found"``) is a
contract: adapters return it to API clients and log it, so callers and log searches can key on
it. Two kinds say more than "invalid": :class:`NotFoundError` (the thing asked about does not
exist) and :class:`ConflictError` (it exists, but its current state forbids the change).
Adapters map those kinds to their own terms (the panel: 404, 409, else 422); the core knows
nothing of HTTP.

Every domain error is a ``ValueError``, as the core's errors were before they had codes.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(ValueError):
    """The request cannot be carried out; the message says why and nothing was changed."""

    code: ClassVar[str] = "domain.invalid"


class NotFoundError(DomainError):
    """The thing the request is about does not exist."""

    code: ClassVar[str] = "domain.not_found"


class ConflictError(DomainError):
    """The request is well formed, but the current state forbids it (a closed action, say)."""

    code: ClassVar[str] = "domain.conflict"


class DatabaseError(DomainError):
    """The database cannot serve this code: unreachable, or its schema is not the code's."""

    code: ClassVar[str] = "database.error"


class DatabaseUnreachable(DatabaseError):
    """No connection to the database could be made (bad URL, server down, no permission)."""

    code: ClassVar[str] = "database.unreachable"


class SchemaNotCurrent(DatabaseError):
    """The database is empty or at an Alembic revision other than the code's head."""

    code: ClassVar[str] = "database.schema_not_current"

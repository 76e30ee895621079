"""Need-to-know: who may read the personal data of an action (callers' numbers, tips, statements).

The matrix (enforced by the services below, not only by the templates; the API follows it):

==============  ================================================================================
role            personal data of an action: its calls' caller numbers, its tips (list, call-back
                number, playback) and the statements of inquiries linked to it
==============  ================================================================================
admin           every action, and inquiries without an action (national)
operator        every action, and inquiries without an action (national)
centralist      actions of their own region (the linked centralist's region) and actions whose
                team they are on; none when the user is linked to no centralist
viewer          none: numbers masked, no tips, no statements (and no people pages)
==============  ================================================================================

Admins and operators are national because they run the whole service: they start actions in
any region, import and erase participants (the people pages) and run inquiries, which already
shows them every person's data; a per-user ``national`` flag would add nothing they could not
reach anyway. A centralist works one region's calls: what belongs to another region is none
of their business unless they were put on that action's team.

What a reader may not see is masked (numbers) or left out (tips, statements) in lists, and
refused with :class:`NeedToKnow` (403, ``access.need_to_know``) when asked for directly (a
tip's recording, a statement's photo, the API's calls and tips). Every read of personal data
that is asked for directly (tip playback, a statement page or photo, the API's calls and tips)
is audited with the verb ``read``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from burgernet.db import session_scope
from burgernet.domain import Role
from burgernet.models import Action, ActionCentralist, Centralist
from burgernet.repositories import record_audit
from callback_api.errors import Forbidden

T = TypeVar("T")

# Roles that see every action's personal data (see the module doc for why these two).
NATIONAL_ROLES = frozenset({Role.ADMIN, Role.OPERATOR})
# Roles that never see personal data.
NO_PERSONAL_DATA = frozenset({Role.VIEWER})


class NeedToKnow(Forbidden):
    """The reader's role or region does not give them this action's personal data."""

    code: ClassVar[str] = "access.need_to_know"


@dataclass(frozen=True)
class Reader:
    """Who is reading, as far as need-to-know cares; ``source`` is the audit log's."""

    username: str
    role: Role
    centralist_id: int | None
    source: str

    @property
    def national(self) -> bool:
        return self.role in NATIONAL_ROLES

    @property
    def sees_personal_data(self) -> bool:
        return self.role not in NO_PERSONAL_DATA


def mask_number(number: str | None) -> str:
    """Someone called, not who: ``+3161234****``."""
    if not number:
        return ""
    return number[:-4] + "****" if len(number) > 6 else "****"


def _region_of(session: Session, centralist_id: int) -> int | None:
    return session.scalar(select(Centralist.region_id).where(Centralist.id == centralist_id))


class NeedToKnowService:
    """Decides what a reader may see of an action's personal data, and audits the reads."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def may_read(self, reader: Reader, action_id: int | None) -> bool:
        """Whether ``reader`` may see the personal data of ``action_id`` (None: no action, which
        only national roles may)."""
        if not reader.sees_personal_data:
            return False
        if reader.national:
            return True
        if action_id is None or reader.centralist_id is None:
            return False
        return action_id in self.readable_actions(reader, [action_id])

    def readable_actions(self, reader: Reader, action_ids: Iterable[int]) -> set[int]:
        """Those of ``action_ids`` whose personal data ``reader`` may see (one query)."""
        wanted = set(action_ids)
        if not wanted or not reader.sees_personal_data:
            return set()
        if reader.national:
            return wanted
        if reader.centralist_id is None:
            return set()
        with session_scope(self._sessions) as session:
            region_id = _region_of(session, reader.centralist_id)
            on_team = exists().where(
                ActionCentralist.action_id == Action.id,
                ActionCentralist.centralist_id == reader.centralist_id,
            )
            rows = session.scalars(
                select(Action.id).where(Action.id.in_(wanted), (Action.region_id == region_id) | on_team)
            )
            return set(rows)

    def require(self, reader: Reader, action_id: int | None) -> None:
        """NeedToKnow (403) unless ``reader`` may see the action's personal data."""
        if not self.may_read(reader, action_id):
            what = f"action {action_id}" if action_id is not None else "data outside any action"
            raise NeedToKnow(f"{reader.username} ({reader.role.value}) may not read personal data of {what}")

    def audit_read(
        self, reader: Reader, entity: str, entity_id: object, detail: dict[str, object] | None = None
    ) -> None:
        with session_scope(self._sessions) as session:
            record_audit(
                session,
                actor=reader.username,
                verb="read",
                entity=entity,
                entity_id=entity_id,
                detail=detail,
                source=reader.source,
            )


def masked(views: Iterable[T], field: str) -> list[T]:
    """Frozen view dataclasses with the number in ``field`` masked."""
    return [dataclasses.replace(view, **{field: mask_number(getattr(view, field))}) for view in views]  # type: ignore[type-var]

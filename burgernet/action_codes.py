"""Action codes: four digits a caller keys on the free number to reach one action's team.

Every action gets a code when it starts (``ActionService.start``, in the same transaction as the
status change): ``"4821"``, four digits, never a leading zero (so 9,000 codes). A code is unique
among the actions that are not closed; a closed action keeps its code on record, but the code
no longer routes and may later go to another action.

Which free code: a random one (a code says nothing about the action, its region or how many
actions there are), preferring codes no action closed in the last :data:`QUIET_DAYS` days, so a
caller with an old SMS is not put through to a new, unrelated action. At about 4,000 actions a
month nationally that leaves thousands of quiet codes; only when none is left does a recently
closed code come back.

Two starts at the same moment may draw the same code. The database settles it: a partial
unique index on the code of actions not closed (migration 0015) refuses the second, and
:func:`assign_code` draws again in a savepoint, up to :data:`MAX_DRAWS` times.

On a call the code is looked up in the routing snapshot (``routing.ActiveAction.code``, cached
in this process and in Redis), not here: :func:`active_action_for_code` is the database's
answer, used when that snapshot cannot be had.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from random import Random
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from burgernet.domain import ActionStatus
from burgernet.errors import ConflictError, DomainError
from burgernet.models import Action, ActionCentralist

log = logging.getLogger(__name__)

CODE_DIGITS = 4
FIRST_CODE = 1000  # no leading zero: "0123" would be dialled as "123" by some phones and apps
LAST_CODE = 9999
# A code closed this recently goes to a new action only when no other code is free.
QUIET_DAYS = 30
# Draws after a collision with a concurrent start (each one a savepoint and an INSERT's worth).
MAX_DRAWS = 8


class ActionCodeError(DomainError):
    code: ClassVar[str] = "action.code_invalid"


class NoFreeActionCode(ActionCodeError, ConflictError):
    """Every code is taken by an action that is not closed (9,000 open actions)."""

    code: ClassVar[str] = "action.codes_exhausted"


def is_action_code(text: str | None) -> bool:
    """Four ASCII digits, the first not 0: the shape of a code (whether it routes is another matter)."""
    return (
        text is not None and len(text) == CODE_DIGITS and text.isascii() and text.isdigit() and text[0] != "0"
    )


def codes_in_use(session: Session, *, exclude_action_id: int | None = None) -> set[str]:
    """Codes of actions that are not closed (drafts have none)."""
    query = select(Action.action_code).where(
        Action.status != ActionStatus.CLOSED.value, Action.action_code.is_not(None)
    )
    if exclude_action_id is not None:
        query = query.where(Action.id != exclude_action_id)
    return {code for code in session.scalars(query) if code}


def _recently_closed(session: Session, now: datetime) -> set[str]:
    since = now - timedelta(days=QUIET_DAYS)
    rows = session.scalars(
        select(Action.action_code).where(
            Action.status == ActionStatus.CLOSED.value,
            Action.action_code.is_not(None),
            Action.closed_at >= since,
        )
    )
    return {code for code in rows if code}


def assign_code(
    session: Session, action: Action, *, rng: Random | None = None, now: datetime | None = None
) -> str:
    """Give ``action`` (starting now, not closed) a code no other open action has; returns it.

    Idempotent: an action that already holds a code keeps it. Call it inside the transaction
    that starts the action; the action's other pending changes are flushed first, so the
    savepoint a collision rolls back holds nothing but the code.
    """
    if action.status == ActionStatus.CLOSED.value:
        raise ActionCodeError(f"action {action.id} is closed: a closed action gets no new code")
    if action.action_code:
        return action.action_code
    draw = rng or secrets.SystemRandom()
    session.flush()
    taken = codes_in_use(session, exclude_action_id=action.id)
    quiet_after = _recently_closed(session, now or datetime.now(UTC))
    for _attempt in range(MAX_DRAWS):
        free = [code for code in range(FIRST_CODE, LAST_CODE + 1) if str(code) not in taken]
        if not free:
            raise NoFreeActionCode("every action code is taken by an action that is not closed")
        quiet = [code for code in free if str(code) not in quiet_after]
        code = str(draw.choice(quiet or free))
        try:
            with session.begin_nested():
                action.action_code = code
                session.flush()
        except IntegrityError:
            # A concurrent start took it (the partial unique index); draw again without it.
            log.info("action %s: action code %s was taken meanwhile; drawing another", action.id, code)
            taken.add(code)
            continue
        return code
    raise NoFreeActionCode(f"no action code could be given to action {action.id} in {MAX_DRAWS} draws")


def active_action_for_code(session: Session, code: str) -> Action | None:
    """The active action that holds ``code`` (region and team loaded), or None.

    None for a code of the wrong shape, a code nobody holds and a closed action's code.
    """
    if not is_action_code(code):
        return None
    return session.scalars(
        select(Action)
        .where(Action.action_code == code, Action.status == ActionStatus.ACTIVE.value)
        .options(
            selectinload(Action.region),
            selectinload(Action.team).selectinload(ActionCentralist.centralist),
        )
        .order_by(Action.started_at.desc(), Action.id.desc())
    ).first()


def code_of(session: Session, action_id: int | None) -> str | None:
    """The code of an action (open or closed), or None."""
    if action_id is None:
        return None
    return session.scalar(select(Action.action_code).where(Action.id == action_id))


# Codes already read for messages, by action id. A code never changes once given, so a broadcast
# of 300,000 messages reads it once per process, not once per message.
# Keyed by the database too: one process may serve more than one (the tests do).
_MESSAGE_CODES: dict[tuple[str, int], str] = {}
_MESSAGE_CODES_MAX = 4096


def message_code(session: Session, action_id: int | None) -> str | None:
    """The code an alert or update about ``action_id`` prints (None: the action has none)."""
    if action_id is None:
        return None
    key = (str(session.get_bind().engine.url), action_id)
    cached = _MESSAGE_CODES.get(key)
    if cached is not None:
        return cached
    code = code_of(session, action_id)
    if code is not None:
        if len(_MESSAGE_CODES) >= _MESSAGE_CODES_MAX:
            _MESSAGE_CODES.clear()
        _MESSAGE_CODES[key] = code
    return code

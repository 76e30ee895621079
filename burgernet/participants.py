"""Participant changes that residents make themselves: opting out (and back in), audited."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from burgernet.db import session_scope
from burgernet.models import Participant
from burgernet.repositories import record_audit


def set_opted_out(
    sessions: sessionmaker[Session],
    *,
    participant_id: int | None = None,
    phone_e164: str | None = None,
    opted_out: bool = True,
    source: str,
    actor: str | None = None,
) -> bool:
    """Opt a participant out of (or back into) alerts; False when no such participant.

    Found by id (an alert call knows whom it called) or by phone (SMS STOP, the web link).
    """
    with session_scope(sessions) as session:
        query = select(Participant)
        if participant_id is not None:
            query = query.where(Participant.id == participant_id)
        elif phone_e164 is not None:
            query = query.where(Participant.phone_e164 == phone_e164)
        else:
            raise ValueError("give participant_id or phone_e164")
        participant = session.scalar(query)
        if participant is None:
            return False
        if participant.opted_out != opted_out:
            participant.opted_out = opted_out
            participant.opted_out_at = datetime.now(UTC) if opted_out else None
            record_audit(
                session,
                # The participant themselves (IVR key 9, SMS STOP) unless an operator acted for them.
                actor=actor or f"participant:{participant.id}",
                verb="opt-out" if opted_out else "opt-in",
                entity="participant",
                entity_id=participant.id,
                source=source,
            )
        return True

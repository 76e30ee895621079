"""Every Twilio webhook that changes something is applied exactly once.

Twilio retries webhooks and may send one twice or out of order. Each event that changes
something is first recorded in ``provider_events`` (unique per provider and key) in the same
transaction as the change, so a repeat — even one racing the first on another panel process —
is acknowledged and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from burgernet.models import ProviderEvent

PROVIDER = "twilio"
SOURCE = "twilio"  # the audit source of changes Twilio brought


class TwilioInputError(ValueError):
    """The webhook lacks what Twilio always sends; nothing was changed."""


class AlreadyHandled(Exception):
    """The event key is in ``provider_events``: the whole transaction is rolled back."""


def record_event(session: Session, key: str) -> None:
    """Claim ``key`` as the first write of this transaction, or raise :class:`AlreadyHandled`.

    No SAVEPOINT: on SQLite (pysqlite) releasing one can commit on its own. A duplicate key
    fails the flush, and the caller's ``session_scope`` rolls everything back.
    """
    session.add(ProviderEvent(provider=PROVIDER, event_key=key[:160], received_at=datetime.now(UTC)))
    try:
        session.flush()
    except IntegrityError as exc:
        raise AlreadyHandled(key) from exc

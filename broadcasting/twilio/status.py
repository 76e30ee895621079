"""Message and call status callbacks: Twilio's statuses in ours, applied once per event.

Statuses only move forward (:func:`broadcasting.store.apply_provider_status`).
"""

from __future__ import annotations

import enum
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcasting import store
from broadcasting.twilio.events import AlreadyHandled, TwilioInputError, record_event
from burgernet.db import session_scope
from burgernet.models import Delivery

log = logging.getLogger(__name__)

# Message statuses on the way (the delivery stays "sent"/"sending") and the ones that count.
SMS_INTERIM = frozenset({"accepted", "scheduled", "queued", "sending", "canceled", "receiving", "received"})
SMS_STATUSES = {"sent": "sent", "delivered": "delivered", "undelivered": "undelivered", "failed": "failed"}
# Call statuses: "in-progress" is the "answered" event, "completed" means it was answered.
VOICE_INTERIM = frozenset({"queued", "initiated", "ringing"})
VOICE_STATUSES = {
    "in-progress": "answered",
    "answered": "answered",
    "completed": "answered",
    "busy": "busy",
    "no-answer": "no_answer",
    "failed": "failed",
    "canceled": "failed",
}
# The most common reasons Twilio gives for a message that did not arrive.
SMS_ERRORS = {
    "30003": "unreachable handset",
    "30004": "message blocked",
    "30005": "unknown handset",
    "30006": "landline or unreachable carrier",
    "30007": "filtered by the carrier",
    "30008": "unknown error",
    "21610": "recipient unsubscribed (STOP)",
}


class HookResult(enum.Enum):
    APPLIED = "applied"  # the delivery moved
    UNCHANGED = "unchanged"  # recorded, but the delivery was already further (or unknown)
    REPEAT = "repeat"  # this very event was handled before
    IGNORED = "ignored"  # an in-between status that changes nothing


def apply_status(
    sessions: sessionmaker[Session],
    *,
    provider_ref: str,
    twilio_status: str,
    voice: bool,
    delivery_id: int | None = None,
    error_code: str | None = None,
) -> HookResult:
    """A message or call status callback, applied once to the delivery known by ``provider_ref``."""
    if not provider_ref or not twilio_status:
        raise TwilioInputError("a status callback needs the SID and the status")
    twilio_status = twilio_status.strip().lower()
    mapping, interim = (VOICE_STATUSES, VOICE_INTERIM) if voice else (SMS_STATUSES, SMS_INTERIM)
    status = mapping.get(twilio_status)
    if status is None:
        if twilio_status in interim:
            return HookResult.IGNORED
        raise TwilioInputError(f"unknown Twilio status {twilio_status!r}")
    error = None
    if error_code:
        reason = SMS_ERRORS.get(error_code)
        error = f"Twilio error {error_code}" + (f": {reason}" if reason else "")
    try:
        with session_scope(sessions) as session:
            record_event(session, f"{provider_ref}:{twilio_status}")
            # Before the worker stored the SID, the delivery named in the (signed) callback URL
            # takes it: Twilio may answer faster than our own POST returns.
            changed = store.apply_provider_status(
                session, provider_ref=provider_ref, status=status, error=error, delivery_id=delivery_id
            )
            known = changed or session.scalar(
                select(Delivery.id).where(Delivery.provider_ref == provider_ref)
            )
    except AlreadyHandled:
        return HookResult.REPEAT
    if not known:
        log.warning("Twilio status %s for %s: no delivery has that SID", twilio_status, provider_ref)
    return HookResult.APPLIED if changed else HookResult.UNCHANGED

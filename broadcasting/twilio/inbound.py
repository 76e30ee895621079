"""SMS STOP / START from a participant's phone.

STOP by SMS ends *SMS* for that number (``channel_sms`` off, queued SMS deliveries cancelled),
rather than opting the participant out of Burgernet altogether: the keyword is a carrier-level
instruction about text messages (Twilio itself blocks further SMS to the number after it), and
a participant who still takes alert calls or e-mail keeps them. Opting out of everything stays
available through key 9 on an alert call, the IVR and the web link. START (or UNSTOP) turns SMS
back on; it does not undo a full opt-out made elsewhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcasting import store
from broadcasting.twilio.events import SOURCE, AlreadyHandled, TwilioInputError, record_event
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.models import Participant
from burgernet.repositories import record_audit

log = logging.getLogger(__name__)

# Keywords Twilio's opt-out handling knows, plus the Dutch ones participants use.
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "AFMELDEN"})
START_KEYWORDS = frozenset({"START", "UNSTOP", "AANMELDEN"})


@dataclass(frozen=True)
class InboundResult:
    keyword: str | None  # "stop", "start" or None for any other text
    participant_id: int | None
    changed: bool
    cancelled: int = 0
    repeat: bool = False


def keyword_of(body: str) -> str | None:
    word = body.strip().strip(".!").strip().upper()
    if word in STOP_KEYWORDS:
        return "stop"
    if word in START_KEYWORDS:
        return "start"
    return None


def inbound_sms(
    sessions: sessionmaker[Session], *, message_sid: str, from_number: str, body: str
) -> InboundResult:
    """STOP / START from a participant's phone; other texts are only logged."""
    if not message_sid or not from_number:
        raise TwilioInputError("an inbound message needs MessageSid and From")
    keyword = keyword_of(body)
    if keyword is None:
        log.info("inbound SMS %s from %s is no keyword; not acted on", message_sid, from_number[:6] + "…")
        return InboundResult(None, None, False)
    try:
        return _apply_keyword(sessions, keyword, message_sid=message_sid, from_number=from_number, body=body)
    except AlreadyHandled:
        return InboundResult(keyword, None, False, repeat=True)


def _apply_keyword(
    sessions: sessionmaker[Session], keyword: str, *, message_sid: str, from_number: str, body: str
) -> InboundResult:
    with session_scope(sessions) as session:
        record_event(session, f"inbound:{message_sid}")
        participant = session.scalar(
            select(Participant).where(Participant.phone_e164 == from_number).with_for_update()
        )
        if participant is None:
            return InboundResult(keyword, None, False)
        wanted = keyword == "start"
        cancelled = 0 if wanted else store.cancel_for_participant(session, participant.id, Channel.SMS)
        changed = participant.channel_sms != wanted
        participant.channel_sms = wanted
        if changed or cancelled:
            record_audit(
                session,
                actor=f"participant:{participant.id}",
                verb="sms-start" if wanted else "sms-stop",
                entity="participant",
                entity_id=participant.id,
                detail={
                    "keyword": body.strip().upper()[:20],
                    "message_sid": message_sid,
                    "cancelled": cancelled,
                },
                source=SOURCE,
            )
        return InboundResult(keyword, participant.id, changed, cancelled)

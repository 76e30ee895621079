"""Participants' own rights: opting out (and back in), erasure and a copy of their data, audited.

Used by the panel (``callback_api.people``), the IVR and SMS opt-out, and the CLI
(``burgernet participant export``), so each of these rules exists once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import phonenumbers
from sqlalchemy import Select, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from burgernet.db import session_scope
from burgernet.models import (
    AuditEvent,
    Broadcast,
    Call,
    Delivery,
    Inquiry,
    InquiryLink,
    Participant,
    Region,
    Statement,
    Tip,
)
from burgernet.phone import InvalidPhoneNumber, normalise
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


# --- the rights of the person: erasure (GDPR art. 17) and access (art. 15) ---------------------------
def number_forms(phone_e164: str) -> tuple[str, ...]:
    """The spellings a participant's number may have in the call log and in tips.

    Caller IDs reach the log from the FastAGI side (E.164) and from AMI events (whatever the trunk
    sent: ``0612345678``, ``31612345678``, ``0031612345678``), so erasure looks for all of them.
    """
    forms = {phone_e164}
    try:
        parsed = phonenumbers.parse(phone_e164, None)
    except phonenumbers.NumberParseException:
        return (phone_e164,)
    international = phone_e164.lstrip("+")
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    forms |= {international, f"00{international}", "".join(ch for ch in national if ch.isdigit())}
    return tuple(sorted(forms))


def phone_reference(secret_key: str, phone_e164: str) -> str:
    """A keyed pseudonym of a number for the audit log: who searched for whom, without the number."""
    return hmac.new(secret_key.encode(), phone_e164.encode(), hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class Erasure:
    """What erasing one participant removed (counts only: the report never repeats the data)."""

    participant_id: int
    phone_e164: str  # for the caller's clean-up outside the database (Redis); never audited
    deliveries_deleted: int
    inquiry_links_deleted: int
    statements_deleted: int
    statement_photos_deleted: int
    calls_unlinked: int
    call_numbers_removed: int
    tips_kept: int
    tip_numbers_removed: int


def erase_participant(
    sessions: sessionmaker[Session], participant_id: int, *, actor: str, source: str
) -> Erasure | None:
    """Delete a participant and every trace of their number and address; None when unknown.

    Deleted: the participant, their deliveries (with any e-mail or provider error text), their
    personal inquiry links and the statements given through them (and their photos). Kept as
    police records of the action, but without the number: their calls (caller number removed,
    unlinked) and tips (call-back number removed). Audited with counts only.
    """
    photos: list[Path] = []
    with session_scope(sessions) as session:
        participant = session.get(Participant, participant_id)
        if participant is None:
            return None
        phone = participant.phone_e164
        forms = number_forms(phone)
        # Their own deliveries, and the closing words sent to their number as a caller (those
        # rows carry the number, not the participant: see broadcasting/store.add_caller_deliveries).
        theirs = or_(Delivery.participant_id == participant_id, Delivery.caller_e164.in_(forms))
        deliveries = _count(session, select(Delivery.id).where(theirs))
        link_ids = list(
            session.scalars(select(InquiryLink.id).where(InquiryLink.participant_id == participant_id))
        )
        statements = list(
            session.execute(select(Statement.id, Statement.photo_path).where(Statement.link_id.in_(link_ids)))
        )
        photos = [Path(path) for _id, path in statements if path]
        call_ids = list(
            session.scalars(
                select(Call.id).where(
                    or_(Call.participant_id == participant_id, Call.caller_number.in_(forms))
                )
            )
        )
        linked_calls = _count(session, select(Call.id).where(Call.participant_id == participant_id))
        numbered_calls = _count(session, select(Call.id).where(Call.caller_number.in_(forms)))
        tips_kept = _count(session, select(Tip.id).where(Tip.call_id.in_(call_ids)))
        numbered_tips = _count(
            session,
            select(Tip.id).where(
                Tip.callback_number.is_not(None),
                or_(Tip.call_id.in_(call_ids), Tip.callback_number.in_(forms)),
            ),
        )
        # Explicit deletes rather than relying on ON DELETE: the report must match what happened.
        session.execute(delete(Statement).where(Statement.link_id.in_(link_ids)))
        session.execute(delete(Delivery).where(theirs))
        session.execute(delete(InquiryLink).where(InquiryLink.participant_id == participant_id))
        session.execute(
            update(Tip)
            .where(or_(Tip.call_id.in_(call_ids), Tip.callback_number.in_(forms)))
            .values(callback_number=None)
        )
        session.execute(
            update(Call).where(Call.id.in_(call_ids)).values(participant_id=None, caller_number=None)
        )
        session.delete(participant)
        erasure = Erasure(
            participant_id=participant_id,
            phone_e164=phone,
            deliveries_deleted=deliveries,
            inquiry_links_deleted=len(link_ids),
            statements_deleted=len(statements),
            statement_photos_deleted=len(photos),
            calls_unlinked=linked_calls,
            call_numbers_removed=numbered_calls,
            tips_kept=tips_kept,
            tip_numbers_removed=numbered_tips,
        )
        record_audit(
            session,
            actor=actor,
            verb="erase",
            entity="participant",
            entity_id=participant_id,
            detail={
                "deliveries_deleted": erasure.deliveries_deleted,
                "inquiry_links_deleted": erasure.inquiry_links_deleted,
                "statements_deleted": erasure.statements_deleted,
                "calls_unlinked": erasure.calls_unlinked,
                "call_numbers_removed": erasure.call_numbers_removed,
                "tip_numbers_removed": erasure.tip_numbers_removed,
            },
            source=source,
        )
    for photo in photos:  # after the commit: a rolled-back erasure keeps its files
        photo.unlink(missing_ok=True)
    return erasure


def _count(session: Session, query: Select[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def find_participant(sessions: sessionmaker[Session], phone_or_id: str) -> int | None:
    """A participant's id from their id (digits only, short) or their phone number (any notation)."""
    text = phone_or_id.strip()
    with session_scope(sessions) as session:
        if text.isdigit() and len(text) <= 9:
            return session.scalar(select(Participant.id).where(Participant.id == int(text)))
        try:
            phone = normalise(text)
        except InvalidPhoneNumber:
            return None
        return session.scalar(select(Participant.id).where(Participant.phone_e164 == phone))


def _when(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).isoformat()


def export_participant(
    sessions: sessionmaker[Session],
    participant_id: int,
    *,
    actor: str,
    source: str,
    secret_key: str,
) -> dict[str, Any] | None:
    """Everything stored about one participant (GDPR art. 15) as JSON-ready data; None when unknown.

    The read itself is audited (``verb="read"``, counts only) before the data is handed out.
    """
    with session_scope(sessions) as session:
        p = session.get(Participant, participant_id)
        if p is None:
            return None
        forms = number_forms(p.phone_e164)
        region_code = session.scalar(select(Region.code).where(Region.id == p.region_id))
        profile = {
            "id": p.id,
            "phone": p.phone_e164,
            "email": p.email,
            "postcode": p.postcode,
            "house_number": p.house_number,
            "location": {"lat": p.lat, "lon": p.lon},
            "region": region_code,
            "language": p.language,
            "registered_at": _when(p.created_at),
        }
        channels = {"voice": p.channel_voice, "sms": p.channel_sms, "email": p.channel_email}
        deliveries = [
            {
                "id": d.id,
                "broadcast": b.id,
                "kind": b.kind,
                "action_id": b.action_id,
                "inquiry_id": b.inquiry_id,
                "message": b.message,
                "channel": d.channel,
                # A closing word sent to their number because they called about the action.
                "as_caller": d.caller_e164 is not None,
                "status": d.status,
                "attempts": d.attempts,
                "provider_reference": d.provider_ref,
                "last_error": d.last_error,
                "updated_at": _when(d.updated_at),
                "finished_at": _when(d.finished_at),
            }
            for d, b in session.execute(
                select(Delivery, Broadcast)
                .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
                .where(or_(Delivery.participant_id == participant_id, Delivery.caller_e164.in_(forms)))
                .order_by(Delivery.id)
            )
        ]
        calls = list(
            session.scalars(
                select(Call)
                .where(or_(Call.participant_id == participant_id, Call.caller_number.in_(forms)))
                .order_by(Call.started_at, Call.id)
            )
        )
        call_ids = [c.id for c in calls]
        tips = session.scalars(
            select(Tip)
            .where(or_(Tip.call_id.in_(call_ids), Tip.callback_number.in_(forms)))
            .order_by(Tip.created_at, Tip.id)
        )
        links = list(
            session.execute(
                select(InquiryLink, Inquiry.title)
                .join(Inquiry, Inquiry.id == InquiryLink.inquiry_id)
                .where(InquiryLink.participant_id == participant_id)
                .order_by(InquiryLink.id)
            )
        )
        statements = session.scalars(
            select(Statement)
            .where(Statement.link_id.in_([link.id for link, _title in links]))
            .order_by(Statement.id)
        )
        reference = phone_reference(secret_key, p.phone_e164)
        audit = session.scalars(
            select(AuditEvent)
            .where(
                or_(
                    and_(AuditEvent.entity == "participant", AuditEvent.entity_id == str(participant_id)),
                    AuditEvent.actor == f"participant:{participant_id}",
                    AuditEvent.detail.contains(reference),
                )
            )
            .order_by(AuditEvent.at, AuditEvent.id)
        )
        document: dict[str, Any] = {
            "format": "burgernet-participant-export/1",
            "exported_at": _when(datetime.now(UTC)),
            "profile": profile,
            "channels": channels,
            "inquiry_opt_in": p.inquiry_opt_in,
            # Non-urgent voice alerts (and SMS where held) wait out the quiet hours unless True.
            "night_alerts": p.night_alerts,
            "opt_out": {"opted_out": p.opted_out, "since": _when(p.opted_out_at)},
            "deliveries": deliveries,
            "calls": [
                {
                    "id": c.id,
                    "kind": c.kind,
                    "caller_number": c.caller_number,
                    "action_id": c.action_id,
                    "region": c.region_code,
                    "started_at": _when(c.started_at),
                    "answered_at": _when(c.answered_at),
                    "ended_at": _when(c.ended_at),
                    "outcome": c.outcome,
                    "recorded": c.recording_path is not None,
                }
                for c in calls
            ],
            "tips": [
                {
                    "id": t.id,
                    "call_id": t.call_id,
                    "action_id": t.action_id,
                    "callback_number": t.callback_number,
                    "created_at": _when(t.created_at),
                    "called_back_at": _when(t.callback_done_at),
                }
                for t in tips
            ],
            "inquiry_links": [
                {
                    "id": link.id,
                    "inquiry_id": link.inquiry_id,
                    "inquiry": title,
                    "delivery": link.delivery,
                    "sent_at": _when(link.sent_at),
                    "expires_at": _when(link.expires_at),
                }
                for link, title in links
            ],
            "statements": [
                {
                    "id": s.id,
                    "inquiry_id": s.inquiry_id,
                    "text": s.text,
                    "photo": s.photo_path is not None,
                    "given_at": _when(s.created_at),
                }
                for s in statements
            ],
            "audit_events": [
                {
                    "at": _when(e.at),
                    "actor": e.actor,
                    "verb": e.verb,
                    "entity": e.entity,
                    "entity_id": e.entity_id,
                    "detail": json.loads(e.detail) if e.detail else None,
                    "source": e.source,
                }
                for e in audit
            ],
        }
        record_audit(
            session,
            actor=actor,
            verb="read",
            entity="participant",
            entity_id=participant_id,
            detail={
                "what": "export",
                "deliveries": len(deliveries),
                "calls": len(document["calls"]),
                "tips": len(document["tips"]),
                "statements": len(document["statements"]),
            },
            source=source,
        )
    return document

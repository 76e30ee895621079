"""A neighbourhood inquiry's e-mails on the broadcast pipeline.

The panel asks for them with :func:`new_broadcast`, in the transaction of its audit event. A
worker's fan-out decides who gets them (:func:`recipients`: the recipient selection of an
alert, for the inquiry's audience), and each e-mail's final status is carried over to the
resident's link or the follow-up's figures (:func:`record_outcome`). The words are composed in
:mod:`broadcasting.messages`. The queue, the e-mail rate limit, retries with back-off, the
reconciliation of deliveries left in doubt and the delivery log are the pipeline's own, the
same as for an alert.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcasting.recipients import Audience, select_recipients
from broadcasting.store import PRIORITY_INFORMATION, REACHED_STATUSES, DeliveryJob
from burgernet.areas import stored_area
from burgernet.domain import Channel
from burgernet.inquiries import (
    FOLLOW_UP,
    INVITATION,
    KINDS,
    note_link_retry,
    reached_participants,
    record_link_outcome,
    record_update_outcome,
    utc,
    waiting_links,
)
from burgernet.models import Broadcast, Delivery, Inquiry


def new_broadcast(session: Session, *, inquiry_id: int, kind: str, message: str = "") -> int:
    """A pending broadcast of the inquiry's ``kind`` (information: it waits behind every alert)."""
    if kind not in KINDS:
        raise ValueError(f"{kind!r} is not an inquiry's broadcast (one of {', '.join(KINDS)})")
    broadcast = Broadcast(
        inquiry_id=inquiry_id,
        kind=kind,
        message=message,
        status="pending",
        priority=PRIORITY_INFORMATION,
        total=0,
        created_at=datetime.now(UTC),
    )
    session.add(broadcast)
    session.flush()
    return broadcast.id


def _invitations_under_way(session: Session, inquiry_id: int, *, other_than: int) -> set[int]:
    """Participants whose invitation another broadcast of the inquiry has queued or is sending."""
    return set(
        session.scalars(
            select(Delivery.participant_id)
            .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
            .where(
                Broadcast.inquiry_id == inquiry_id,
                Broadcast.kind == INVITATION,
                Broadcast.id != other_than,
                Delivery.status.in_(("queued", "sending")),
            )
        )
    )


def recipients(session: Session, broadcast: Broadcast) -> dict[Channel, list[int]]:
    """Who gets this broadcast of an inquiry, by e-mail (the fan-out; safe to repeat).

    Invitation: everyone inside the area with an e-mail address who opted in to inquiries and
    not out of Burgernet, whose link still waits for its e-mail; the missing links are made
    now. Nobody twice: not those whose link was sent or refused, nor those whose invitation
    another "send links" has under way. Follow-up: everyone whose link was sent.
    """
    assert broadcast.inquiry_id is not None
    # One fan-out of an inquiry at a time (PostgreSQL): two would both see a link waiting.
    inquiry = session.get(Inquiry, broadcast.inquiry_id, with_for_update=True)
    if inquiry is None:
        return {}
    if broadcast.kind == FOLLOW_UP:
        return {Channel.EMAIL: reached_participants(session, inquiry.id)}
    if utc(inquiry.closes_at) <= datetime.now(UTC):
        return {}
    inside = select_recipients(session, stored_area(inquiry), Audience.INQUIRY).by_channel.get(Channel.EMAIL)
    waiting = waiting_links(session, inquiry, [] if inside is None else inside.tolist())
    under_way = _invitations_under_way(session, inquiry.id, other_than=broadcast.id)
    return {Channel.EMAIL: sorted(waiting - under_way)}


def record_retry(session: Session, job: DeliveryJob, error: str) -> None:
    """An attempt failed and will be tried again: the link shows why it still waits."""
    if job.kind == INVITATION and job.for_inquiry is not None:
        note_link_retry(session, inquiry_id=job.for_inquiry, participant_id=job.participant, error=error)


def record_outcome(
    session: Session, job: DeliveryJob, status: str, error: str | None, *, refused: bool
) -> None:
    """The e-mail reached a final status (in the transaction that records it).

    ``refused``: the mail server will never take it (trying again cannot help).
    """
    assert job.for_inquiry is not None
    if job.kind == INVITATION:
        record_link_outcome(
            session,
            inquiry_id=job.for_inquiry,
            participant_id=job.participant,
            status=status,
            error=error,
            refused=refused,
        )
    else:
        record_update_outcome(session, broadcast_id=job.broadcast_id, reached=status in REACHED_STATUSES)


__all__ = ["new_broadcast", "recipients", "record_outcome", "record_retry"]

"""Neighbourhood inquiries in the core: personal links, their tokens, and what an e-mail's fate
means for its link.

The panel (``callback_api/inquiry``) creates inquiries, asks for their e-mails and takes the
residents' statements; the broadcast workers send the e-mails. What both must agree on lives
here: the broadcast kinds, the local clock, how a token is made and recognised, and how a link
follows its e-mail — ``pending`` until a mail server took it (``sent``: follow-ups go to these),
``failed`` when the server refused the address for good. A link whose e-mail could not be
delivered even after the workers' retries stays ``pending``: the next "send links" tries again.

Tokens. A link is a bearer secret; only the SHA-256 of its token is stored. The token in an
e-mail is made when a worker claims the delivery: an HMAC-SHA256, under the application's
secret key, of the link, the delivery and a random salt kept with the link. Made rather than
drawn at random, because a delivery that a dead worker left in doubt is sent again with the
same Message-ID, so that a mail system that already has the first copy drops the second: the
second copy must carry the same link, or the link in the copy that did arrive would be dead.
Every new delivery (the next "send links" for a link that could not be e-mailed) gives a new
token. Neither a database dump (no key) nor the key alone (no salt) opens anyone's form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from burgernet.models import Inquiry, InquiryLink, InquiryUpdate, Participant

# Broadcast kinds (burgernet.models.BROADCAST_KINDS) of an inquiry.
INVITATION = "inquiry"  # each recipient's personal link
FOLLOW_UP = "inquiry_update"  # an update to everyone whose link was sent
KINDS = (INVITATION, FOLLOW_UP)

LOCAL_TZ = ZoneInfo("Europe/Amsterdam")
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,128}")
_TOKEN_PURPOSE = b"burgernet inquiry link v1"


def utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def local_time(moment: datetime | None) -> str:
    """Dutch wall-clock time as the panel and the e-mails show it: ``2026-12-01 18:00``."""
    return utc(moment).astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/inquiry/{token}"


def personal_token(secret_key: str, *, link_id: int, delivery_id: int, salt: str) -> str:
    """The token of one delivery of one link (256 bits, URL-safe); the same inputs, the same token."""
    message = b"|".join([_TOKEN_PURPOSE, str(link_id).encode(), str(delivery_id).encode(), salt.encode()])
    digest = hmac.new(secret_key.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _unguessable_hash() -> str:
    """A stored hash no token was ever handed out for (the column is unique and required)."""
    return hash_token(secrets.token_urlsafe(32))


# --- the workers' side -----------------------------------------------------------------------------------
def waiting_links(session: Session, inquiry: Inquiry, eligible: Iterable[int]) -> set[int]:
    """Give every eligible participant a link (once), and say whose link still waits for its e-mail.

    Returns the eligible participants whose link is ``pending``: not e-mailed yet, or not
    delivered by earlier attempts. Sent and refused links are never e-mailed again.
    """
    wanted = {int(pid) for pid in eligible}
    existing = dict(
        session.execute(
            select(InquiryLink.participant_id, InquiryLink.delivery).where(
                InquiryLink.inquiry_id == inquiry.id
            )
        ).all()
    )
    for participant_id in sorted(wanted - existing.keys()):
        session.add(
            InquiryLink(
                inquiry_id=inquiry.id,
                participant_id=participant_id,
                token_hash=_unguessable_hash(),
                token_salt=secrets.token_hex(16),
                expires_at=inquiry.closes_at,
                delivery="pending",
            )
        )
        existing[participant_id] = "pending"
    session.flush()
    return {pid for pid in wanted if existing[pid] == "pending"}


def reached_participants(session: Session, inquiry_id: int) -> list[int]:
    """Everyone whose link was e-mailed and who can still be e-mailed: a follow-up's recipients."""
    return list(
        session.scalars(
            select(InquiryLink.participant_id)
            .join(Participant, Participant.id == InquiryLink.participant_id)
            .where(
                InquiryLink.inquiry_id == inquiry_id,
                InquiryLink.delivery == "sent",
                Participant.opted_out.is_(False),
                Participant.email.is_not(None),
                Participant.email != "",
            )
            .order_by(InquiryLink.participant_id)
        )
    )


@dataclass(frozen=True)
class IssuedLink:
    """What an invitation e-mail says: the inquiry, and the token of this one e-mail."""

    token: str
    title: str
    question: str
    closes_at: datetime


def issue_link(
    session: Session,
    *,
    inquiry_id: int,
    participant_id: int,
    delivery_id: int,
    secret_key: str,
    now: datetime | None = None,
) -> IssuedLink | None:
    """The token for one delivery of a link, its hash stored (in the caller's transaction).

    Issuing again for the same delivery (a retry, or a delivery left in doubt) gives the same
    token. None when there is nothing to send any more: the link was sent or refused meanwhile,
    it is gone (the resident was erased), or the inquiry has closed.
    """
    now = now or datetime.now(UTC)
    row = session.execute(
        select(InquiryLink, Inquiry)
        .join(Inquiry, Inquiry.id == InquiryLink.inquiry_id)
        .where(InquiryLink.inquiry_id == inquiry_id, InquiryLink.participant_id == participant_id)
    ).one_or_none()
    if row is None:
        return None
    link, inquiry = row
    if link.delivery != "pending" or utc(inquiry.closes_at) <= now:
        return None
    if link.token_salt is None:  # a link made before tokens were derived
        link.token_salt = secrets.token_hex(16)
    token = personal_token(secret_key, link_id=link.id, delivery_id=delivery_id, salt=link.token_salt)
    link.token_hash = hash_token(token)
    link.expires_at = inquiry.closes_at
    session.flush()
    return IssuedLink(token, inquiry.title, inquiry.question, inquiry.closes_at)


def record_link_outcome(
    session: Session,
    *,
    inquiry_id: int,
    participant_id: int,
    status: str,
    error: str | None,
    refused: bool,
    now: datetime | None = None,
) -> None:
    """The invitation's delivery reached a final status: the link follows it.

    ``sent`` (and anything a provider confirms as reached) → ``sent``; a failure the mail
    server called final (``refused``) → ``failed``; any other failure leaves the link
    ``pending`` with the error, for the next "send links".
    """
    values: dict[str, object]
    if status in ("sent", "delivered"):
        values = {"delivery": "sent", "sent_at": now or datetime.now(UTC), "last_error": None}
    elif refused:
        values = {"delivery": "failed", "last_error": (error or status)[:300]}
    else:
        values = {"last_error": (error or status)[:300]}
    session.execute(
        update(InquiryLink)
        .where(
            InquiryLink.inquiry_id == inquiry_id,
            InquiryLink.participant_id == participant_id,
            InquiryLink.delivery == "pending",
        )
        .values(**values)
    )


def note_link_retry(session: Session, *, inquiry_id: int, participant_id: int, error: str) -> None:
    """An attempt failed and will be retried: the panel shows why the link still waits."""
    session.execute(
        update(InquiryLink)
        .where(
            InquiryLink.inquiry_id == inquiry_id,
            InquiryLink.participant_id == participant_id,
            InquiryLink.delivery == "pending",
        )
        .values(last_error=error[:300])
    )


def record_update_outcome(session: Session, *, broadcast_id: int, reached: bool) -> None:
    """One e-mail of a follow-up reached a final status: counted on the update."""
    column = InquiryUpdate.recipients if reached else InquiryUpdate.failed
    session.execute(
        update(InquiryUpdate).where(InquiryUpdate.broadcast_id == broadcast_id).values({column: column + 1})
    )


__all__ = [
    "FOLLOW_UP",
    "INVITATION",
    "KINDS",
    "LOCAL_TZ",
    "TOKEN_SHAPE",
    "IssuedLink",
    "hash_token",
    "issue_link",
    "link_url",
    "local_time",
    "note_link_retry",
    "personal_token",
    "reached_participants",
    "record_link_outcome",
    "record_update_outcome",
    "utc",
    "waiting_links",
]

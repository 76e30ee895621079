"""The residents' side of an inquiry: one statement (and an optional photo) per personal link.

No login: the token in the link is the key. Only its SHA-256 is stored, so a link is found by
the hash of what the resident brings. A link works until the inquiry closes and for one
statement; every statement is audited with the link as the actor (``inquiry-link:<id>``),
never a name or an address.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from burgernet.db import session_scope
from burgernet.errors import ConflictError, NotFoundError
from burgernet.inquiries import TOKEN_SHAPE, hash_token, utc
from burgernet.models import Inquiry, InquiryLink, Participant, Statement
from burgernet.repositories import record_audit
from burgernet.services import Services
from burgernet.settings import Settings
from callback_api.inquiry.services import MAX_TEXT_CHARS, InquiryError, clean_text
from callback_api.photos import CheckedPhoto, photos_dir, write_photo

# Shown to residents on the public page (the panel translates them; keep them in i18n.py).
LINK_NOT_VALID = "This link is not valid. Check that you copied the whole link from the e-mail."
LINK_CLOSED = "This inquiry has closed; statements can no longer be given through this link."
LINK_USED = "A statement was already given through this link. Thank you."


class LinkNotFound(InquiryError, NotFoundError):
    """No link with this token (mistyped, cut off, never issued, or replaced by a newer e-mail)."""

    code: ClassVar[str] = "inquiry.link_not_found"


class LinkGone(InquiryError, ConflictError):
    """The link existed but can no longer be used: expired, or its statement was already given."""

    code: ClassVar[str] = "inquiry.link_gone"


@dataclass(frozen=True)
class PublicLink:
    """What the public form may show: the inquiry's question, nothing about the resident."""

    link_id: int
    inquiry_id: int
    title: str
    question: str
    closes_at: datetime
    language: str


def _usable_link(session: Session, token: str, now: datetime) -> tuple[InquiryLink, Inquiry]:
    if not TOKEN_SHAPE.fullmatch(token or ""):
        raise LinkNotFound(LINK_NOT_VALID)
    link = session.scalar(select(InquiryLink).where(InquiryLink.token_hash == hash_token(token)))
    if link is None:
        raise LinkNotFound(LINK_NOT_VALID)
    inquiry = session.get(Inquiry, link.inquiry_id)
    if inquiry is None:  # the link would have gone with it (cascade): only in a race
        raise LinkNotFound(LINK_NOT_VALID)
    if now >= utc(link.expires_at) or now >= utc(inquiry.closes_at):
        raise LinkGone(LINK_CLOSED)
    if session.scalar(select(Statement.id).where(Statement.link_id == link.id)) is not None:
        raise LinkGone(LINK_USED)
    return link, inquiry


class StatementService:
    """The public form's work: open a link, take its one statement."""

    def __init__(self, context: Services, settings: Settings) -> None:
        self._sessions = context.sessions
        self._settings = settings

    def open_link(self, token: str, now: datetime | None = None) -> PublicLink:
        with session_scope(self._sessions) as session:
            link, inquiry = _usable_link(session, token, now or datetime.now(UTC))
            language = session.scalar(
                select(Participant.language).where(Participant.id == link.participant_id)
            )
            return PublicLink(
                link.id, inquiry.id, inquiry.title, inquiry.question, utc(inquiry.closes_at), language or "nl"
            )

    def submit(
        self,
        token: str,
        text: str,
        photo: CheckedPhoto | None,
        *,
        source: str,
        now: datetime | None = None,
    ) -> int:
        """Store the one statement of a link (and its photo); refuses a second one, changing nothing."""
        now = now or datetime.now(UTC)
        text = clean_text(text, "your statement", MAX_TEXT_CHARS)
        stored_photo: Path | None = None
        try:
            with session_scope(self._sessions) as session:
                link, inquiry = _usable_link(session, token, now)
                if photo is not None:
                    folder = photos_dir(self._settings) / "inquiries" / str(int(inquiry.id))
                    # A name of its own: a losing concurrent submission must not overwrite the winner's.
                    stored_photo = folder / f"link-{int(link.id)}-{secrets.token_hex(4)}.{photo.extension}"
                    write_photo(stored_photo, photo)  # metadata-free: check_photo re-encoded it
                statement = Statement(
                    inquiry_id=inquiry.id,
                    link_id=link.id,
                    text=text,
                    photo_path=str(stored_photo) if stored_photo else None,
                    created_at=now,
                )
                session.add(statement)
                session.flush()
                record_audit(
                    session,
                    actor=f"inquiry-link:{link.id}",
                    verb="statement",
                    entity="inquiry",
                    entity_id=inquiry.id,
                    detail={
                        "statement_id": statement.id,
                        "chars": len(text),
                        "photo_bytes": len(photo.data) if photo else 0,
                    },
                    source=source,
                )
                return statement.id
        except IntegrityError:
            # Two submissions of one link at once: the unique link_id let only the first one in.
            if stored_photo is not None:
                stored_photo.unlink(missing_ok=True)
            raise LinkGone(LINK_USED) from None
        except BaseException:
            if stored_photo is not None:
                stored_photo.unlink(missing_ok=True)
            raise


__all__ = [
    "LINK_CLOSED",
    "LINK_NOT_VALID",
    "LINK_USED",
    "LinkGone",
    "LinkNotFound",
    "PublicLink",
    "StatementService",
]

"""Neighbourhood inquiries (online buurtonderzoek) in the panel: create, read, and ask for the e-mails.

The flow: an operator creates an inquiry for an area with a question and a closing date;
"send links" asks the broadcast workers to e-mail every participant inside the area who has
an e-mail address and opted in to inquiries their own personal link; the resident answers on
the public form (:mod:`callback_api.inquiry.statements`); afterwards a follow-up update goes to
everyone whose link was sent.

Nothing here sends mail. Asking writes a broadcast in the same transaction as the audit event
and nudges the workers after the commit; they select the recipients, make the links, send
through the e-mail queue with its rate limit and retries, and keep the links' figures (see
:mod:`burgernet.inquiries` and :mod:`broadcasting.inquiry_mail`). The area is checked by the
core's :func:`burgernet.areas.area_columns` (an inquiry asks a neighbourhood, never the
nation), and the live recipient count is the workers' own selection.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcasting.recipients import Audience, count_inside
from burgernet.areas import AreaLimits, AreaSpec, InvalidArea, area_columns, stored_area, stored_spec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.errors import ConflictError, DomainError, NotFoundError
from burgernet.inquiries import FOLLOW_UP, INVITATION, LOCAL_TZ, local_time, utc
from burgernet.models import Action, Inquiry, InquiryLink, InquiryUpdate, Statement
from burgernet.repositories import record_audit
from burgernet.services import Services
from burgernet.settings import Settings
from callback_api.access import NeedToKnow, NeedToKnowService, Reader
from callback_api.areas import action_feature
from callback_api.photos import photo_file

log = logging.getLogger(__name__)

MAX_TITLE_CHARS = 200
MAX_TEXT_CHARS = 5000
MAX_OPEN_DAYS = 90
ACTION_CHOICES = 200  # the newest actions offered to link an inquiry to

INQUIRY_AREA = AreaLimits(
    max_radius_m=25_000.0,  # a neighbourhood, not a province
    too_wide="an inquiry's circle has a radius of at most 25 km",
    national_refused="an inquiry is for a neighbourhood: draw a circle or polygon, or list postcodes",
)


class InquiryError(DomainError):
    """The request cannot be carried out; the message says why, nothing was changed."""

    code: ClassVar[str] = "inquiry.invalid"


class InquiryNotFound(InquiryError, NotFoundError):
    code: ClassVar[str] = "inquiry.not_found"


class InquiryClosed(InquiryError, ConflictError):
    """The inquiry has closed: no more links go out."""

    code: ClassVar[str] = "inquiry.closed"


class InquiryBroadcasts(Protocol):
    """How the panel asks the workers for an inquiry's e-mails (the broadcasting service)."""

    def request_inquiry(self, session: Session, inquiry_id: int, kind: str, message: str = "") -> int: ...

    def nudge(self, broadcast_id: int) -> None: ...


@dataclass(frozen=True)
class InquiryView:
    id: int
    title: str
    question: str
    action_id: int | None
    action_title: str | None
    area_kind: str
    radius_m: float | None
    postcodes: str | None
    created_at: datetime
    closes_at: datetime
    created_by: str | None
    links_sent: int
    links_pending: int
    links_failed: int
    statements: int

    def is_open(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) < self.closes_at


@dataclass(frozen=True)
class StatementView:
    id: int
    link_id: int
    text: str
    has_photo: bool
    created_at: datetime


@dataclass(frozen=True)
class UpdateView:
    id: int
    message: str
    created_at: datetime
    created_by: str
    recipients: int
    failed: int


@dataclass(frozen=True)
class ActionChoice:
    id: int
    title: str
    status: str


def parse_local_datetime(text: str) -> datetime:
    """``2026-12-01T18:00`` as typed in the panel (Dutch time) → an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InquiryError(f"closing date: {text!r} is not a date and time (YYYY-MM-DD HH:MM)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return moment.astimezone(UTC)


def clean_text(value: str, what: str, limit: int) -> str:
    text = (value or "").strip()
    if not text:
        raise InquiryError(f"{what} is empty")
    if len(text) > limit:
        raise InquiryError(f"{what} is longer than {limit} characters")
    return text


def inquiry_columns(area: AreaSpec) -> dict[str, Any]:
    """A spec → the inquiry's checked area columns (InquiryError with the reason if not)."""
    try:
        return area_columns(area, INQUIRY_AREA)
    except InvalidArea as exc:
        raise InquiryError(str(exc)) from None


def _action_area(session: Session, action_id: int) -> AreaSpec:
    """The area of an existing action, for an inquiry "in the same area as the action"."""
    action = session.get(Action, action_id)
    if action is None:
        raise InquiryError(f"no action {action_id}")
    spec = stored_spec(action)
    if spec.kind is AreaKind.NATIONAL:
        raise InquiryError("the action is nationwide; draw the inquiry's neighbourhood instead")
    return spec


def _get(session: Session, inquiry_id: int) -> Inquiry:
    inquiry = session.get(Inquiry, inquiry_id)
    if inquiry is None:
        raise InquiryNotFound(f"no inquiry {inquiry_id}")
    return inquiry


def _views(session: Session, inquiries: Sequence[Inquiry]) -> list[InquiryView]:
    ids = [inquiry.id for inquiry in inquiries]
    links: dict[tuple[int, str], int] = {}
    statements: dict[int, int] = {}
    titles: dict[int, str] = {}
    if ids:
        for inquiry_id, delivery, count in session.execute(
            select(InquiryLink.inquiry_id, InquiryLink.delivery, func.count())
            .where(InquiryLink.inquiry_id.in_(ids))
            .group_by(InquiryLink.inquiry_id, InquiryLink.delivery)
        ):
            links[(inquiry_id, delivery)] = int(count)
        for inquiry_id, count in session.execute(
            select(Statement.inquiry_id, func.count())
            .where(Statement.inquiry_id.in_(ids))
            .group_by(Statement.inquiry_id)
        ):
            statements[inquiry_id] = int(count)
        action_ids = {i.action_id for i in inquiries if i.action_id is not None}
        if action_ids:
            titles = dict(
                session.execute(select(Action.id, Action.title).where(Action.id.in_(action_ids))).all()
            )
    return [
        InquiryView(
            id=i.id,
            title=i.title,
            question=i.question,
            action_id=i.action_id,
            action_title=titles.get(i.action_id) if i.action_id is not None else None,
            area_kind=i.area_kind,
            radius_m=i.radius_m,
            postcodes=i.postcodes,
            created_at=utc(i.created_at),
            closes_at=utc(i.closes_at),
            created_by=i.created_by,
            links_sent=links.get((i.id, "sent"), 0),
            links_pending=links.get((i.id, "pending"), 0),
            links_failed=links.get((i.id, "failed"), 0),
            statements=statements.get(i.id, 0),
        )
        for i in inquiries
    ]


class InquiryService:
    """The panel's inquiries: one per request, on the process's core services."""

    def __init__(self, context: Services, settings: Settings, broadcasts: InquiryBroadcasts) -> None:
        self._sessions = context.sessions
        self._settings = settings
        self._broadcasts = broadcasts
        self._need_to_know = NeedToKnowService(context.sessions)

    # -- reading -------------------------------------------------------------------------------------
    def list_inquiries(self) -> list[InquiryView]:
        with session_scope(self._sessions) as session:
            return _views(session, session.scalars(select(Inquiry).order_by(Inquiry.id.desc())).all())

    def get(self, inquiry_id: int) -> InquiryView:
        with session_scope(self._sessions) as session:
            return _views(session, [_get(session, inquiry_id)])[0]

    def may_read_statements(self, reader: Reader, inquiry_id: int) -> bool:
        """Need-to-know (callback_api.access): the statements go with the linked action's
        personal data; an inquiry without an action is national roles' only."""
        with session_scope(self._sessions) as session:
            action_id = _get(session, inquiry_id).action_id
        return self._need_to_know.may_read(reader, action_id)

    def statements(self, inquiry_id: int, reader: Reader) -> list[StatementView]:
        """The residents' statements, for a reader with need-to-know (NeedToKnow otherwise);
        the read is audited."""
        if not self.may_read_statements(reader, inquiry_id):
            raise NeedToKnow(f"{reader.username} ({reader.role.value}) may not read these statements")
        with session_scope(self._sessions) as session:
            rows = session.scalars(
                select(Statement)
                .where(Statement.inquiry_id == inquiry_id)
                .order_by(Statement.created_at, Statement.id)
            )
            views = [
                StatementView(s.id, s.link_id, s.text, bool(s.photo_path), utc(s.created_at)) for s in rows
            ]
        if views:
            self._need_to_know.audit_read(reader, "inquiry", inquiry_id, {"statements": len(views)})
        return views

    def updates(self, inquiry_id: int) -> list[UpdateView]:
        with session_scope(self._sessions) as session:
            rows = session.scalars(
                select(InquiryUpdate).where(InquiryUpdate.inquiry_id == inquiry_id).order_by(InquiryUpdate.id)
            )
            return [
                UpdateView(u.id, u.message, utc(u.created_at), u.created_by, u.recipients, u.failed)
                for u in rows
            ]

    def statement_photo(self, inquiry_id: int, statement_id: int, reader: Reader) -> Path | None:
        """The statement's photo for a reader with need-to-know (NeedToKnow otherwise); audited."""
        with session_scope(self._sessions) as session:
            found = session.execute(
                select(Statement.photo_path, Inquiry.action_id)
                .join(Inquiry, Inquiry.id == Statement.inquiry_id)
                .where(Statement.id == statement_id, Statement.inquiry_id == inquiry_id)
            ).first()
        if found is None:
            return None
        self._need_to_know.require(reader, found[1])
        path = photo_file(self._settings, found[0])
        if path is not None:
            self._need_to_know.audit_read(reader, "statement", statement_id, {"what": "photo"})
        return path

    def action_choices(self) -> list[ActionChoice]:
        """The newest actions, to link an inquiry to."""
        with session_scope(self._sessions) as session:
            rows = session.execute(
                select(Action.id, Action.title, Action.status)
                .order_by(Action.id.desc())
                .limit(ACTION_CHOICES)
            ).all()
        return [ActionChoice(action_id, title, status) for action_id, title, status in rows]

    # -- the area ----------------------------------------------------------------------------------------
    def area_feature(self, inquiry_id: int) -> dict[str, Any]:
        """GeoJSON Feature of the inquiry's area, drawn by the same rules as an action's."""
        with session_scope(self._sessions) as session:
            inquiry = _get(session, inquiry_id)
            # A transient Action (never added to the session) carrying the inquiry's area columns.
            stand_in = Action(
                id=inquiry.id,
                title=inquiry.title,
                action_type="information",
                status="draft",
                area_kind=inquiry.area_kind,
                center_lat=inquiry.center_lat,
                center_lon=inquiry.center_lon,
                radius_m=inquiry.radius_m,
                area_geojson=inquiry.area_geojson,
                postcodes=inquiry.postcodes,
            )
            feature = action_feature(session, stand_in)
        drawn = feature["properties"]
        feature["properties"] = {"id": inquiry_id, "title": inquiry.title, "area_kind": inquiry.area_kind}
        if "radius_m" in drawn:  # circles and PC4 centres are drawn with a radius
            feature["properties"]["radius_m"] = drawn["radius_m"]
        return feature

    def count_recipients(self, area: AreaSpec | None, action_id: int | None = None) -> int:
        """Who "send links" would e-mail for this area (or the linked action's): the live count."""
        with session_scope(self._sessions) as session:
            if area is None:
                if action_id is None:
                    raise InquiryError("choose an area, or link an action and use its area")
                area = _action_area(session, action_id)
            columns = inquiry_columns(area)
            return count_inside(session, stored_area(columns), Audience.INQUIRY)

    def count_recipients_of(self, inquiry_id: int) -> int:
        with session_scope(self._sessions) as session:
            return count_inside(session, stored_area(_get(session, inquiry_id)), Audience.INQUIRY)

    # -- changing ------------------------------------------------------------------------------------------
    def create(
        self,
        *,
        title: str,
        question: str,
        area: AreaSpec | None,
        closes_at: datetime,
        action_id: int | None = None,
        actor: str,
        source: str,
        now: datetime | None = None,
    ) -> int:
        """A new inquiry (no links yet). ``area=None`` takes the linked action's area."""
        now = now or datetime.now(UTC)
        title = clean_text(title, "the title", MAX_TITLE_CHARS)
        question = clean_text(question, "the question", MAX_TEXT_CHARS)
        closes_at = utc(closes_at)
        if closes_at <= now:
            raise InquiryError("the closing date must lie in the future")
        if closes_at > now + timedelta(days=MAX_OPEN_DAYS):
            raise InquiryError(f"an inquiry stays open for at most {MAX_OPEN_DAYS} days")
        with session_scope(self._sessions) as session:
            if action_id is not None and session.get(Action, action_id) is None:
                raise InquiryError(f"no action {action_id}")
            if area is None:
                if action_id is None:
                    raise InquiryError("choose an area, or link an action and use its area")
                area = _action_area(session, action_id)
            columns = inquiry_columns(area)
            inquiry = Inquiry(
                action_id=action_id,
                title=title,
                question=question,
                created_at=now,
                closes_at=closes_at,
                created_by=actor[:80],
                **columns,
            )
            session.add(inquiry)
            session.flush()
            record_audit(
                session,
                actor=actor,
                verb="create",
                entity="inquiry",
                entity_id=inquiry.id,
                detail={
                    "title": title,
                    "action_id": action_id,
                    "area_kind": columns["area_kind"],
                    "closes_at": closes_at.isoformat(),
                },
                source=source,
            )
            return inquiry.id

    def send_links(self, inquiry_id: int, *, actor: str, source: str, now: datetime | None = None) -> int:
        """Ask the workers to e-mail every link not yet delivered (new ones made as needed).

        Safe to repeat: a link already sent, refused, or on its way is never e-mailed again.
        Returns the broadcast's id.
        """
        now = now or datetime.now(UTC)
        with session_scope(self._sessions) as session:
            inquiry = _get(session, inquiry_id)
            if utc(inquiry.closes_at) <= now:
                raise InquiryClosed("the inquiry is closed; no links can be sent any more")
            broadcast_id = self._broadcasts.request_inquiry(session, inquiry_id, INVITATION)
            record_audit(
                session,
                actor=actor,
                verb="send_links",
                entity="inquiry",
                entity_id=inquiry_id,
                detail={"broadcast": broadcast_id},
                source=source,
            )
        self._nudge(inquiry_id, broadcast_id)
        return broadcast_id

    def send_follow_up(
        self, inquiry_id: int, message: str, *, actor: str, source: str, now: datetime | None = None
    ) -> int:
        """Ask the workers to e-mail an update to everyone whose link was sent; returns the update's id."""
        now = now or datetime.now(UTC)
        message = clean_text(message, "the update", MAX_TEXT_CHARS)
        with session_scope(self._sessions) as session:
            _get(session, inquiry_id)
            sent = session.scalar(
                select(func.count())
                .select_from(InquiryLink)
                .where(InquiryLink.inquiry_id == inquiry_id, InquiryLink.delivery == "sent")
            )
            if not sent:
                raise InquiryError(
                    "nobody has received a link of this inquiry yet; there is no one to update"
                )
            broadcast_id = self._broadcasts.request_inquiry(session, inquiry_id, FOLLOW_UP, message)
            update = InquiryUpdate(
                inquiry_id=inquiry_id,
                message=message,
                created_at=now,
                created_by=actor[:80],
                broadcast_id=broadcast_id,
            )
            session.add(update)
            session.flush()
            update_id = update.id
            record_audit(
                session,
                actor=actor,
                verb="follow_up",
                entity="inquiry",
                entity_id=inquiry_id,
                detail={"update_id": update_id, "broadcast": broadcast_id},
                source=source,
            )
        self._nudge(inquiry_id, broadcast_id)
        return update_id

    def _nudge(self, inquiry_id: int, broadcast_id: int) -> None:
        # After the commit and best-effort: the workers' sweep of pending broadcasts repairs a lost nudge.
        try:
            self._broadcasts.nudge(broadcast_id)
        except Exception:
            log.exception(
                "inquiry %s: broadcast %s written but the workers were not nudged; their sweep sends it",
                inquiry_id,
                broadcast_id,
            )


__all__ = [
    "INQUIRY_AREA",
    "MAX_TEXT_CHARS",
    "MAX_TITLE_CHARS",
    "ActionChoice",
    "InquiryBroadcasts",
    "InquiryClosed",
    "InquiryError",
    "InquiryNotFound",
    "InquiryService",
    "InquiryView",
    "StatementView",
    "UpdateView",
    "clean_text",
    "local_time",
    "parse_local_datetime",
]

"""Neighbourhood inquiries (online buurtonderzoek): create, send personal links, collect statements.

The flow: an operator creates an inquiry for an area with a question and a closing date;
"send links" gives every participant inside the area who has an e-mail address and opted in to
inquiries one personal link and e-mails it; the resident answers on a public form (one
statement per link, an optional photo); afterwards a follow-up update goes to everyone who got
a link.

Links are bearer secrets: ``secrets.token_urlsafe`` tokens of which only the SHA-256 is stored,
so a database dump does not open anyone's form. A link that could not be e-mailed stays
``pending`` and gets a fresh token the next time links are sent (the old token was never seen
by anyone, and cannot be rebuilt from its hash). Every change is audited; for a resident's
statement the actor is the link (``inquiry-link:<id>``), never a name or an address.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.geo import InvalidGeometry, parse_area_geometry, to_geojson
from burgernet.mailer import Mailer, OutgoingMail, SendResult
from burgernet.models import (
    NL_BOUNDS,
    Action,
    Inquiry,
    InquiryLink,
    InquiryUpdate,
    Participant,
    Statement,
)
from burgernet.postcode import InvalidPostcode, normalise_postcode
from burgernet.repositories import record_audit
from burgernet.settings import Settings
from callback_api.areas import action_feature
from callback_api.photos import CheckedPhoto, photo_file, photos_dir
from routing import model as rm
from routing.areas import distance_m

LOCAL_TZ = ZoneInfo("Europe/Amsterdam")
TOKEN_BYTES = 32  # 256 bits: guessing a link is hopeless, so the public form needs no login
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,128}")
MAX_TITLE_CHARS = 200
MAX_TEXT_CHARS = 5000
MAX_RADIUS_M = 25_000.0  # a neighbourhood, not a province
MAX_OPEN_DAYS = 90
_METRES_PER_DEGREE_LAT = 111_320.0


# Shown to residents on the public page (the panel translates them; keep them in i18n.py).
LINK_NOT_VALID = "This link is not valid. Check that you copied the whole link from the e-mail."
LINK_CLOSED = "This inquiry has closed; statements can no longer be given through this link."
LINK_USED = "A statement was already given through this link. Thank you."


class InquiryError(ValueError):
    """The request cannot be carried out; the message says why, nothing was changed."""


class LinkNotFound(InquiryError):
    """No link with this token (mistyped, cut off, or never issued)."""


class LinkGone(InquiryError):
    """The link existed but can no longer be used: expired, or its statement was already given."""


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
class SendReport:
    new_links: int
    sent: int
    retry_later: int  # transient failures: still pending, sent with the next "send links"
    refused: int  # permanent failures: the mail server will not take them

    @property
    def attempted(self) -> int:
        return self.sent + self.retry_later + self.refused


@dataclass(frozen=True)
class PublicLink:
    """What the public form may show: the inquiry's question, nothing about the resident."""

    link_id: int
    inquiry_id: int
    title: str
    question: str
    closes_at: datetime
    language: str


def utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/inquiry/{token}"


def parse_local_datetime(text: str) -> datetime:
    """``2026-12-01T18:00`` as typed in the panel (Dutch time) → an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InquiryError(f"closing date: {text!r} is not a date and time (YYYY-MM-DD HH:MM)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return moment.astimezone(UTC)


def local_time(moment: datetime | None) -> str:
    return utc(moment).astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


# Areas ---------------------------------------------------------------------------------------


def area_columns(area: AreaSpec) -> dict[str, Any]:
    """A validated area spec → the inquiry's area columns (clear message on bad input)."""
    if area.kind is AreaKind.CIRCLE:
        if area.centre is None or area.radius_m is None or area.radius_m <= 0:
            raise InquiryError("a circle needs a centre (lon, lat) and a radius above 0 metres")
        lon, lat = area.centre
        lo_lon, lo_lat, hi_lon, hi_lat = NL_BOUNDS
        if not (lo_lon <= lon <= hi_lon and lo_lat <= lat <= hi_lat):
            raise InquiryError("the circle's centre lies outside the Netherlands (give lon, lat)")
        if area.radius_m > MAX_RADIUS_M:
            raise InquiryError(f"an inquiry's circle has a radius of at most {int(MAX_RADIUS_M / 1000)} km")
        return {"area_kind": "circle", "center_lon": lon, "center_lat": lat, "radius_m": float(area.radius_m)}
    if area.kind is AreaKind.POLYGON:
        try:
            geojson = to_geojson(parse_area_geometry(area.geojson or ""))
        except InvalidGeometry as exc:
            raise InquiryError(f"area: {exc}") from None
        return {"area_kind": "polygon", "area_geojson": geojson}
    if area.kind is AreaKind.POSTCODES:
        if not area.postcodes:
            raise InquiryError("a postcode area needs at least one postcode")
        try:
            codes = sorted({normalise_postcode(code) for code in area.postcodes})
        except InvalidPostcode as exc:
            raise InquiryError(str(exc)) from None
        return {"area_kind": "postcodes", "postcodes": ",".join(codes)}
    raise InquiryError("an inquiry is for a neighbourhood: draw a circle or polygon, or list postcodes")


def action_area_spec(session: Session, action_id: int) -> AreaSpec:
    """The area of an existing action, for an inquiry "in the same area as the action"."""
    action = session.get(Action, action_id)
    if action is None:
        raise InquiryError(f"no action {action_id}")
    kind = AreaKind(action.area_kind)
    if kind is AreaKind.CIRCLE and action.center_lon is not None and action.center_lat is not None:
        return AreaSpec(kind, centre=(action.center_lon, action.center_lat), radius_m=action.radius_m)
    if kind is AreaKind.POLYGON:
        return AreaSpec(kind, geojson=action.area_geojson)
    if kind is AreaKind.POSTCODES:
        return AreaSpec(kind, postcodes=tuple(c for c in (action.postcodes or "").split(",") if c))
    raise InquiryError("the action is nationwide; draw the inquiry's neighbourhood instead")


def _area(source: dict[str, Any] | Inquiry) -> rm.Area:
    """The routing view of an inquiry's area (from its row or from validated columns)."""
    columns = source if isinstance(source, dict) else {name: getattr(source, name) for name in _AREA_FIELDS}
    kind = columns["area_kind"]
    if kind == "circle":
        centre = rm.Location(float(columns["center_lon"]), float(columns["center_lat"]))
        return rm.CircleArea(centre, float(columns["radius_m"]))
    if kind == "polygon":
        return rm.PolygonArea(parse_area_geometry(columns["area_geojson"]))
    return rm.PostcodeArea(frozenset(code for code in (columns.get("postcodes") or "").split(",") if code))


_AREA_FIELDS = ("area_kind", "center_lon", "center_lat", "radius_m", "area_geojson", "postcodes")


def _eligible_query(area: rm.Area) -> Any:
    """Opted-in participants with an e-mail address, pre-filtered by the area's bounding box."""
    query = select(Participant.id, Participant.lat, Participant.lon).where(
        Participant.inquiry_opt_in.is_(True),
        Participant.opted_out.is_(False),
        Participant.email.is_not(None),
        Participant.email != "",
    )
    if isinstance(area, rm.CircleArea):
        dlat = area.radius_m / _METRES_PER_DEGREE_LAT
        dlon = area.radius_m / (_METRES_PER_DEGREE_LAT * max(0.01, math.cos(math.radians(area.centre.lat))))
        return query.where(
            Participant.lat.between(area.centre.lat - dlat, area.centre.lat + dlat),
            Participant.lon.between(area.centre.lon - dlon, area.centre.lon + dlon),
        )
    if isinstance(area, rm.PolygonArea):
        min_lon, min_lat, max_lon, max_lat = area.geometry.bounds
        return query.where(
            Participant.lat.between(min_lat, max_lat), Participant.lon.between(min_lon, max_lon)
        )
    assert isinstance(area, rm.PostcodeArea)
    pc6 = sorted(code for code in area.postcodes if len(code) == 6)
    conditions = [Participant.postcode.in_(pc6)] if pc6 else []
    conditions += [Participant.postcode.like(f"{code}%") for code in sorted(area.postcodes) if len(code) == 4]
    return query.where(or_(*conditions))


def eligible_participants(session: Session, area: rm.Area) -> list[int]:
    """Ids of everyone an inquiry for ``area`` would e-mail (exact inside test after the box)."""
    rows = session.execute(_eligible_query(area)).all()
    if isinstance(area, rm.CircleArea):
        return [
            pid for pid, lat, lon in rows if distance_m(area.centre, rm.Location(lon, lat)) <= area.radius_m
        ]
    if isinstance(area, rm.PolygonArea) and rows:
        shapely.prepare(area.geometry)
        inside = shapely.intersects_xy(area.geometry, [r[2] for r in rows], [r[1] for r in rows])
        return [row[0] for row, keep in zip(rows, inside, strict=True) if keep]
    return [row[0] for row in rows]


def count_eligible(sessions: sessionmaker[Session], area: AreaSpec) -> int:
    columns = area_columns(area)
    with session_scope(sessions) as session:
        return len(eligible_participants(session, _area(columns)))


def count_eligible_for(sessions: sessionmaker[Session], inquiry_id: int) -> int:
    with session_scope(sessions) as session:
        return len(eligible_participants(session, _area(_get(session, inquiry_id))))


def area_feature(sessions: sessionmaker[Session], inquiry_id: int) -> dict[str, Any]:
    """GeoJSON Feature of the inquiry's area, drawn by the same rules as an action's."""
    with session_scope(sessions) as session:
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


# Reading ---------------------------------------------------------------------------------------


def _get(session: Session, inquiry_id: int) -> Inquiry:
    inquiry = session.get(Inquiry, inquiry_id)
    if inquiry is None:
        raise InquiryError(f"no inquiry {inquiry_id}")
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


def list_inquiries(sessions: sessionmaker[Session]) -> list[InquiryView]:
    with session_scope(sessions) as session:
        return _views(session, session.scalars(select(Inquiry).order_by(Inquiry.id.desc())).all())


def get_inquiry(sessions: sessionmaker[Session], inquiry_id: int) -> InquiryView:
    with session_scope(sessions) as session:
        return _views(session, [_get(session, inquiry_id)])[0]


def statements(sessions: sessionmaker[Session], inquiry_id: int) -> list[StatementView]:
    with session_scope(sessions) as session:
        rows = session.scalars(
            select(Statement)
            .where(Statement.inquiry_id == inquiry_id)
            .order_by(Statement.created_at, Statement.id)
        )
        return [StatementView(s.id, s.link_id, s.text, bool(s.photo_path), utc(s.created_at)) for s in rows]


def updates(sessions: sessionmaker[Session], inquiry_id: int) -> list[UpdateView]:
    with session_scope(sessions) as session:
        rows = session.scalars(
            select(InquiryUpdate).where(InquiryUpdate.inquiry_id == inquiry_id).order_by(InquiryUpdate.id)
        )
        return [
            UpdateView(u.id, u.message, utc(u.created_at), u.created_by, u.recipients, u.failed) for u in rows
        ]


def statement_photo(
    sessions: sessionmaker[Session], settings: Settings, inquiry_id: int, statement_id: int
) -> Path | None:
    with session_scope(sessions) as session:
        stored = session.scalar(
            select(Statement.photo_path).where(
                Statement.id == statement_id, Statement.inquiry_id == inquiry_id
            )
        )
    return photo_file(settings, stored)


# Changing --------------------------------------------------------------------------------------


def _clean_text(value: str, what: str, limit: int) -> str:
    text = (value or "").strip()
    if not text:
        raise InquiryError(f"{what} is empty")
    if len(text) > limit:
        raise InquiryError(f"{what} is longer than {limit} characters")
    return text


def create_inquiry(
    sessions: sessionmaker[Session],
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
    title = _clean_text(title, "the title", MAX_TITLE_CHARS)
    question = _clean_text(question, "the question", MAX_TEXT_CHARS)
    closes_at = utc(closes_at)
    if closes_at <= now:
        raise InquiryError("the closing date must lie in the future")
    if closes_at > now + timedelta(days=MAX_OPEN_DAYS):
        raise InquiryError(f"an inquiry stays open for at most {MAX_OPEN_DAYS} days")
    with session_scope(sessions) as session:
        if action_id is not None and session.get(Action, action_id) is None:
            raise InquiryError(f"no action {action_id}")
        if area is None:
            if action_id is None:
                raise InquiryError("choose an area, or link an action and use its area")
            area = action_area_spec(session, action_id)
        columns = area_columns(area)
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


_LINK_MAIL = {
    "nl": (
        "Burgernet buurtonderzoek: {title}",
        "Beste deelnemer,\n\n"
        "De politie vraagt uw hulp bij een buurtonderzoek in uw omgeving: {title}\n\n"
        "{question}\n\n"
        "Heeft u iets gezien of gehoord, of heeft u camerabeelden of een foto? Geef het door via uw "
        "persoonlijke link (geldig tot {closes}):\n\n{url}\n\n"
        "Deze link is alleen voor u: stuur hem niet door. U kunt één keer een verklaring geven.\n"
        "Is het dringend? Bel dan 112.\n\n"
        "U krijgt dit bericht omdat u zich bij Burgernet heeft aangemeld voor buurtonderzoeken.\n",
    ),
    "en": (
        "Burgernet neighbourhood inquiry: {title}",
        "Dear participant,\n\n"
        "The police ask for your help with a neighbourhood inquiry near you: {title}\n\n"
        "{question}\n\n"
        "Did you see or hear anything, or do you have camera footage or a photo? Please tell us "
        "through your personal link (valid until {closes}):\n\n{url}\n\n"
        "This link is for you only: please do not forward it. You can give one statement.\n"
        "In an emergency, call 112.\n\n"
        "You receive this message because you signed up for Burgernet neighbourhood inquiries.\n",
    ),
}

_UPDATE_MAIL = {
    "nl": (
        "Burgernet buurtonderzoek, update: {title}",
        "Beste deelnemer,\n\nU ontving eerder een vraag van de politie over: {title}\n\n"
        "{message}\n\nBedankt voor uw hulp.\n",
    ),
    "en": (
        "Burgernet neighbourhood inquiry, update: {title}",
        "Dear participant,\n\nYou were asked earlier by the police about: {title}\n\n"
        "{message}\n\nThank you for your help.\n",
    ),
}


def _mail_text(table: dict[str, tuple[str, str]], language: str, **values: str) -> tuple[str, str]:
    subject, body = table.get(language, table["nl"])
    # The subject is one line: a line break typed in the title must not become a header.
    return " ".join(subject.format(**values).split()), body.format(**values)


def _deliveries_counted(results: Sequence[SendResult]) -> tuple[int, int, int]:
    sent = sum(1 for r in results if r.ok)
    refused = sum(1 for r in results if r.error is not None and r.error.permanent)
    return sent, len(results) - sent - refused, refused


def send_links(
    sessions: sessionmaker[Session],
    mailer: Mailer,
    *,
    inquiry_id: int,
    base_url: str,
    actor: str,
    source: str,
    now: datetime | None = None,
) -> SendReport:
    """Create the missing links and e-mail every link not yet delivered. Safe to repeat.

    The links (with fresh tokens) are committed before any mail goes out, so that every link
    in a delivered e-mail works; the outcome of each mail is recorded afterwards.
    """
    now = now or datetime.now(UTC)
    outgoing: list[tuple[int, OutgoingMail]] = []
    with session_scope(sessions) as session:
        inquiry = _get(session, inquiry_id)
        if utc(inquiry.closes_at) <= now:
            raise InquiryError("the inquiry is closed; no links can be sent any more")
        wanted = set(eligible_participants(session, _area(inquiry)))
        existing = dict(
            session.execute(
                select(InquiryLink.participant_id, InquiryLink.id).where(InquiryLink.inquiry_id == inquiry_id)
            ).all()
        )
        new_links = 0
        for participant_id in sorted(wanted - existing.keys()):
            session.add(
                InquiryLink(
                    inquiry_id=inquiry_id,
                    participant_id=participant_id,
                    # A placeholder never handed out; replaced below before anything is sent.
                    token_hash=hash_token(secrets.token_urlsafe(TOKEN_BYTES)),
                    expires_at=inquiry.closes_at,
                    delivery="pending",
                )
            )
            new_links += 1
        session.flush()
        pending = session.execute(
            select(InquiryLink, Participant.email, Participant.language)
            .join(Participant, Participant.id == InquiryLink.participant_id)
            .where(
                InquiryLink.inquiry_id == inquiry_id,
                InquiryLink.delivery == "pending",
                Participant.inquiry_opt_in.is_(True),
                Participant.opted_out.is_(False),
                Participant.email.is_not(None),
            )
            .order_by(InquiryLink.id)
        ).all()
        closes = local_time(inquiry.closes_at)
        for link, email, language in pending:
            token = secrets.token_urlsafe(TOKEN_BYTES)
            link.token_hash = hash_token(token)
            link.expires_at = inquiry.closes_at
            subject, body = _mail_text(
                _LINK_MAIL,
                language,
                title=inquiry.title,
                question=inquiry.question,
                closes=closes,
                url=link_url(base_url, token),
            )
            outgoing.append(
                (
                    link.id,
                    OutgoingMail(
                        to=str(email),
                        subject=subject,
                        body_text=body,
                        # One id per link and token: a retry of the same mail is recognisably the same.
                        message_id=mailer.message_id(
                            "inquiry", inquiry_id, "link", link.id, link.token_hash[:12]
                        ),
                        headers={"Auto-Submitted": "auto-generated"},
                    ),
                )
            )
    results = mailer.send_many(mail for _link_id, mail in outgoing)
    sent, retry_later, refused = _deliveries_counted(results)
    with session_scope(sessions) as session:
        for (link_id, _mail), result in zip(outgoing, results, strict=True):
            stored = session.get(InquiryLink, link_id)
            if stored is None:  # the participant was erased meanwhile
                continue
            if result.ok:
                stored.delivery, stored.sent_at, stored.last_error = "sent", now, None
            else:
                assert result.error is not None
                stored.delivery = "failed" if result.error.permanent else "pending"
                stored.last_error = str(result.error)[:300]
        record_audit(
            session,
            actor=actor,
            verb="send_links",
            entity="inquiry",
            entity_id=inquiry_id,
            detail={"new_links": new_links, "sent": sent, "retry_later": retry_later, "refused": refused},
            source=source,
        )
    return SendReport(new_links=new_links, sent=sent, retry_later=retry_later, refused=refused)


def send_follow_up(
    sessions: sessionmaker[Session],
    mailer: Mailer,
    *,
    inquiry_id: int,
    message: str,
    actor: str,
    source: str,
    now: datetime | None = None,
) -> SendReport:
    """E-mail an update to everyone whose link was delivered (and who has not opted out since)."""
    now = now or datetime.now(UTC)
    message = _clean_text(message, "the update", MAX_TEXT_CHARS)
    with session_scope(sessions) as session:
        inquiry = _get(session, inquiry_id)
        recipients = session.execute(
            select(InquiryLink.id, Participant.email, Participant.language)
            .join(Participant, Participant.id == InquiryLink.participant_id)
            .where(
                InquiryLink.inquiry_id == inquiry_id,
                InquiryLink.delivery == "sent",
                Participant.opted_out.is_(False),
                and_(Participant.email.is_not(None), Participant.email != ""),
            )
            .order_by(InquiryLink.id)
        ).all()
        if not recipients:
            raise InquiryError("nobody has received a link of this inquiry yet; there is no one to update")
        update = InquiryUpdate(inquiry_id=inquiry_id, message=message, created_at=now, created_by=actor[:80])
        session.add(update)
        session.flush()
        update_id, title = update.id, inquiry.title
    outgoing = []
    for link_id, email, language in recipients:
        subject, body = _mail_text(_UPDATE_MAIL, language, title=title, message=message)
        outgoing.append(
            OutgoingMail(
                to=str(email),
                subject=subject,
                body_text=body,
                message_id=mailer.message_id("inquiry", inquiry_id, "update", update_id, "link", link_id),
                headers={"Auto-Submitted": "auto-generated"},
            )
        )
    results = mailer.send_many(outgoing)
    sent, retry_later, refused = _deliveries_counted(results)
    with session_scope(sessions) as session:
        stored = session.get(InquiryUpdate, update_id)
        assert stored is not None
        stored.recipients = sent
        stored.failed = retry_later + refused
        record_audit(
            session,
            actor=actor,
            verb="follow_up",
            entity="inquiry",
            entity_id=inquiry_id,
            detail={"update_id": update_id, "sent": sent, "failed": retry_later + refused},
            source=source,
        )
    return SendReport(new_links=0, sent=sent, retry_later=retry_later, refused=refused)


# The public side ---------------------------------------------------------------------------------


def _usable_link(session: Session, token: str, now: datetime) -> tuple[InquiryLink, Inquiry]:
    if not _TOKEN_SHAPE.fullmatch(token or ""):
        raise LinkNotFound(LINK_NOT_VALID)
    link = session.scalar(select(InquiryLink).where(InquiryLink.token_hash == hash_token(token)))
    if link is None:
        raise LinkNotFound(LINK_NOT_VALID)
    inquiry = _get(session, link.inquiry_id)
    if now >= utc(link.expires_at) or now >= utc(inquiry.closes_at):
        raise LinkGone(LINK_CLOSED)
    if session.scalar(select(Statement.id).where(Statement.link_id == link.id)) is not None:
        raise LinkGone(LINK_USED)
    return link, inquiry


def open_link(sessions: sessionmaker[Session], token: str, now: datetime | None = None) -> PublicLink:
    with session_scope(sessions) as session:
        link, inquiry = _usable_link(session, token, now or datetime.now(UTC))
        language = session.scalar(select(Participant.language).where(Participant.id == link.participant_id))
        return PublicLink(
            link.id, inquiry.id, inquiry.title, inquiry.question, utc(inquiry.closes_at), language or "nl"
        )


def submit_statement(
    sessions: sessionmaker[Session],
    settings: Settings,
    token: str,
    text: str,
    photo: CheckedPhoto | None,
    *,
    source: str,
    now: datetime | None = None,
) -> int:
    """Store the one statement of a link (and its photo); refuses a second one, changing nothing."""
    now = now or datetime.now(UTC)
    text = _clean_text(text, "your statement", MAX_TEXT_CHARS)
    stored_photo: Path | None = None
    try:
        with session_scope(sessions) as session:
            link, inquiry = _usable_link(session, token, now)
            if photo is not None:
                folder = photos_dir(settings) / "inquiries" / str(int(inquiry.id))
                folder.mkdir(parents=True, exist_ok=True)
                # A name of its own: a losing concurrent submission must not overwrite the winner's.
                stored_photo = folder / f"link-{int(link.id)}-{secrets.token_hex(4)}.{photo.extension}"
                temporary = stored_photo.with_suffix(".part")
                temporary.write_bytes(photo.data)
                temporary.replace(stored_photo)
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
    "InquiryError",
    "InquiryView",
    "LinkGone",
    "LinkNotFound",
    "PublicLink",
    "SendReport",
    "StatementView",
    "UpdateView",
    "area_columns",
    "area_feature",
    "count_eligible",
    "count_eligible_for",
    "create_inquiry",
    "get_inquiry",
    "hash_token",
    "link_url",
    "list_inquiries",
    "local_time",
    "open_link",
    "parse_local_datetime",
    "send_follow_up",
    "send_links",
    "statement_photo",
    "statements",
    "submit_statement",
    "updates",
]

"""Neighbourhood inquiries end to end: panel pages per role, the e-mails sent by a real broadcast
worker to a real SMTP server (aiosmtpd), the public form."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select, update

from broadcasting.channels.base import Sender
from broadcasting.channels.registry import build_senders
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.inquiries import LOCAL_TZ, hash_token, local_time
from burgernet.models import (
    AuditEvent,
    Broadcast,
    Inquiry,
    InquiryLink,
    InquiryUpdate,
    Participant,
    Statement,
)
from burgernet.settings import Settings
from callback_api.photos import MAX_PHOTO_BYTES, check_photo, photos_dir
from composition.context import Context
from testbed.smtp import SmtpServer
from tests.broadcasting.conftest import WorkerThread
from tests.panel.conftest import UTRECHT, World, audit_count, csrf_token

ClientFor = Callable[[str | None], FlaskClient]
_LINK = re.compile(r"http://panel\.test/inquiry/([A-Za-z0-9_-]+)")
ROLES = ("admin", "operator", "centralist", "viewer", None)
INQUIRY_ROLES = {"admin", "operator"}


@pytest.fixture
def client_for(client_for: ClientFor) -> ClientFor:
    """The panel's clients, reading English unless a test asks for Dutch (the default is Dutch)."""

    def make(role: str | None) -> FlaskClient:
        client = client_for(role)
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
        return client

    return make


@pytest.fixture
def bn_settings(bn_settings: Settings, smtp_server: SmtpServer) -> Settings:
    """E-mail goes to the test's SMTP server, links are built on a known base URL, and the
    workers retry quickly (three attempts, 0.2 s apart and doubling)."""
    return bn_settings.model_copy(
        update={
            "smtp": smtp_server.settings(bn_settings.smtp),
            "web": bn_settings.web.model_copy(update={"public_base_url": "http://panel.test"}),
            "broadcast": bn_settings.broadcast.model_copy(
                update={"email_per_second": 200.0, "retry_base_seconds": 0.2, "max_attempts": 3}
            ),
        }
    )


def email_senders(settings: Settings) -> Callable[[], object]:
    async def build() -> dict[Channel, Sender]:
        return await build_senders(settings, [Channel.EMAIL], aioredis.Redis.from_url(settings.redis.url))

    return build


@pytest.fixture(autouse=True)
def mail_worker(bn_context: Context) -> Iterator[WorkerThread]:
    """A broadcast worker for e-mail, as `burgernet worker` runs it: the panel only asks for mail."""
    worker = WorkerThread(bn_context, email_senders(bn_context.settings))
    yield worker
    worker.stop()


def settled(context: Context, inquiry_id: int, timeout: float = 20.0) -> None:
    """Wait until every e-mail the inquiry asked for has reached a final status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(context.sessions) as session:
            busy = session.scalar(
                select(func.count())
                .select_from(Broadcast)
                .where(Broadcast.inquiry_id == inquiry_id, Broadcast.status.in_(("pending", "running")))
            )
        if not busy:
            return
        time.sleep(0.05)
    raise AssertionError(f"the e-mails of inquiry {inquiry_id} did not settle in {timeout} s")


@dataclass
class Neighbours:
    """Who lives where: only ``reached`` may ever get a link."""

    reached: dict[str, int]  # e-mail → participant id
    not_reached: dict[str, int]


def _participant(context: Context, n: int, *, lon: float, lat: float, **fields: object) -> int:
    with session_scope(context.sessions) as session:
        person = Participant(
            phone_e164=f"+3161000{n:04d}",
            postcode="3511AB",
            lat=lat,
            lon=lon,
            language=str(fields.pop("language", "nl")),
            channel_voice=True,
            channel_sms=False,
            channel_email=False,
            opted_out=bool(fields.get("opted_out", False)),
            opted_out_at=datetime.now(UTC) if fields.pop("opted_out", False) else None,
            created_at=datetime.now(UTC),
            **fields,
        )
        session.add(person)
        session.flush()
        return person.id


@pytest.fixture
def neighbours(bn_context: Context, world: World) -> Neighbours:
    lon, lat = UTRECHT
    reached = {
        "anna@example.nl": _participant(
            bn_context, 1, lon=lon, lat=lat, email="anna@example.nl", inquiry_opt_in=True
        ),
        "bob@example.nl": _participant(
            bn_context,
            2,
            lon=lon + 0.003,
            lat=lat,
            email="bob@example.nl",
            inquiry_opt_in=True,
            language="en",
        ),
        "carla@example.nl": _participant(
            bn_context, 3, lon=lon, lat=lat + 0.003, email="carla@example.nl", inquiry_opt_in=True
        ),
    }
    not_reached = {
        "no-opt-in@example.nl": _participant(
            bn_context, 4, lon=lon, lat=lat, email="no-opt-in@example.nl", inquiry_opt_in=False
        ),
        "opted-out@example.nl": _participant(
            bn_context, 5, lon=lon, lat=lat, email="opted-out@example.nl", inquiry_opt_in=True, opted_out=True
        ),
        "far-away@example.nl": _participant(
            bn_context, 6, lon=4.48, lat=51.92, email="far-away@example.nl", inquiry_opt_in=True
        ),
        "": _participant(bn_context, 7, lon=lon, lat=lat, email=None, inquiry_opt_in=True),
    }
    return Neighbours(reached, not_reached)


def _local(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%dT%H:%M")


def create_inquiry(client: FlaskClient, **overrides: str) -> tuple[int, int]:
    """POST the new-inquiry form (a 1 km circle around Utrecht); returns (status, inquiry id or 0)."""
    data = {
        "csrf_token": csrf_token(client, "/inquiries/new"),
        "title": "Inbraak Oudegracht",
        "question": "Heeft u vannacht tussen 02:00 en 04:00 iets gezien bij de Oudegracht?",
        "action_id": "",
        "area_kind": "circle",
        "lon": str(UTRECHT[0]),
        "lat": str(UTRECHT[1]),
        "radius_m": "1000",
        "closes_at": _local(datetime.now(UTC) + timedelta(days=3)),
    }
    data.update(overrides)
    response = client.post("/inquiries/new", data=data)
    if response.status_code != 302:
        return response.status_code, 0
    match = re.search(r"/inquiries/(\d+)$", response.headers["Location"])
    assert match, response.headers["Location"]
    return 302, int(match.group(1))


def send_links(client: FlaskClient, inquiry_id: int) -> int:
    token = csrf_token(client, f"/inquiries/{inquiry_id}")
    return client.post(f"/inquiries/{inquiry_id}/send", data={"csrf_token": token}).status_code


def tokens_by_address(smtp_server: SmtpServer) -> dict[str, str]:
    found = {}
    for mail in smtp_server.messages:
        match = _LINK.search(mail.body())
        if match:
            found[mail.rcpt_tos[0]] = match.group(1)
    return found


def count_rows(context: Context, model: type, **where: object) -> int:
    with session_scope(context.sessions) as session:
        query = select(func.count()).select_from(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return int(session.scalar(query) or 0)


def png_bytes(size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def submit(
    client: FlaskClient, token: str, text: str, photo: tuple[bytes, str] | None = None
) -> tuple[int, str]:
    data: dict[str, object] = {"csrf_token": csrf_token(client, "/login"), "text": text}
    if photo is not None:
        data["photo"] = (io.BytesIO(photo[0]), photo[1])
    response = client.post(f"/inquiry/{token}", data=data, content_type="multipart/form-data")
    return response.status_code, response.get_data(as_text=True)


@pytest.fixture
def sent_inquiry(
    client_for: ClientFor, neighbours: Neighbours, smtp_server: SmtpServer, bn_context: Context
) -> tuple[int, dict[str, str]]:
    """An inquiry whose links went out; returns its id and the token each resident received."""
    operator = client_for("operator")
    status, inquiry_id = create_inquiry(operator)
    assert status == 302
    assert send_links(operator, inquiry_id) == 302
    smtp_server.wait_for(len(neighbours.reached), timeout=20)
    settled(bn_context, inquiry_id)
    return inquiry_id, tokens_by_address(smtp_server)


# Access --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_route_checks_the_role(
    role: str | None, client_for: ClientFor, sent_inquiry: tuple[int, dict[str, str]], bn_context: Context
) -> None:
    inquiry_id, tokens = sent_inquiry
    client = client_for(role)
    token = csrf_token(client, "/login")
    routes: list[tuple[str, str, bool]] = [
        ("GET", "/inquiries", False),
        ("GET", f"/inquiries/{inquiry_id}", False),
        ("GET", f"/inquiries/{inquiry_id}/area.json", False),
        ("GET", f"/inquiries/{inquiry_id}/recipients.json", False),
        ("GET", f"/inquiries/{inquiry_id}/statements/999/photo", False),
        ("GET", "/inquiries/new", True),
        ("POST", "/inquiries/new", True),
        ("POST", "/inquiries/recipients-preview", True),
        ("POST", f"/inquiries/{inquiry_id}/send", True),
        ("POST", f"/inquiries/{inquiry_id}/follow-up", True),
    ]
    for method, path, inquiry_roles_only in routes:
        response = client.open(path, method=method, data={"csrf_token": token} if method == "POST" else None)
        where = f"{role} {method} {path}"
        if role is None:
            assert response.status_code == 302 and "/login" in response.headers["Location"], where
        elif inquiry_roles_only and role not in INQUIRY_ROLES:
            assert response.status_code == 403, where
        else:
            assert response.status_code < 500 and response.status_code != 403, where
            assert "/login" not in response.headers.get("Location", ""), where
    # The public form needs no login, whoever opens it.
    assert client.get(f"/inquiry/{tokens['anna@example.nl']}").status_code == 200
    # Nobody was e-mailed a second time by the POSTs above (send is repeatable and idempotent).
    assert count_rows(bn_context, InquiryLink, inquiry_id=inquiry_id) == 3


def test_the_nav_links_to_inquiries_for_every_role(client_for: ClientFor) -> None:
    for role in ("admin", "operator", "centralist", "viewer"):
        html = client_for(role).get("/inquiries").get_data(as_text=True)
        assert 'href="/inquiries"' in html
        assert ('href="/inquiries/new"' in html) is (role in INQUIRY_ROLES)


# Creating --------------------------------------------------------------------------------------------


def test_create_is_audited_with_who_and_where(
    client_for: ClientFor, bn_context: Context, world: World
) -> None:
    status, inquiry_id = create_inquiry(client_for("operator"))
    assert status == 302
    with session_scope(bn_context.sessions) as session:
        inquiry = session.get(Inquiry, inquiry_id)
        assert inquiry is not None
        assert (inquiry.area_kind, inquiry.radius_m, inquiry.created_by) == ("circle", 1000.0, "operator")
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.entity == "inquiry", AuditEvent.entity_id == str(inquiry_id))
        ).one()
        assert (event.actor, event.verb, event.source) == ("operator", "create", "web 127.0.0.1")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"title": ""}, "Title"),
        ({"radius_m": "abc"}, "radius_m"),
        ({"lon": "60", "lat": "10"}, "outside the Netherlands"),
        ({"radius_m": "90000"}, "at most 25 km"),
        ({"area_kind": "polygon", "geojson": '{"type": "Point", "coordinates": [5.1, 52.1]}'}, "Polygon"),
        ({"area_kind": "postcodes", "postcodes": "12"}, "postcode"),
        ({"area_kind": "national"}, "Area: Not a valid choice"),
        ({"area_kind": "action", "action_id": ""}, "link an action"),
        ({"closes_at": "yesterday"}, "not a date"),
        ({"closes_at": _local(datetime.now(UTC) - timedelta(hours=1))}, "in the future"),
        ({"closes_at": _local(datetime.now(UTC) + timedelta(days=200))}, "at most 90 days"),
        ({"action_id": "99999"}, "no action 99999"),
    ],
)
def test_bad_input_is_refused_clearly_and_creates_nothing(
    overrides: dict[str, str], message: str, client_for: ClientFor, bn_context: Context
) -> None:
    client = client_for("admin")
    data = {
        "csrf_token": csrf_token(client, "/inquiries/new"),
        "title": "T",
        "question": "Q?",
        "action_id": "",
    }
    data |= {"area_kind": "circle", "lon": "5.12", "lat": "52.09", "radius_m": "500"}
    data["closes_at"] = _local(datetime.now(UTC) + timedelta(days=2))
    data |= overrides
    response = client.post("/inquiries/new", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert count_rows(bn_context, Inquiry) == 0
    assert audit_count(bn_context, entity="inquiry") == 0


def test_an_inquiry_can_take_the_area_of_its_action_or_postcodes_or_a_polygon(
    client_for: ClientFor, bn_context: Context, world: World
) -> None:
    client = client_for("admin")
    status, same_area = create_inquiry(client, area_kind="action", action_id=str(world.active_id))
    assert status == 302
    status, by_postcode = create_inquiry(client, area_kind="postcodes", postcodes="3511 ab, 3512")
    assert status == 302
    square = (
        '{"type":"Polygon","coordinates":[[[5.1,52.08],[5.14,52.08],[5.14,52.1],[5.1,52.1],[5.1,52.08]]]}'
    )
    status, by_polygon = create_inquiry(client, area_kind="polygon", geojson=square)
    assert status == 302
    with session_scope(bn_context.sessions) as session:
        linked = session.get(Inquiry, same_area)
        assert linked is not None
        assert (linked.action_id, linked.area_kind, linked.radius_m) == (world.active_id, "circle", 3000.0)
        assert (session.get(Inquiry, by_postcode) or linked).postcodes == "3511AB,3512"
        assert (session.get(Inquiry, by_polygon) or linked).area_kind == "polygon"
    feature = client.get(f"/inquiries/{by_polygon}/area.json").get_json()
    assert feature["geometry"]["type"] == "Polygon"
    circle = client.get(f"/inquiries/{same_area}/area.json").get_json()
    assert circle["geometry"]["type"] == "Point" and circle["properties"]["radius_m"] == 3000.0


def test_the_live_count_is_of_opted_in_people_with_e_mail(
    client_for: ClientFor, neighbours: Neighbours, world: World
) -> None:
    client = client_for("operator")
    token = csrf_token(client, "/inquiries/new")
    fields = {"area_kind": "circle", "lon": str(UTRECHT[0]), "lat": str(UTRECHT[1]), "radius_m": "1000"}
    response = client.post("/inquiries/recipients-preview", data=fields, headers={"X-CSRFToken": token})
    assert response.get_json() == {"recipients": 3}
    response = client.post(
        "/inquiries/recipients-preview",
        data={"area_kind": "action", "action_id": str(world.active_id)},
        headers={"X-CSRFToken": token},
    )
    assert response.get_json() == {"recipients": 3}
    response = client.post(
        "/inquiries/recipients-preview", data={"area_kind": "circle"}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 400 and "lon" in response.get_json()["error"]


# Sending links -----------------------------------------------------------------------------------------


def test_links_reach_exactly_the_opted_in_neighbours_and_work(
    client_for: ClientFor, neighbours: Neighbours, smtp_server: SmtpServer, bn_context: Context
) -> None:
    operator = client_for("operator")
    _status, inquiry_id = create_inquiry(operator)
    assert operator.get(f"/inquiries/{inquiry_id}/recipients.json").get_json()["recipients"] == 3
    response = operator.post(
        f"/inquiries/{inquiry_id}/send",
        data={"csrf_token": csrf_token(operator, f"/inquiries/{inquiry_id}")},
        follow_redirects=True,
    )
    assert "The links are queued for sending." in response.get_data(as_text=True)
    mails = smtp_server.wait_for(3, timeout=20)
    settled(bn_context, inquiry_id)
    assert sorted(m.rcpt_tos[0] for m in mails) == sorted(neighbours.reached)
    by_address = {m.rcpt_tos[0]: m for m in mails}
    assert by_address["anna@example.nl"].subject == "Burgernet buurtonderzoek: Inbraak Oudegracht"
    assert by_address["bob@example.nl"].subject == "Burgernet neighbourhood inquiry: Inbraak Oudegracht"
    assert "Heeft u vannacht" in by_address["anna@example.nl"].body()
    # The pipeline's Message-ID, one per delivery: a copy sent again is recognisably the same.
    assert all(m.message_id.startswith("<delivery-") for m in mails)
    assert len({m.message_id for m in mails}) == 3
    tokens = tokens_by_address(smtp_server)
    assert len(set(tokens.values())) == 3
    with session_scope(bn_context.sessions) as session:
        links = session.scalars(select(InquiryLink).where(InquiryLink.inquiry_id == inquiry_id)).all()
        stored = {link.token_hash for link in links}
        assert {link.delivery for link in links} == {"sent"}
        assert all(link.sent_at is not None for link in links)
    # Only the hashes are stored, never the tokens themselves.
    assert stored == {hash_token(token) for token in tokens.values()}
    assert not stored & set(tokens.values())
    html = operator.get(f"/inquiries/{inquiry_id}").get_data(as_text=True)
    assert '<dd id="links-sent">3</dd>' in html
    with session_scope(bn_context.sessions) as session:
        (broadcast_id,) = session.scalars(select(Broadcast.id).where(Broadcast.inquiry_id == inquiry_id))
    event_detail = f'{{"broadcast": {broadcast_id}}}'
    assert (
        audit_count(bn_context, entity="inquiry", verb="send_links", actor="operator", detail=event_detail)
        == 1
    )

    # Sending again mails nobody twice.
    assert send_links(operator, inquiry_id) == 302
    settled(bn_context, inquiry_id)
    assert len(smtp_server.messages) == 3

    # The token in the e-mail opens the resident's form, with the question and no login.
    public = operator.application.test_client()
    page = public.get(f"/inquiry/{tokens['anna@example.nl']}")
    assert page.status_code == 200
    assert "Heeft u vannacht" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_a_refused_address_is_not_retried_and_a_greylisted_one_is_then_sent_with_a_fresh_token(
    client_for: ClientFor, neighbours: Neighbours, smtp_server: SmtpServer, bn_context: Context
) -> None:
    smtp_server.refuse("bob@example.nl", "451 4.7.1 Greylisted, try again later")
    smtp_server.refuse("carla@example.nl", "550 5.1.1 No such mailbox")
    operator = client_for("operator")
    _status, inquiry_id = create_inquiry(operator)
    assert send_links(operator, inquiry_id) == 302
    settled(bn_context, inquiry_id)
    html = operator.get(f"/inquiries/{inquiry_id}").get_data(as_text=True)
    assert '<dd id="links-sent">1</dd>' in html
    assert '<dd id="links-pending">1</dd>' in html
    assert '<dd id="links-failed">1</dd>' in html
    assert [m.rcpt_tos for m in smtp_server.messages] == [("anna@example.nl",)]
    # The worker tried the greylisted address again (every attempt allowed), the refused one once.
    assert smtp_server.rcpt_attempts.count("bob@example.nl") == bn_context.settings.broadcast.max_attempts
    assert smtp_server.rcpt_attempts.count("carla@example.nl") == 1
    with session_scope(bn_context.sessions) as session:
        rows = session.execute(
            select(Participant.email, InquiryLink.delivery, InquiryLink.last_error, InquiryLink.token_hash)
            .join(Participant, Participant.id == InquiryLink.participant_id)
            .where(InquiryLink.inquiry_id == inquiry_id)
        ).all()
    state = {email: (delivery, error) for email, delivery, error, _hash in rows}
    old_hash = {email: token_hash for email, *_rest, token_hash in rows}["bob@example.nl"]
    assert state["anna@example.nl"] == ("sent", None)
    assert state["bob@example.nl"][0] == "pending" and "451" in str(state["bob@example.nl"][1])
    assert state["carla@example.nl"][0] == "failed" and "550" in str(state["carla@example.nl"][1])

    smtp_server.accept("bob@example.nl")
    assert send_links(operator, inquiry_id) == 302
    mails = smtp_server.wait_for(2, timeout=20)
    settled(bn_context, inquiry_id)
    assert [m.rcpt_tos for m in mails[1:]] == [("bob@example.nl",)]
    assert smtp_server.rcpt_attempts.count("carla@example.nl") == 1
    token = tokens_by_address(smtp_server)["bob@example.nl"]
    assert hash_token(token) != old_hash
    assert operator.application.test_client().get(f"/inquiry/{token}").status_code == 200


def test_a_closed_inquiry_sends_no_links(
    client_for: ClientFor, neighbours: Neighbours, smtp_server: SmtpServer, bn_context: Context
) -> None:
    operator = client_for("operator")
    _status, inquiry_id = create_inquiry(operator)
    with session_scope(bn_context.sessions) as session:
        session.execute(
            update(Inquiry)
            .where(Inquiry.id == inquiry_id)
            .values(closes_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    response = operator.post(
        f"/inquiries/{inquiry_id}/send",
        data={"csrf_token": csrf_token(operator, f"/inquiries/{inquiry_id}")},
        follow_redirects=True,
    )
    assert "the inquiry is closed" in response.get_data(as_text=True)
    assert count_rows(bn_context, InquiryLink) == 0
    assert smtp_server.messages == []


def test_sending_links_without_the_csrf_token_is_refused(
    client_for: ClientFor, neighbours: Neighbours, smtp_server: SmtpServer, bn_context: Context
) -> None:
    operator = client_for("operator")
    _status, inquiry_id = create_inquiry(operator)
    assert operator.post(f"/inquiries/{inquiry_id}/send", data={}).status_code == 400
    assert operator.post(f"/inquiries/{inquiry_id}/send", data={"csrf_token": "forged"}).status_code == 400
    assert count_rows(bn_context, InquiryLink) == 0
    assert smtp_server.messages == []


# The public form ---------------------------------------------------------------------------------------


def test_one_statement_per_link_audited_as_the_link(
    app_client: FlaskClient, sent_inquiry: tuple[int, dict[str, str]], bn_context: Context
) -> None:
    inquiry_id, tokens = sent_inquiry
    token = tokens["anna@example.nl"]
    status, html = submit(app_client, token, "Ik zag een man met een rode tas wegrennen.")
    assert status == 200 and "Thank you" in html
    with session_scope(bn_context.sessions) as session:
        statement = session.scalars(select(Statement)).one()
        assert (statement.inquiry_id, statement.text) == (
            inquiry_id,
            "Ik zag een man met een rode tas wegrennen.",
        )
        link = session.get(InquiryLink, statement.link_id)
        assert link is not None and link.token_hash == hash_token(token)
        event = session.scalars(select(AuditEvent).where(AuditEvent.verb == "statement")).one()
        assert event.actor == f"inquiry-link:{link.id}"
        assert event.source == "web 127.0.0.1"
        assert "anna" not in f"{event.actor} {event.detail} {event.source}"

    # The same link a second time: a clear 410 and still exactly one statement.
    status, html = submit(app_client, token, "Nog iets.")
    assert status == 410
    assert "A statement was already given through this link." in html
    assert app_client.get(f"/inquiry/{token}").status_code == 410
    assert count_rows(bn_context, Statement) == 1

    # Another resident's link still works.
    assert submit(app_client, tokens["bob@example.nl"], "Nothing seen, sorry.")[0] == 200
    assert count_rows(bn_context, Statement) == 2


@pytest.fixture
def app_client(client_for: ClientFor) -> FlaskClient:
    """A resident's browser: not logged in."""
    return client_for(None)


def test_an_expired_link_is_refused_clearly_and_stores_nothing(
    app_client: FlaskClient, sent_inquiry: tuple[int, dict[str, str]], bn_context: Context
) -> None:
    inquiry_id, tokens = sent_inquiry
    past = datetime.now(UTC) - timedelta(minutes=5)
    with session_scope(bn_context.sessions) as session:
        session.execute(update(Inquiry).where(Inquiry.id == inquiry_id).values(closes_at=past))
        session.execute(
            update(InquiryLink).where(InquiryLink.inquiry_id == inquiry_id).values(expires_at=past)
        )
    audits_before = audit_count(bn_context)
    page = app_client.get(f"/inquiry/{tokens['anna@example.nl']}")
    assert page.status_code == 410
    assert "This inquiry has closed" in page.get_data(as_text=True)
    status, _html = submit(app_client, tokens["anna@example.nl"], "Te laat.")
    assert status == 410
    assert count_rows(bn_context, Statement) == 0
    assert audit_count(bn_context) == audits_before


@pytest.mark.parametrize("token", ["x" * 43, "short", "a" * 40 + "!"])
def test_an_unknown_link_is_a_clear_404(app_client: FlaskClient, token: str, bn_context: Context) -> None:
    page = app_client.get(f"/inquiry/{token}")
    assert page.status_code == 404
    assert "This link is not valid." in page.get_data(as_text=True)
    assert submit(app_client, token, "Hallo")[0] == 404
    assert count_rows(bn_context, Statement) == 0


@pytest.mark.parametrize(
    ("photo", "status", "message"),
    [
        ((b"%PDF-1.4 not an image at all", "scan.jpg"), 400, "not a readable image"),
        ((png_bytes(8), "tiny.png"), 400, "too small"),
        ((b"\xff" * (MAX_PHOTO_BYTES + 512 * 1024), "huge.jpg"), 413, "larger than 8 MB"),
    ],
)
def test_a_bad_photo_is_refused_clearly_and_stores_nothing(
    photo: tuple[bytes, str],
    status: int,
    message: str,
    app_client: FlaskClient,
    sent_inquiry: tuple[int, dict[str, str]],
    bn_context: Context,
    bn_settings: Settings,
) -> None:
    _inquiry_id, tokens = sent_inquiry
    got, html = submit(app_client, tokens["anna@example.nl"], "Zie foto.", photo)
    assert got == status
    assert message in html
    assert count_rows(bn_context, Statement) == 0
    assert not (photos_dir(bn_settings) / "inquiries").exists() or not any(
        (photos_dir(bn_settings) / "inquiries").rglob("*.*")
    )
    # The link is still good for a proper statement afterwards.
    assert submit(app_client, tokens["anna@example.nl"], "Zonder foto dan.")[0] == 200


def test_a_photo_is_kept_and_shown_only_with_need_to_know(
    app_client: FlaskClient,
    client_for: ClientFor,
    sent_inquiry: tuple[int, dict[str, str]],
    bn_context: Context,
) -> None:
    inquiry_id, tokens = sent_inquiry
    image = png_bytes()
    assert submit(app_client, tokens["carla@example.nl"], "Foto van de auto.", (image, "auto.png"))[0] == 200
    with session_scope(bn_context.sessions) as session:
        statement_id = session.scalars(select(Statement.id)).one()
    url = f"/inquiries/{inquiry_id}/statements/{statement_id}/photo"
    # The inquiry is linked to no action: national roles only (callback_api.access), audited.
    for role in ("admin", "operator"):
        client = client_for(role)
        detail = client.get(f"/inquiries/{inquiry_id}").get_data(as_text=True)
        assert "Foto van de auto." in detail and url in detail
        response = client.get(url)
        assert response.status_code == 200 and response.data == check_photo(image).data  # metadata-free
        assert audit_count(bn_context, verb="read", entity="statement", actor=role) == 1
        assert audit_count(bn_context, verb="read", entity="inquiry", actor=role) == 1
    for role in ("centralist", "viewer"):
        client = client_for(role)
        detail = client.get(f"/inquiries/{inquiry_id}").get_data(as_text=True)
        assert "Foto van de auto." not in detail and url not in detail
        assert client.get(url).status_code == 403
    anonymous = app_client.get(url)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert (
        client_for("viewer").get(f"/inquiries/{inquiry_id + 1}/statements/{statement_id}/photo").status_code
        == 404
    )


def test_a_forged_csrf_token_on_the_public_form_is_refused(
    app_client: FlaskClient, sent_inquiry: tuple[int, dict[str, str]], bn_context: Context
) -> None:
    _inquiry_id, tokens = sent_inquiry
    path = f"/inquiry/{tokens['anna@example.nl']}"
    assert app_client.post(path, data={"text": "Zonder token"}).status_code == 400
    assert app_client.post(path, data={"text": "Vals token", "csrf_token": "forged"}).status_code == 400
    # A token from another browser session is no good either.
    other = app_client.application.test_client()
    foreign = csrf_token(other, "/login")
    assert app_client.post(path, data={"text": "Geleend token", "csrf_token": foreign}).status_code == 400
    assert count_rows(bn_context, Statement) == 0
    assert app_client.get(path).status_code == 200


def test_an_empty_statement_is_refused(
    app_client: FlaskClient, sent_inquiry: tuple[int, dict[str, str]], bn_context: Context
) -> None:
    _inquiry_id, tokens = sent_inquiry
    assert submit(app_client, tokens["anna@example.nl"], "   ")[0] == 400
    assert submit(app_client, tokens["anna@example.nl"], "x" * 5001)[0] == 400
    assert count_rows(bn_context, Statement) == 0


# Follow-up -----------------------------------------------------------------------------------------------


def test_the_follow_up_reaches_everyone_who_got_a_link(
    client_for: ClientFor,
    sent_inquiry: tuple[int, dict[str, str]],
    smtp_server: SmtpServer,
    bn_context: Context,
    neighbours: Neighbours,
) -> None:
    inquiry_id, _tokens = sent_inquiry
    smtp_server.clear()
    operator = client_for("operator")
    token = csrf_token(operator, f"/inquiries/{inquiry_id}")
    update_text = "Dankzij uw tips is de verdachte aangehouden."
    response = operator.post(
        f"/inquiries/{inquiry_id}/follow-up", data={"csrf_token": token, "message": update_text}
    )
    assert response.status_code == 302
    mails = smtp_server.wait_for(3, timeout=20)
    settled(bn_context, inquiry_id)
    assert sorted(m.rcpt_tos[0] for m in mails) == sorted(neighbours.reached)
    assert all(update_text in m.body() for m in mails)
    assert len({m.message_id for m in mails}) == 3
    assert all(m.message_id.startswith("<delivery-") for m in mails)
    with session_scope(bn_context.sessions) as session:
        stored = session.scalars(select(InquiryUpdate)).one()
        assert (stored.message, stored.recipients, stored.failed, stored.created_by) == (
            update_text,
            3,
            0,
            "operator",
        )
    assert audit_count(bn_context, entity="inquiry", verb="follow_up", actor="operator") == 1
    html = operator.get(f"/inquiries/{inquiry_id}").get_data(as_text=True)
    assert update_text in html

    # An empty update is refused and sends nothing.
    smtp_server.clear()
    operator.post(f"/inquiries/{inquiry_id}/follow-up", data={"csrf_token": token, "message": " "})
    assert smtp_server.messages == []
    assert count_rows(bn_context, InquiryUpdate) == 1


def test_a_follow_up_before_any_link_went_out_is_refused(
    client_for: ClientFor, neighbours: Neighbours, smtp_server: SmtpServer, bn_context: Context
) -> None:
    operator = client_for("admin")
    _status, inquiry_id = create_inquiry(operator)
    token = csrf_token(operator, f"/inquiries/{inquiry_id}")
    response = operator.post(
        f"/inquiries/{inquiry_id}/follow-up",
        data={"csrf_token": token, "message": "Update"},
        follow_redirects=True,
    )
    assert "nobody has received a link" in response.get_data(as_text=True)
    assert count_rows(bn_context, InquiryUpdate) == 0
    assert smtp_server.messages == []


def test_the_pages_speak_dutch(client_for: ClientFor, sent_inquiry: tuple[int, dict[str, str]]) -> None:
    inquiry_id, tokens = sent_inquiry
    client = client_for("viewer")
    client.get("/inquiries", headers={"Accept-Language": "nl"})
    html = client.get(f"/inquiries/{inquiry_id}", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert "Verklaringen" in html and "Vraag aan de bewoners" in html
    public = client_for(None).get(f"/inquiry/{tokens['anna@example.nl']}", headers={"Accept-Language": "nl"})
    assert "Uw verklaring" in public.get_data(as_text=True)


# The e-mails' words ---------------------------------------------------------------------------------------


def test_the_inquiry_mails_come_from_templates_editable_in_the_settings(
    client_for: ClientFor, neighbours: Neighbours, smtp_server: SmtpServer, bn_context: Context
) -> None:
    operator = client_for("operator")
    grid = operator.get("/settings/templates").get_data(as_text=True)
    for kind in ("invitation", "follow_up"):
        for language in ("nl", "en"):
            assert f"/settings/templates/inquiry/{kind}/email/{language}" in grid
    assert operator.get("/settings/templates/inquiry/invitation/sms/nl").status_code == 404
    path = "/settings/templates/inquiry/invitation/email/nl"
    preview = operator.get(path).get_data(as_text=True)
    assert "Burgernet buurtonderzoek:" in preview and "/inquiry/voorbeeld-link" in preview
    token = csrf_token(operator, path)
    # An invitation without the resident's link is refused: nobody could answer it.
    refused = operator.post(
        path, data={"csrf_token": token, "subject": "Vraag", "body": "{question}", "do": "save"}
    )
    assert refused.status_code == 400 and "needs {url}" in refused.get_data(as_text=True)
    body = "Vraag van de politie:\n{question}\n\nUw link: {url}"
    saved = operator.post(
        path, data={"csrf_token": token, "subject": "Buurtonderzoek {title}", "body": body, "do": "save"}
    )
    assert saved.status_code == 302

    _status, inquiry_id = create_inquiry(operator)
    assert send_links(operator, inquiry_id) == 302
    mails = {m.rcpt_tos[0]: m for m in smtp_server.wait_for(3, timeout=20)}
    dutch, english = mails["anna@example.nl"], mails["bob@example.nl"]
    token_nl = tokens_by_address(smtp_server)["anna@example.nl"]
    assert dutch.subject == "Buurtonderzoek Inbraak Oudegracht"
    assert dutch.body().strip() == (
        "Vraag van de politie:\n"
        "Heeft u vannacht tussen 02:00 en 04:00 iets gezien bij de Oudegracht?\n\n"
        f"Uw link: http://panel.test/inquiry/{token_nl}"
    )
    # The English default is today's text, word for word.
    with session_scope(bn_context.sessions) as session:
        closes = session.scalars(select(Inquiry.closes_at).where(Inquiry.id == inquiry_id)).one()
    token_en = tokens_by_address(smtp_server)["bob@example.nl"]
    assert english.subject == "Burgernet neighbourhood inquiry: Inbraak Oudegracht"
    assert english.body().strip() == (
        "Dear participant,\n\n"
        "The police ask for your help with a neighbourhood inquiry near you: Inbraak Oudegracht\n\n"
        "Heeft u vannacht tussen 02:00 en 04:00 iets gezien bij de Oudegracht?\n\n"
        "Did you see or hear anything, or do you have camera footage or a photo? Please tell us "
        f"through your personal link (valid until {local_time(closes)}):\n\n"
        f"http://panel.test/inquiry/{token_en}\n\n"
        "This link is for you only: please do not forward it. You can give one statement.\n"
        "In an emergency, call 112.\n\n"
        "You receive this message because you signed up for Burgernet neighbourhood inquiries."
    )

"""A neighbourhood inquiry's e-mails go through the broadcast pipeline, not the web request.

The panel's service only writes a broadcast (with its audit event); a real worker selects the
recipients, makes the personal links, and sends through the e-mail queue to a real SMTP server
(aiosmtpd), logging every delivery. The links in the e-mails open the public form; asking
again adds nobody twice; the follow-up reaches everyone whose link was sent. A delivery a dead
worker left in doubt is sent again as the very same e-mail, whose link works.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from broadcasting import store
from broadcasting.channels.base import Sender
from broadcasting.channels.registry import build_senders
from broadcasting.messages import compose_inquiry_mail
from broadcasting.queue import GROUP, QueueKeys
from broadcasting.recipients import Audience, count_inside, select_recipients
from burgernet.areas import AreaSpec, area_columns, stored_area
from burgernet.db import session_scope
from burgernet.domain import AreaKind, Channel
from burgernet.inquiries import FOLLOW_UP, INVITATION, hash_token
from burgernet.mailer import Mailer
from burgernet.models import AuditEvent, Broadcast, Delivery, InquiryLink, InquiryUpdate, Participant
from burgernet.settings import Settings
from callback_api.app import create_app
from callback_api.inquiry.services import INQUIRY_AREA, InquiryService
from composition.context import Context
from testbed.smtp import ReceivedMail, SmtpServer
from tests.broadcasting.conftest import CENTRE, Crowd, WorkerThread

LINK = re.compile(r"http://panel\.test/inquiry/([A-Za-z0-9_-]+)")
QUESTION = "Heeft u gisteravond rond 22:00 iemand over de schuttingen zien klimmen?"


@pytest.fixture
def bn_settings(bn_settings: Settings, smtp_server: SmtpServer) -> Settings:
    return bn_settings.model_copy(
        update={
            "smtp": smtp_server.settings(bn_settings.smtp),
            "web": bn_settings.web.model_copy(update={"public_base_url": "http://panel.test"}),
            "broadcast": bn_settings.broadcast.model_copy(
                update={"email_per_second": 200.0, "retry_base_seconds": 0.2, "claim_idle_seconds": 1.0}
            ),
        }
    )


def email_senders(settings: Settings) -> Callable[[], object]:
    async def build() -> dict[Channel, Sender]:
        return await build_senders(settings, [Channel.EMAIL], aioredis.Redis.from_url(settings.redis.url))

    return build


def neighbours(context: Context, count: int) -> dict[str, int]:
    """``count`` opted-in neighbours around CENTRE with e-mail, and five who must never be mailed."""
    now = datetime.now(UTC)
    people: dict[str, int] = {}
    with session_scope(context.sessions) as session:

        def add(n: int, email: str | None, *, lat: float = CENTRE[1], **fields: object) -> int:
            person = Participant(
                phone_e164=f"+3162{n:07d}",
                email=email,
                postcode="1012AB",
                lat=lat,
                lon=CENTRE[0] + n * 0.0001,
                language="en" if n % 2 else "nl",
                channel_voice=True,  # the alert channels do not matter to an inquiry
                channel_sms=False,
                channel_email=False,
                opted_out=bool(fields.get("opted_out", False)),
                opted_out_at=now if fields.pop("opted_out", False) else None,
                inquiry_opt_in=bool(fields.pop("inquiry_opt_in", True)),
                created_at=now,
            )
            session.add(person)
            session.flush()
            return person.id

        for n in range(count):
            people[f"n{n}@example.nl"] = add(n, f"n{n}@example.nl")
        add(100, "no-opt-in@example.nl", inquiry_opt_in=False)
        add(101, "opted-out@example.nl", opted_out=True)
        add(102, "far@example.nl", lat=CENTRE[1] + 0.2)
        add(103, None)
        add(104, "")
    return people


def inquiries(context: Context) -> InquiryService:
    return InquiryService(context, context.settings, context.broadcasts)


def new_inquiry(context: Context) -> int:
    return inquiries(context).create(
        title="Inbraken Jordaan",
        question=QUESTION,
        area=AreaSpec(AreaKind.CIRCLE, centre=CENTRE, radius_m=1500),
        closes_at=datetime.now(UTC) + timedelta(days=3),
        actor="operator",
        source="test",
    )


def broadcasts_of(context: Context, inquiry_id: int, kind: str) -> list[int]:
    with session_scope(context.sessions) as session:
        return list(
            session.scalars(
                select(Broadcast.id)
                .where(Broadcast.inquiry_id == inquiry_id, Broadcast.kind == kind)
                .order_by(Broadcast.id)
            )
        )


def tokens(mails: list[ReceivedMail]) -> dict[str, str]:
    found = {}
    for mail in mails:
        match = LINK.search(mail.body())
        assert match, mail.body()
        found[mail.rcpt_tos[0]] = match.group(1)
    return found


def public_client(context: Context) -> FlaskClient:
    return create_app(context.settings, context=context, config={"TESTING": True}).test_client()


def links(context: Context, inquiry_id: int) -> dict[int, tuple[str, str]]:
    with session_scope(context.sessions) as session:
        rows = session.execute(
            select(InquiryLink.participant_id, InquiryLink.delivery, InquiryLink.token_hash).where(
                InquiryLink.inquiry_id == inquiry_id
            )
        )
        return {pid: (delivery, token_hash) for pid, delivery, token_hash in rows}


def test_inquiry_mail_goes_through_the_worker(
    crowd: Crowd, bn_context: Context, smtp_server: SmtpServer, start_worker: Callable[..., WorkerThread]
) -> None:
    people = neighbours(bn_context, 6)
    inquiry_id = new_inquiry(bn_context)
    service = inquiries(bn_context)
    assert service.count_recipients_of(inquiry_id) == 6  # the panel's preview: the workers' selection

    # The request only asks: a pending broadcast with its audit event, no mail, no link yet.
    broadcast_id = service.send_links(inquiry_id, actor="operator", source="test")
    time.sleep(0.5)
    assert smtp_server.messages == []
    with session_scope(bn_context.sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        assert (broadcast.kind, broadcast.inquiry_id, broadcast.action_id) == (INVITATION, inquiry_id, None)
        assert (broadcast.status, broadcast.priority) == ("pending", 2)
        audit = session.scalars(
            select(AuditEvent).where(AuditEvent.entity == "inquiry", AuditEvent.verb == "send_links")
        ).one()
        assert audit.detail == f'{{"broadcast": {broadcast_id}}}'
        assert session.scalar(select(func.count()).select_from(InquiryLink)) == 0

    # A worker sends one e-mail per eligible neighbour, each with a link of their own.
    start_worker(email_senders(bn_context.settings))
    assert crowd.wait_done(broadcast_id) == {"sent": 6}
    mails = smtp_server.wait_for(6)
    assert sorted(m.rcpt_tos[0] for m in mails) == sorted(people)
    assert all(QUESTION in m.body() for m in mails)
    assert {m.subject for m in mails} == {
        "Burgernet buurtonderzoek: Inbraken Jordaan",
        "Burgernet neighbourhood inquiry: Inbraken Jordaan",
    }
    sent_tokens = tokens(mails)
    assert len(set(sent_tokens.values())) == 6
    public = public_client(bn_context)
    for token in sent_tokens.values():
        page = public.get(f"/inquiry/{token}")
        assert page.status_code == 200 and QUESTION in page.get_data(as_text=True)

    # Every delivery is logged like an alert's; the links follow their e-mails.
    with session_scope(bn_context.sessions) as session:
        deliveries = session.scalars(select(Delivery).where(Delivery.broadcast_id == broadcast_id)).all()
    assert {(d.channel, d.status, d.attempts) for d in deliveries} == {("email", "sent", 1)}
    assert sorted(d.participant_id or 0 for d in deliveries) == sorted(people.values())
    assert {d.provider_ref for d in deliveries} == {m.message_id for m in mails}
    status = bn_context.broadcasts.status(broadcast_id)
    assert status is not None
    progress = status.as_dict()
    assert (progress["status"], progress["total"], progress["handled"]) == ("done", 6, 6)
    stored = links(bn_context, inquiry_id)
    assert stored == {people[address]: ("sent", hash_token(token)) for address, token in sent_tokens.items()}

    # Asking again adds nothing: no second link, no second e-mail, the first links still work.
    again = service.send_links(inquiry_id, actor="operator", source="test")
    assert crowd.wait_done(again) == {}
    assert len(smtp_server.messages) == 6
    assert links(bn_context, inquiry_id) == stored

    # The follow-up reaches everyone whose link was sent.
    update_id = service.send_follow_up(
        inquiry_id, "De verdachte is aangehouden.", actor="operator", source="test"
    )
    (follow_up_id,) = broadcasts_of(bn_context, inquiry_id, FOLLOW_UP)
    assert crowd.wait_done(follow_up_id) == {"sent": 6}
    updates = [m for m in smtp_server.wait_for(12) if "De verdachte is aangehouden." in m.body()]
    assert sorted(m.rcpt_tos[0] for m in updates) == sorted(people)
    with session_scope(bn_context.sessions) as session:
        stored_update = session.get(InquiryUpdate, update_id)
        assert stored_update is not None
        assert (stored_update.recipients, stored_update.failed) == (6, 0)
    assert public.get(f"/inquiry/{sent_tokens['n0@example.nl']}").status_code == 200


def test_an_invitation_left_in_doubt_is_sent_again_as_the_same_mail_with_a_working_link(
    crowd: Crowd,
    bn_context: Context,
    bn_settings: Settings,
    smtp_server: SmtpServer,
    start_worker: Callable[..., WorkerThread],
) -> None:
    people = neighbours(bn_context, 1)
    inquiry_id = new_inquiry(bn_context)
    broadcast_id = inquiries(bn_context).send_links(inquiry_id, actor="operator", source="test")

    # A worker that only fans out: the delivery waits on the e-mail stream.
    start_worker(lambda: {})
    crowd.wait_until(lambda: bool(crowd.statuses(broadcast_id)), what="the fan-out")
    with session_scope(bn_context.sessions) as session:
        (delivery_id,) = session.scalars(select(Delivery.id).where(Delivery.broadcast_id == broadcast_id))

    # A worker takes it, claims it, sends the e-mail and dies before it can record anything.
    keys = QueueKeys(bn_settings.redis.key_prefix)
    client = redis.Redis.from_url(bn_settings.redis.url)
    stream = keys.stream(Channel.EMAIL, 2)
    # The rows come before the stream entry (the fan-out writes, then queues): wait for the entry.
    entries: list[tuple[Any, int]] = []
    deadline = time.monotonic() + 20
    while not entries and time.monotonic() < deadline:
        taken: Any = client.xreadgroup(GROUP, "dead-worker", {stream: ">"}, count=10, block=200)
        entries = [
            (entry_id, int(fields[b"d"])) for _stream, found in taken or () for entry_id, fields in found
        ]
    assert {delivery for _entry_id, delivery in entries} == {delivery_id}
    # The fan-out may have been asked twice (the nudge, and the worker's start-up sweep), and
    # queued the delivery twice: the dead worker had handled any second entry already.
    for entry_id, _delivery in entries[1:]:
        client.xack(stream, GROUP, entry_id)
        client.xdel(stream, entry_id)
    client.close()
    mailer = Mailer(bn_settings.smtp)
    with session_scope(bn_context.sessions) as session:
        claim, job = store.claim(session, delivery_id)
        assert claim is store.Claim.CLAIMED and job is not None
        message = compose_inquiry_mail(session, job, bn_settings)
        assert message is not None
    message_id = f"<delivery-{delivery_id}@{mailer.domain}>"  # the e-mail sender's, per delivery
    mailer.send(str(job.email), message.subject, message.body, message_id=message_id)
    with session_scope(bn_context.sessions) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(sending_at=datetime.now(UTC) - timedelta(seconds=30))
        )

    # Another worker takes the entry over, finds the delivery in doubt and sends it again:
    # the same Message-ID (a mail system that has the first copy drops this one) and the same link.
    start_worker(email_senders(bn_settings))
    assert crowd.wait_done(broadcast_id, timeout=30) == {"sent": 1}
    with session_scope(bn_context.sessions) as session:
        # Still the dead worker's attempt: reconciled and sent again, not claimed anew.
        assert session.scalar(select(Delivery.attempts).where(Delivery.id == delivery_id)) == 1
    first, second = smtp_server.wait_for(2)
    assert first.rcpt_tos == second.rcpt_tos == ("n0@example.nl",)
    assert first.message_id == second.message_id == message_id
    assert tokens([first]) == tokens([second])
    token = tokens([second])["n0@example.nl"]
    assert links(bn_context, inquiry_id) == {people["n0@example.nl"]: ("sent", hash_token(token))}
    assert public_client(bn_context).get(f"/inquiry/{token}").status_code == 200


@pytest.mark.parametrize(
    "area",
    [
        AreaSpec(AreaKind.CIRCLE, centre=CENTRE, radius_m=700),
        AreaSpec(
            AreaKind.POLYGON,
            geojson='{"type": "Polygon", "coordinates": [[[4.895, 52.365], [4.91, 52.365], [4.91, 52.372], '
            "[4.895, 52.365]]]}",
        ),
        AreaSpec(AreaKind.POSTCODES, postcodes=("1012AB", "1013")),
    ],
)
def test_the_inquiry_audience_is_the_alert_selection_of_opted_in_people_with_e_mail(
    bn_context: Context, area: AreaSpec
) -> None:
    rng = np.random.default_rng(11)
    now = datetime.now(UTC)
    wanted = set()
    with session_scope(bn_context.sessions) as session:
        for n in range(400):
            opted_out, opt_in = bool(rng.random() < 0.1), bool(rng.random() < 0.6)
            email = [None, "", f"p{n}@example.nl", f"p{n}@example.nl"][int(rng.integers(4))]
            person = Participant(
                phone_e164=f"+3163{n:07d}",
                email=email,
                postcode=["1012AB", "1012AC", "1013XY", "1014AA"][n % 4],
                lat=CENTRE[1] + float(rng.uniform(-0.012, 0.012)),
                lon=CENTRE[0] + float(rng.uniform(-0.02, 0.02)),
                channel_voice=True,  # so that the alert selection shows everyone inside
                channel_sms=False,
                channel_email=False,
                inquiry_opt_in=opt_in,
                opted_out=opted_out,
                opted_out_at=now if opted_out else None,
                created_at=now,
            )
            session.add(person)
            session.flush()
            if opt_in and email:
                wanted.add(person.id)
    routing_area = stored_area(area_columns(area, INQUIRY_AREA))
    with session_scope(bn_context.sessions) as session:
        everyone_inside = set(select_recipients(session, routing_area).by_channel[Channel.VOICE].tolist())
        asked = select_recipients(session, routing_area, Audience.INQUIRY)
        assert set(asked.by_channel) == {Channel.EMAIL}
        assert asked.by_channel[Channel.EMAIL].tolist() == sorted(everyone_inside & wanted)
        assert count_inside(session, routing_area, Audience.INQUIRY) == len(everyone_inside & wanted)
    assert 0 < len(everyone_inside & wanted) < len(everyone_inside)

"""Sightings (burgernet/sightings.py) on the real database and Redis: recorded, audited, published
live, refused with a clear reason, and a participant's inquiry photo attached."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from burgernet.actions import AreaSpec
from burgernet.calls import CallLog
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import AuditEvent, Inquiry, InquiryLink, Participant, Statement
from burgernet.sightings import NewSighting, SightingActionNotStarted, SightingInvalid
from composition.context import Context

UTRECHT = (5.1214, 52.0907)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def _action(context: Context, *, start: bool = True) -> int:
    view = context.actions.create(
        action_type="missing_child",
        title="Vermist meisje",
        region_code="MN",
        area=AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000),
        team=["c-mn-1"],
        actor="test",
        source="test",
    )
    if start:
        context.actions.start(view.id, actor="test", source="test")
    return view.id


def _seen(**changes: object) -> NewSighting:
    fields: dict[str, object] = {
        "seen_at": datetime.now(AMSTERDAM) - timedelta(minutes=5),
        "lat": 52.0931,
        "lon": 5.1180,
        "reliability": "probable",
        "description": "  Meisje met rode jas, liep richting station  ",
        "direction": "ne",
    }
    fields.update(changes)
    return NewSighting(**fields)  # type: ignore[arg-type]


def test_a_sighting_is_stored_audited_and_published_live(bn_context: Context) -> None:
    action_id = _action(bn_context)
    log = CallLog(bn_context.sessions)
    log.open_call("7.1", caller_number="+31612345678", action_id=action_id, region_code="MN", reason="test")
    call_id = log.get("7.1").id  # type: ignore[union-attr]
    feed = bn_context.live.client.pubsub(ignore_subscribe_messages=True)
    feed.subscribe(bn_context.live.keys.events)
    feed.get_message(timeout=1)
    view = bn_context.sightings.record(action_id, _seen(call_id=call_id), actor="anna", source="test")
    assert view.seen_at.tzinfo is not None and view.seen_at.utcoffset() == timedelta(0)
    assert (view.direction, view.description, view.call_id) == (
        "NE",
        "Meisje met rode jas, liep richting station",
        call_id,
    )
    message = None
    for _ in range(5):
        message = feed.get_message(timeout=1)
        if message and json.loads(message["data"]).get("type") == "sighting_added":
            break
    feed.close()
    assert message is not None
    assert json.loads(message["data"]) == {
        "type": "sighting_added",
        "action_id": action_id,
        "sighting_id": view.id,
    }
    assert [s.id for s in bn_context.sightings.for_action(action_id)] == [view.id]
    with session_scope(bn_context.sessions) as session:
        audit = session.scalar(select(AuditEvent).where(AuditEvent.entity == "sighting"))
        assert audit is not None and audit.actor == "anna" and audit.verb == "record"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lat": 48.85, "lon": 2.35}, "outside the Netherlands"),
        ({"seen_at": datetime.now(UTC) + timedelta(hours=1)}, "in the future"),
        ({"seen_at": datetime(2026, 12, 2, 9, 0)}, "time zone"),
        ({"reliability": "certain"}, "reliability must be one of"),
        ({"direction": "up"}, "direction must be one of"),
        ({"description": "x" * 2001}, "longer than 2000"),
    ],
)
def test_bad_input_is_refused_with_the_reason(
    bn_context: Context, changes: dict[str, object], message: str
) -> None:
    action_id = _action(bn_context)
    with pytest.raises(SightingInvalid, match=message):
        bn_context.sightings.record(action_id, _seen(**changes), actor="anna", source="test")
    assert bn_context.sightings.for_action(action_id) == []


def test_no_sightings_before_the_action_starts_nor_from_another_actions_call(bn_context: Context) -> None:
    draft = _action(bn_context, start=False)
    with pytest.raises(SightingActionNotStarted):
        bn_context.sightings.record(draft, _seen(), actor="anna", source="test")
    action_id, other = _action(bn_context), _action(bn_context)
    log = CallLog(bn_context.sessions)
    log.open_call("7.2", caller_number="+31612345678", action_id=other, region_code="MN", reason="test")
    call_id = log.get("7.2").id  # type: ignore[union-attr]
    with pytest.raises(SightingInvalid, match="another action"):
        bn_context.sightings.record(action_id, _seen(call_id=call_id), actor="anna", source="test")


def test_a_participants_inquiry_photo_can_be_attached(bn_context: Context) -> None:
    action_id = _action(bn_context)
    now = datetime.now(UTC)
    with session_scope(bn_context.sessions) as session:
        participant = Participant(
            phone_e164="+31612340077",
            postcode="3511AB",
            lat=UTRECHT[1],
            lon=UTRECHT[0],
            language="nl",
            channel_voice=True,
            channel_sms=False,
            channel_email=True,
            inquiry_opt_in=True,
            opted_out=False,
            created_at=now,
        )
        inquiry = Inquiry(
            action_id=action_id,
            title="Wie zag het meisje?",
            question="Zag u iets?",
            area_kind="circle",
            center_lat=UTRECHT[1],
            center_lon=UTRECHT[0],
            radius_m=1000,
            created_at=now,
            closes_at=now + timedelta(days=1),
        )
        session.add_all([participant, inquiry])
        session.flush()
        link = InquiryLink(
            inquiry_id=inquiry.id, participant_id=participant.id, token_hash="a" * 64, expires_at=now
        )
        session.add(link)
        session.flush()
        with_photo = Statement(
            inquiry_id=inquiry.id, link_id=link.id, text="foto", photo_path="photos/1.jpg", created_at=now
        )
        session.add(with_photo)
        session.flush()
        statement_id = with_photo.id
    [choice] = bn_context.sightings.photo_choices(action_id)
    assert choice.statement_id == statement_id and choice.inquiry_title == "Wie zag het meisje?"
    view = bn_context.sightings.record(
        action_id, _seen(statement_id=statement_id), actor="anna", source="test"
    )
    assert view.has_photo and view.statement_id == statement_id
    other = _action(bn_context)
    with pytest.raises(SightingInvalid, match="another action"):
        bn_context.sightings.record(other, _seen(statement_id=statement_id), actor="anna", source="test")

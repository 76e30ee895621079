"""Personal data: no EXIF out, public feeds from an allow-list, erasure reaches the call
log and the tips, a per-person export (panel and CLI), audited reads. Against the real app, the
real SQLite database and the real Redis of the panel fixtures."""

from __future__ import annotations

import io
import json
import re
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.inquiries import hash_token
from burgernet.models import (
    Action,
    AuditEvent,
    Broadcast,
    Call,
    Delivery,
    Inquiry,
    InquiryLink,
    Statement,
    Tip,
)
from burgernet.settings import Settings
from callback_api.photos import photos_dir
from composition.cli import main
from composition.context import Context
from testbed.approvals import start_approved
from tests.panel.conftest import UTRECHT, World, csrf_token
from tests.panel.conftest import app as app
from tests.panel.conftest import client_for as client_for
from tests.panel.conftest import world as world

ClientFor = Callable[[str | None], FlaskClient]
PHONE = "+31612345678"  # the world's participant
NUMBER_SPELLINGS = ("+31612345678", "31612345678", "0031612345678", "0612345678")
GPS_IFD = 0x8825
ORIENTATION = 0x0112
INTERNAL = "INTERN: moeder aangehouden, team c-mn-1, melder 0612345678"
PUBLIC_RESULT = "Sanne is veilig terug. Dank voor het uitkijken."


def jpeg_with_gps(size: tuple[int, int] = (120, 160)) -> bytes:
    """A JPEG whose EXIF holds a GPS position, a camera make and 'rotate 90° to stand upright'."""
    exif = Image.Exif()
    exif[0x010F] = "Burgernet test camera"
    exif[ORIENTATION] = 6
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (52.0, 5.0, 26.0), 3: "E", 4: (5.0, 7.0, 17.0)})
    buffer = io.BytesIO()
    Image.new("RGB", size, (250, 200, 0)).save(buffer, format="JPEG", exif=exif)
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as image:  # the test's own premise: the metadata is really in
        assert image.getexif().get_ifd(GPS_IFD)[2] == (52.0, 5.0, 26.0)
    return data


def assert_no_metadata(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert not image.getexif(), dict(image.getexif())
        assert "exif" not in image.info and "icc_profile" not in image.info and "xmp" not in image.info
        size = image.size
    assert b"Exif\x00\x00" not in data and b"Burgernet test camera" not in data
    return size


# --- 1. EXIF and GPS ------------------------------------------------------------------------------
def test_an_action_photo_with_gps_is_stored_and_published_without_any_exif(
    world: World, bn_context: Context, client_for: ClientFor, app: Flask
) -> None:
    client = client_for("operator")
    form = {
        "csrf_token": csrf_token(client, "/actions/new"),
        "action_type": "amber_alert",
        "title": "AMBER Alert: Sanne (6)",
        "description": "Roze jas",
        "region": "MN",
        "area_kind": "circle",
        "lon": str(UTRECHT[0]),
        "lat": str(UTRECHT[1]),
        "radius_m": "2500",
        "team": "c-mn-1",
        "photo": (io.BytesIO(jpeg_with_gps()), "sanne.jpg"),
    }
    response = client.post("/actions/new", data=form, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)
    action_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with session_scope(bn_context.sessions) as session:
        stored = session.scalar(select(Action.photo_path).where(Action.id == action_id))
    assert stored is not None
    # Stored without metadata, and upright: the orientation was applied to the pixels.
    assert assert_no_metadata(Path(stored).read_bytes()) == (160, 120)
    assert client.get(f"/actions/{action_id}/photo").data == Path(stored).read_bytes()

    start_approved(bn_context, action_id, requester="test")
    public = app.test_client()
    page = public.get(f"/amber/{action_id}").get_data(as_text=True)
    src = re.search(r'<img src="([^"]+)"', page)
    assert src is not None
    cap = public.get(f"/feeds/amber/{action_id}.cap.xml").get_data(as_text=True)
    image_in_feed = public.get("/feeds/amber.json").get_json()["items"][0]["image"]
    assert src.group(1) in cap and image_in_feed.endswith(src.group(1))
    served = public.get(src.group(1))
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert_no_metadata(served.data)


def test_a_photo_stored_before_cleaning_existed_is_cleaned_before_it_is_served(
    world: World, bn_context: Context, app: Flask
) -> None:
    view = bn_context.actions.create(
        action_type="amber_alert",
        title="AMBER Alert: Sanne (6)",
        region_code="MN",
        area=AreaSpec(AreaKind.NATIONAL),
        actor="test",
        source="test",
    )
    legacy = photos_dir(bn_context.settings) / f"{view.id}.jpg"
    legacy.parent.mkdir(parents=True, exist_ok=True)
    legacy.write_bytes(jpeg_with_gps())  # as the panel stored photos before EXIF stripping
    with session_scope(bn_context.sessions) as session:
        action = session.get(Action, view.id)
        assert action is not None
        action.photo_path = str(legacy)
    start_approved(bn_context, view.id, requester="test")
    served = app.test_client().get(f"/feeds/amber/{view.id}/photo")
    assert served.status_code == 200
    assert assert_no_metadata(served.data) == (160, 120)
    assert_no_metadata(legacy.read_bytes())
    assert not list(legacy.parent.glob("*.part"))


def _inquiry_link(context: Context, participant_id: int, token: str) -> int:
    now = datetime.now(UTC)
    with session_scope(context.sessions) as session:
        inquiry = Inquiry(
            title="Inbraak Oudegracht",
            question="Heeft u iets gezien?",
            area_kind="circle",
            center_lon=UTRECHT[0],
            center_lat=UTRECHT[1],
            radius_m=500,
            created_at=now,
            closes_at=now + timedelta(days=3),
            created_by="test",
        )
        session.add(inquiry)
        session.flush()
        session.add(
            InquiryLink(
                inquiry_id=inquiry.id,
                participant_id=participant_id,
                token_hash=hash_token(token),
                expires_at=inquiry.closes_at,
                delivery="sent",
                sent_at=now,
            )
        )
        return inquiry.id


def _give_statement(app: Flask, token: str, photo: bytes) -> None:
    resident = app.test_client()
    response = resident.post(
        f"/inquiry/{token}",
        data={
            "csrf_token": csrf_token(resident, "/login"),
            "text": "Ik zag een auto met Duits kenteken.",
            "photo": (io.BytesIO(photo), "auto.jpg"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_statement_photo_from_the_public_form_is_stored_without_any_exif(
    world: World, bn_context: Context, client_for: ClientFor, app: Flask
) -> None:
    token = "t" * 43
    inquiry_id = _inquiry_link(bn_context, world.participant_id, token)
    _give_statement(app, token, jpeg_with_gps())
    with session_scope(bn_context.sessions) as session:
        statement_id, stored = session.execute(select(Statement.id, Statement.photo_path)).one()
    assert stored is not None
    assert assert_no_metadata(Path(stored).read_bytes()) == (160, 120)
    served = client_for("operator").get(f"/inquiries/{inquiry_id}/statements/{statement_id}/photo")
    assert served.status_code == 200
    assert_no_metadata(served.data)


# --- 2. Public feeds ------------------------------------------------------------------------------
def _closed_amber(context: Context, result_message: str) -> int:
    view = context.actions.create(
        action_type="amber_alert",
        title="AMBER Alert: Sanne (6)",
        region_code="MN",
        area=AreaSpec(AreaKind.NATIONAL),
        description="Roze jas",
        team=["c-mn-1"],
        actor="test",
        source="test",
    )
    start_approved(context, view.id, requester="test")
    context.actions.close(
        view.id, outcome=INTERNAL[:200], result_message=result_message, actor="test", source="test"
    )
    return view.id


def _every_public_document(client: FlaskClient, action_id: int) -> dict[str, str]:
    documents = {
        "cap latest": client.get("/feeds/amber.cap.xml"),
        "cap": client.get(f"/feeds/amber/{action_id}.cap.xml"),
        "atom": client.get("/feeds/amber.atom"),
        "json": client.get("/feeds/amber.json"),
        "/amber": client.get("/amber"),
        "/amber/<id>": client.get(f"/amber/{action_id}"),
    }
    for name, response in documents.items():
        assert response.status_code == 200, name
    return {name: response.get_data(as_text=True) for name, response in documents.items()}


@pytest.mark.parametrize("result_message", [PUBLIC_RESULT, ""])
def test_the_internal_outcome_appears_in_no_public_feed(
    world: World, bn_context: Context, app: Flask, result_message: str
) -> None:
    action_id = _closed_amber(bn_context, result_message)
    for name, text in _every_public_document(app.test_client(), action_id).items():
        assert "INTERN" not in text and "aangehouden" not in text and "0612345678" not in text, name
        assert "c-mn-1" not in text, name
        if result_message:
            assert PUBLIC_RESULT in text, name
    item = app.test_client().get("/feeds/amber.json").get_json()["items"][0]
    assert "outcome" not in item["_burgernet"]


# --- 3. Erasure ---------------------------------------------------------------------------------------
def _more_traces(context: Context, world: World) -> None:
    """The same person in other spellings: an AMI-logged call, a tip with a 00 number, a delivery."""
    now = datetime.now(UTC)
    with session_scope(context.sessions) as session:
        ami_call = Call(unique_id="1700000000.2", kind="inbound", caller_number="0612345678", started_at=now)
        session.add(ami_call)
        session.flush()
        session.add(
            Tip(
                call_id=ami_call.id,
                action_id=world.active_id,
                recording_path="/nonexistent.wav",
                callback_number="0031612345678",
                created_at=now,
            )
        )
        other = Call(unique_id="1700000000.3", kind="inbound", caller_number="+31687654321", started_at=now)
        session.add(other)
        broadcast = Broadcast(
            action_id=world.active_id, kind="alert", message="Vermist meisje", status="done", created_at=now
        )
        session.add(broadcast)
        session.flush()
        session.add(
            Delivery(
                broadcast_id=broadcast.id,
                participant_id=world.participant_id,
                channel="sms",
                status="delivered",
                attempts=1,
                provider_ref="SM123",
                last_error=f"first try refused for {PHONE}",
                updated_at=now,
            )
        )
        # The action's result, sent as a closing word to those who called about it: by number.
        result = Broadcast(
            action_id=world.active_id, kind="result", message="Meisje gevonden", status="done", created_at=now
        )
        session.add(result)
        session.flush()
        for number, reference in ((PHONE, "SM456"), ("+31687654321", "SM789")):
            session.add(
                Delivery(
                    broadcast_id=result.id,
                    caller_e164=number,
                    channel="sms",
                    status="delivered",
                    attempts=1,
                    provider_ref=reference,
                    updated_at=now,
                )
            )


def test_erasure_removes_the_number_from_the_call_log_and_the_tips(
    world: World, bn_context: Context, client_for: ClientFor, app: Flask
) -> None:
    _more_traces(bn_context, world)
    token = "s" * 43
    _inquiry_link(bn_context, world.participant_id, token)
    _give_statement(app, token, jpeg_with_gps())
    with session_scope(bn_context.sessions) as session:
        statement_photo = Path(session.scalars(select(Statement.photo_path)).one() or "")
    assert statement_photo.is_file()

    client = client_for("operator")
    response = client.post(
        f"/people/{world.participant_id}/erase", data={"csrf_token": csrf_token(client, "/")}
    )
    assert response.status_code == 200
    with session_scope(bn_context.sessions) as session:
        numbers = set(session.scalars(select(Call.caller_number)))
        call_backs = set(session.scalars(select(Tip.callback_number)))
        tips = session.scalar(select(Tip.id).where(Tip.id == world.tip_id))
        deliveries = list(session.scalars(select(Delivery.provider_ref)))
        statements = list(session.scalars(select(Statement.id)))
        links = list(session.scalars(select(InquiryLink.id)))
        audit = session.scalars(select(AuditEvent.detail).where(AuditEvent.verb == "erase")).one()
    assert numbers == {None, "+31687654321"}  # another caller's number is untouched
    assert call_backs == {None}
    assert tips == world.tip_id  # the tip stays as a police record, without the number
    assert deliveries == ["SM789"]  # another caller's closing word is untouched
    assert statements == [] and links == []
    assert not statement_photo.exists()
    assert audit is not None and json.loads(audit) == {
        "call_numbers_removed": 2,
        "calls_unlinked": 1,
        "deliveries_deleted": 2,
        "inquiry_links_deleted": 1,
        "statements_deleted": 1,
        "tip_numbers_removed": 2,
    }
    with session_scope(bn_context.sessions) as session:
        everything_audited = " ".join(d or "" for d in session.scalars(select(AuditEvent.detail)))
    for spelling in NUMBER_SPELLINGS:
        assert spelling not in everything_audited


# --- 4. The per-person export (GDPR art. 15) --------------------------------------------------------
def test_the_panel_exports_everything_about_one_person_as_an_audited_read(
    world: World, bn_context: Context, client_for: ClientFor, app: Flask
) -> None:
    _more_traces(bn_context, world)
    token = "u" * 43
    inquiry_id = _inquiry_link(bn_context, world.participant_id, token)
    _give_statement(app, token, jpeg_with_gps())
    operator = client_for("operator")
    operator.get("/people", query_string={"q": "06 1234 5678"})  # a search, itself in the export
    assert f"/people/{world.participant_id}/export.json" in operator.get(
        f"/people/{world.participant_id}"
    ).get_data(as_text=True)

    response = operator.get(f"/people/{world.participant_id}/export.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert "attachment" in response.headers["Content-Disposition"]
    document = response.get_json()
    assert document["profile"]["phone"] == PHONE and document["profile"]["postcode"] == "3511AB"
    assert document["channels"] == {"voice": True, "sms": True, "email": False}
    assert document["opt_out"] == {"opted_out": False, "since": None}
    assert [(d["provider_reference"], d["as_caller"]) for d in document["deliveries"]] == [
        ("SM123", False),
        ("SM456", True),
    ]
    assert document["night_alerts"] is False
    assert sorted(c["caller_number"] for c in document["calls"]) == ["+31612345678", "0612345678"]
    assert sorted(t["callback_number"] for t in document["tips"]) == ["+31612345678", "0031612345678"]
    assert [link["inquiry_id"] for link in document["inquiry_links"]] == [inquiry_id]
    assert [s["text"] for s in document["statements"]] == ["Ik zag een auto met Duits kenteken."]
    assert "token_hash" not in json.dumps(document) and hash_token(token) not in json.dumps(document)
    verbs = [(e["verb"], (e["detail"] or {}).get("what")) for e in document["audit_events"]]
    assert ("read", "search") in verbs  # who looked them up is part of what is stored about them

    with session_scope(bn_context.sessions) as session:
        reads = session.execute(
            select(AuditEvent.actor, AuditEvent.entity_id, AuditEvent.detail).where(
                AuditEvent.verb == "read", AuditEvent.entity == "participant"
            )
        ).all()
    assert [(actor, entity_id) for actor, entity_id, _ in reads] == [("operator", str(world.participant_id))]
    assert PHONE not in (reads[0][2] or "")

    for role in ("centralist", "viewer"):
        assert client_for(role).get(f"/people/{world.participant_id}/export.json").status_code == 403
    assert operator.get(f"/people/{world.participant_id + 1000}/export.json").status_code == 404


@pytest.fixture
def runner(bn_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("BURGERNET_DATA_DIR", str(bn_settings.data_dir))
    monkeypatch.setenv("BURGERNET_DATABASE__URL", bn_settings.database_url)
    monkeypatch.setenv("BURGERNET_REDIS__URL", bn_settings.redis.url)
    monkeypatch.setenv("BURGERNET_REDIS__KEY_PREFIX", bn_settings.redis.key_prefix)
    return CliRunner()


def test_the_cli_exports_one_person_to_a_private_file(
    world: World, bn_context: Context, runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "export.json"
    result = runner.invoke(main, ["participant", "export", "06-12345678", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["profile"]["id"] == world.participant_id
    assert [c["caller_number"] for c in document["calls"]] == [PHONE]

    by_id = runner.invoke(main, ["participant", "export", str(world.participant_id)])
    assert by_id.exit_code == 0 and json.loads(by_id.stdout)["profile"]["phone"] == PHONE
    with session_scope(bn_context.sessions) as session:
        actors = list(
            session.scalars(
                select(AuditEvent.actor).where(AuditEvent.verb == "read", AuditEvent.entity == "participant")
            )
        )
    assert len(actors) == 2 and all(actor.startswith("cli:") for actor in actors)

    unknown = runner.invoke(main, ["participant", "export", "0687654321"])
    assert unknown.exit_code != 0 and "no participant" in unknown.output


# --- 5. Searches are audited reads ------------------------------------------------------------------
def test_people_searches_are_audited_without_the_number_or_the_results(
    world: World, bn_context: Context, client_for: ClientFor
) -> None:
    client = client_for("admin")
    client.get("/people", query_string={"q": "06 1234 5678"})
    client.get("/people", query_string={"q": "3511"})
    with session_scope(bn_context.sessions) as session:
        details = [
            json.loads(detail or "{}")
            for detail in session.scalars(
                select(AuditEvent.detail)
                .where(AuditEvent.verb == "read", AuditEvent.actor == "admin")
                .order_by(AuditEvent.id)
            )
        ]
    assert [(d["what"], d["by"], d["found"]) for d in details] == [
        ("search", "phone", 1),
        ("search", "postcode", 1),
    ]
    assert details[1]["postcode"] == "3511" and len(details[0]["phone_ref"]) == 16
    assert not any(spelling in json.dumps(details) for spelling in NUMBER_SPELLINGS)
    assert "3511AB" not in json.dumps(details)  # the participant's own postcode is result data

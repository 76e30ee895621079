"""Participants in the panel: search, edit, opt-out, erase on request, import, export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from burgernet.db import session_scope
from burgernet.models import AuditEvent, Call, Participant
from composition.context import Context
from tests.panel.conftest import World, audit_count, csrf_token


def test_search_by_phone_in_any_notation_and_by_postcode(
    world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    for query in ("06 1234 5678", "+31612345678", "3511", "3511 ab"):
        page = client.get("/people", query_string={"q": query}).get_data(as_text=True)
        assert f"/people/{world.participant_id}" in page, query
    assert f"/people/{world.participant_id}" not in client.get("/people?q=9999").get_data(as_text=True)
    bad = client.get("/people?q=hello")
    assert bad.status_code == 400 and "neither a phone number nor a postcode" in bad.get_data(as_text=True)


def test_edit_moves_the_participant_and_is_audited(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    token = csrf_token(client, f"/people/{world.participant_id}")
    response = client.post(
        f"/people/{world.participant_id}",
        data={
            "csrf_token": token,
            "postcode": "3012 ab",
            "language": "en",
            "channel_sms": "y",
            "email": "",
            "house_number": "12",
        },
    )
    assert response.status_code == 302
    with session_scope(bn_context.sessions) as session:
        p = session.get(Participant, world.participant_id)
        assert p is not None
        assert (p.postcode, p.language, p.channel_voice, p.channel_sms, p.house_number) == (
            "3012AB",
            "en",
            False,
            True,
            "12",
        )
        assert 51.5 < p.lat < 52.1  # moved to PC4 3012 (Rotterdam)
        detail = session.scalar(select(AuditEvent.detail).where(AuditEvent.verb == "edit"))
    assert detail is not None and "+316" not in detail and "location" in detail
    bad = client.post(
        f"/people/{world.participant_id}",
        data={"csrf_token": token, "postcode": "3012", "language": "nl", "channel_email": "y"},
    )
    assert bad.status_code == 400 and "full postcode" in bad.get_data(as_text=True)


def test_opt_out_toggle(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("admin")
    token = csrf_token(client, "/")
    client.post(f"/people/{world.participant_id}/opt-out", data={"csrf_token": token, "opted_out": "1"})
    with session_scope(bn_context.sessions) as session:
        p = session.get(Participant, world.participant_id)
        assert p is not None and p.opted_out and p.opted_out_at is not None
    client.post(f"/people/{world.participant_id}/opt-out", data={"csrf_token": token, "opted_out": "0"})
    with session_scope(bn_context.sessions) as session:
        p = session.get(Participant, world.participant_id)
        assert p is not None and not p.opted_out
    assert audit_count(bn_context, verb="opt-out", actor="admin") == 1
    assert audit_count(bn_context, verb="opt-in", actor="admin") == 1


def test_erase_on_request_says_what_was_deleted(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    live = bn_context.live
    live.mark_alerted("+31612345678", world.active_id, 1.0)
    client = client_for("operator")
    token = csrf_token(client, "/")
    response = client.post(f"/people/{world.participant_id}/erase", data={"csrf_token": token})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "phone number" in page and "e-mail address" in page
    with session_scope(bn_context.sessions) as session:
        assert session.get(Participant, world.participant_id) is None
        call = session.scalar(select(Call))
        assert call is not None and call.participant_id is None  # the police record stays, unlinked
        detail = session.scalar(select(AuditEvent.detail).where(AuditEvent.verb == "erase"))
    assert detail is not None and "+316" not in detail and '"calls_unlinked": 1' in detail
    assert '"call_numbers_removed": 1' in detail and '"tip_numbers_removed": 1' in detail
    assert "+31612345678" not in page and "0612345678" not in page
    assert live.client.exists(live.keys.alerted("+31612345678")) == 0
    assert client.post(f"/people/{world.participant_id}/erase", data={"csrf_token": token}).status_code == 404


CSV_MIXED = (
    "phone,postcode,language\n"
    "06 2345 6789,3511 AB,nl\n"
    "not-a-phone,3511 AB,nl\n"
    "06 3456 7890,3511,en\n"
    "06 4567 8901,3512CD,fr\n"
)


def _upload(client: FlaskClient, text: str, skip_bad: bool = False) -> tuple[int, str]:
    token = csrf_token(client, "/people/import")
    data = {"csrf_token": token, "file": (io.BytesIO(text.encode()), "deelnemers.csv")}
    if skip_bad:
        data["skip_bad"] = "y"
    response = client.post("/people/import", data=data, content_type="multipart/form-data")
    return response.status_code, response.get_data(as_text=True)


def _participants(context: Context) -> int:
    with session_scope(context.sessions) as session:
        return len(list(session.scalars(select(Participant.id))))


def test_import_shows_every_bad_line_and_imports_nothing(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    before = _participants(bn_context)
    status, page = _upload(client, CSV_MIXED)
    assert status == 400
    for line in ("line 3:", "line 4:", "line 5:"):
        assert line in page
    assert "line 2:" not in page
    assert _participants(bn_context) == before
    status, page = _upload(client, CSV_MIXED, skip_bad=True)
    assert status == 200 and "line 5:" in page
    assert _participants(bn_context) == before + 1
    assert (
        audit_count(
            bn_context, verb="import", entity="participants", source="web 127.0.0.1", actor="operator"
        )
        == 1
    )


def test_import_file_errors_are_clear(world: World, client_for: Callable[[str | None], FlaskClient]) -> None:
    status, page = _upload(client_for("admin"), "telefoon,postcode\n0612345678,3511AB\n")
    assert status == 400 and "missing column(s) phone" in page and "/tmp" not in page


def test_export_is_reimportable_and_audited(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    response = client_for("admin").get("/people/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["phone"], r["postcode"], r["channels"]) for r in rows] == [
        ("+31612345678", "3511AB", "voice;sms")
    ]
    # A bulk copy of personal data: an audited read, counted, never the rows themselves.
    with session_scope(bn_context.sessions) as session:
        detail = session.scalar(
            select(AuditEvent.detail).where(AuditEvent.verb == "read", AuditEvent.entity == "participants")
        )
    assert detail is not None and json.loads(detail) == {"what": "export-csv", "rows": 1}


def test_search_is_an_audited_read(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    client.get("/people", query_string={"q": "3511"})
    client.get("/people", query_string={"q": ""})  # an empty form is no search
    assert audit_count(bn_context, verb="read", entity="participants", actor="operator") == 1

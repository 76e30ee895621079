"""The ETA and the night rules in the panel: the new-action preview's expected times, a draft's
table "if started now", and on a started action the estimate beside the real times and what the
night rules hold, with when it will go."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask.testing import FlaskClient
from lxml import html
from sqlalchemy import select

from broadcasting import store
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind, Channel
from burgernet.eta import ChannelInputs, EstimateInputs, estimate
from burgernet.imports import import_participants
from burgernet.models import Action, AuditEvent, Broadcast, Delivery, Participant
from composition.context import Context
from tests.panel.conftest import UTRECHT, World, csrf_token
from tests.panel.test_start_action import ALERT_FIELDS

ENGLISH = {"Accept-Language": "en"}


def test_the_preview_says_how_long_each_channel_takes(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    headers = {"X-CSRFToken": csrf_token(client, "/actions/new")}
    preview = client.post("/actions/preview", headers=headers, data={**ALERT_FIELDS, "urgency": "urgent"})
    eta = preview.get_json()["eta"]
    assert eta["recipients"] == 2  # the world's participant, by voice and by SMS
    by_channel = {c["channel"]: c for c in eta["channels"]}
    assert set(by_channel) == {"voice", "sms"}
    for channel in by_channel.values():
        assert channel["recipients"] == 1 and channel["held_until"] is None
    assert 0 < by_channel["sms"]["seconds_to"]["100%"] < 5
    # A call nobody answers is tried again as the no-answer policy says (by default once more,
    # 15 minutes later): the last try ends after that wait and its ringing.
    no_answer = bn_context.settings.broadcast.policies.no_answer
    wait, ring = no_answer.backoff_seconds, bn_context.settings.broadcast.voice_ring_seconds
    voice = by_channel["voice"]["seconds_to"]
    assert voice["50%"] < wait < voice["100%"] < wait + 3 * ring
    assert "trunk channels" in by_channel["voice"]["basis"]
    assert eta["seconds_to"]["100%"] == max(c["seconds_to"]["100%"] for c in eta["channels"])
    # The page has the place for it, and the words the script fills in.
    page = client.get("/actions/new", headers=ENGLISH).get_data(as_text=True)
    assert 'id="preview-eta"' in page and "Expected time until handled" in page


def test_a_drafts_page_shows_the_expected_times_if_started_now(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    draft = bn_context.actions.create(
        action_type="vehicle",
        title="Blauwe bestelbus",
        description="Kenteken onbekend",
        region_code="MN",
        area=AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=2000),
        actor="test",
    )
    page = client_for("operator").get(f"/actions/{draft.id}", headers=ENGLISH).get_data(as_text=True)
    [table] = html.fromstring(page).xpath('//table[@id="eta"]')
    rows = {row.get("data-channel"): row for row in table.xpath(".//tr[@data-channel]")}
    assert set(rows) >= {"voice", "sms"}
    assert rows["sms"].xpath("td")[0].text_content().strip() == "1"
    assert rows["sms"].xpath('td[@data-milestone="100%"]')[0].text_content().strip().endswith("s")
    # A started action shows its broadcasts instead.
    active = client_for("operator").get(f"/actions/{world.active_id}", headers=ENGLISH).get_data(as_text=True)
    assert not html.fromstring(active).xpath('//table[@id="eta"]')


def test_a_broadcast_shows_its_estimate_beside_the_real_times_and_what_waits_for_the_morning(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    morning = datetime.now(UTC) + timedelta(hours=5)
    kept = estimate(
        EstimateInputs(channels=(ChannelInputs("sms", 2, per_second=10.0),), fan_out_seconds=0.0)
    ).to_json()
    with session_scope(bn_context.sessions) as session:
        action = session.get(Action, world.active_id)
        assert action is not None
        broadcast_id = session.scalar(select(Broadcast.id).where(Broadcast.action_id == world.active_id))
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        second = Participant(
            phone_e164="+31620009999",
            postcode="3511AB",
            lat=UTRECHT[1],
            lon=UTRECHT[0],
            channel_sms=True,
            created_at=datetime.now(UTC),
        )
        session.add(second)
        session.flush()
        store.add_deliveries(session, broadcast, {Channel.SMS: [world.participant_id, second.id]})
        held = session.scalars(select(Delivery).where(Delivery.participant_id == second.id)).one()
        held.not_before = morning
        broadcast.status, broadcast.started_at, broadcast.estimate = "running", datetime.now(UTC), kept
    page = client_for("viewer").get(f"/actions/{world.active_id}", headers=ENGLISH).get_data(as_text=True)
    [article] = html.fromstring(page).xpath(f'//*[@data-broadcast-id="{broadcast_id}"]')
    expected = {
        dd.get("data-milestone"): dd.xpath('.//*[@class="muted expected"]')
        for dd in article.xpath(".//dd[@data-milestone]")
    }
    assert (
        expected["100%"] and expected["100%"][0].text_content().strip() == "(expected 0.4 s)"
    )  # 0.1 s apart, 0.3 s to send
    [note] = article.xpath('.//*[@class="night-held"]')
    [sms] = note.xpath('.//*[@data-channel="sms"]')
    assert sms.get("data-held") == "1"
    assert "until" in sms.text_content()


def test_night_alerts_are_set_on_the_participants_page_and_by_csv_import(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient], tmp_path: Path
) -> None:
    client = client_for("operator")
    page = client.get(f"/people/{world.participant_id}", headers=ENGLISH).get_data(as_text=True)
    assert 'id="night_alerts"' in page and "Alerts at night too" in page
    token = csrf_token(client, f"/people/{world.participant_id}")
    fields = {"csrf_token": token, "postcode": "3511AB", "language": "nl", "channel_sms": "y"}
    assert (
        client.post(f"/people/{world.participant_id}", data={**fields, "night_alerts": "y"}).status_code
        == 302
    )
    with session_scope(bn_context.sessions) as session:
        participant = session.get(Participant, world.participant_id)
        assert participant is not None and participant.night_alerts
        detail = session.scalar(select(AuditEvent.detail).where(AuditEvent.verb == "edit"))
    assert detail is not None and "night_alerts" in detail
    client.post(f"/people/{world.participant_id}", data=fields)
    with session_scope(bn_context.sessions) as session:
        participant = session.get(Participant, world.participant_id)
        assert participant is not None and not participant.night_alerts

    csv_file = tmp_path / "people.csv"
    csv_file.write_text(
        "phone,postcode,channels,night_alerts\n0612345670,3511AB,sms,yes\n0612345671,3511AB,sms,\n",
        encoding="utf-8",
    )
    with session_scope(bn_context.sessions) as session:
        report = import_participants(session, csv_file)
    assert report.ok and report.imported == 2
    with session_scope(bn_context.sessions) as session:
        flags = dict(
            session.execute(
                select(Participant.phone_e164, Participant.night_alerts).where(
                    Participant.phone_e164.in_(["+31612345670", "+31612345671"])
                )
            ).all()
        )
    assert flags == {"+31612345670": True, "+31612345671": False}
    # The export carries the flag, so it can be imported again.
    export = client_for("admin").get("/people/export.csv").get_data(as_text=True)
    header, *rows = export.splitlines()
    assert header.endswith(",night_alerts")
    assert any(row.startswith("+31612345670,") and row.endswith(",yes") for row in rows)

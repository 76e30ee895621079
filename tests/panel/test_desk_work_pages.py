"""The worklist, sightings, on-duty and time pages of the panel (real app, SQLite, Redis), and the
API's sightings and ISO 8601 offsets."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskClient
from lxml import html
from sqlalchemy import select, update

from burgernet.callbacks import WorklistScope
from burgernet.calls import CallLog
from burgernet.db import session_scope
from burgernet.models import AuditEvent, Centralist, Tip
from composition.context import Context
from tests.panel.conftest import World, csrf_token, wav_bytes

JSON = {"Accept": "application/json"}


def _item_id(bn_context: Context, world: World) -> int:
    items = bn_context.callbacks.worklist(WorklistScope.everything())
    return next(item.id for item in items if item.tip_id == world.tip_id)


def test_the_worklist_shows_the_tip_with_its_number_to_the_centralist_of_its_region(
    world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    page = html.fromstring(client_for("centralist").get("/worklist").get_data(as_text=True))
    [row] = page.xpath("//tr[@data-item]")
    assert "+31612345678" in row.text_content() and "Vermist meisje" in row.text_content()
    assert row.get("data-state") == "free" and row.xpath(".//form[@data-step='claim']")
    assert client_for("viewer").get("/worklist").status_code == 403


def test_two_centralists_claiming_at_once_one_wins(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    item_id = _item_id(bn_context, world)
    clients = [client_for("centralist"), client_for("operator")]
    tokens = [csrf_token(client, "/worklist") for client in clients]
    start = threading.Barrier(2)
    answers: list[int] = []

    def claim(client: FlaskClient, token: str) -> None:
        start.wait()
        response = client.post(f"/worklist/{item_id}/claim", data={"csrf_token": token}, headers=JSON)
        answers.append(response.status_code)

    threads = [threading.Thread(target=claim, args=pair) for pair in zip(clients, tokens, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 409]


def test_noting_the_result_ends_the_item_and_writes_the_tips_callback_time(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    item_id = _item_id(bn_context, world)
    client = client_for("centralist")
    token = csrf_token(client, "/worklist")
    assert (
        client.post(f"/worklist/{item_id}/claim", data={"csrf_token": token}, headers=JSON).status_code == 200
    )
    refused = client.post(
        f"/worklist/{item_id}/done", data={"csrf_token": token, "result": "maybe"}, headers=JSON
    )
    assert refused.status_code == 422 and "result must be one of" in refused.get_json()["error"]
    done = client.post(
        f"/worklist/{item_id}/done",
        data={"csrf_token": token, "result": "wrong_number", "note": "nummer bestaat niet"},
        headers=JSON,
    )
    assert done.status_code == 200 and done.get_json()["item"]["result"] == "wrong_number"
    page = html.fromstring(client.get("/worklist").get_data(as_text=True))
    assert not page.xpath("//tr[@data-item]")
    [row] = page.xpath(f"//tr[@id='done-{item_id}']")
    assert "centralist" in row.text_content() and "nummer bestaat niet" in row.text_content()
    with session_scope(bn_context.sessions) as session:
        tip = session.get(Tip, world.tip_id)
        assert tip is not None and tip.callback_done_at is not None


def test_click_to_call_needs_a_linked_phone(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    item_id = _item_id(bn_context, world)
    client = client_for("operator")  # linked to no centralist
    token = csrf_token(client, "/worklist")
    client.post(f"/worklist/{item_id}/claim", data={"csrf_token": token}, headers=JSON)
    response = client.post(f"/worklist/{item_id}/call", data={"csrf_token": token}, headers=JSON)
    assert response.status_code == 422 and "linked to no centralist" in response.get_json()["error"]


def test_a_centralist_sets_their_own_duty_audited(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("centralist")
    token = csrf_token(client, "/worklist")
    for wanted, expected in (("no", False), ("yes", True)):
        response = client.post("/me/on-duty", data={"csrf_token": token, "on_duty": wanted}, headers=JSON)
        assert response.get_json()["on_duty"] is expected
        with session_scope(bn_context.sessions) as session:
            on_duty = session.scalar(select(Centralist.on_duty).where(Centralist.sip_endpoint == "c-mn-1"))
        assert on_duty is expected
    with session_scope(bn_context.sessions) as session:
        verbs = session.scalars(
            select(AuditEvent.verb).where(AuditEvent.entity == "centralist", AuditEvent.actor == "centralist")
        ).all()
    assert verbs == ["off-duty", "on-duty"]
    operator = client_for("operator")  # linked to no centralist: nothing to switch
    operator_token = csrf_token(operator, "/worklist")
    response = operator.post(
        "/me/on-duty", data={"csrf_token": operator_token, "on_duty": "yes"}, headers=JSON
    )
    assert response.status_code == 404


def test_times_are_shown_in_amsterdam_summer_and_winter(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    with session_scope(bn_context.sessions) as session:
        session.execute(
            update(Tip)
            .where(Tip.id == world.tip_id)
            .values(created_at=datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
        )
    client = client_for("centralist")
    summer = html.fromstring(client.get(f"/actions/{world.active_id}").get_data(as_text=True))
    assert summer.xpath("//div[@id='tips-body']//td")[0].text_content() == "2026-07-01 14:00:00"  # CEST, +2
    with session_scope(bn_context.sessions) as session:
        session.execute(
            update(Tip)
            .where(Tip.id == world.tip_id)
            .values(created_at=datetime(2026, 1, 15, 12, 0, tzinfo=UTC))
        )
    winter = html.fromstring(client.get(f"/actions/{world.active_id}/tips.part").get_data(as_text=True))
    assert winter.xpath("//td")[0].text_content() == "2026-01-15 13:00:00"  # CET, +1


def test_sightings_through_the_form_and_the_api_with_iso_offsets(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient], app: Flask
) -> None:
    client = client_for("centralist")
    token = csrf_token(client, f"/actions/{world.active_id}")
    refused = client.post(
        f"/actions/{world.active_id}/sightings",
        data={
            "csrf_token": token,
            "seen_at": "2026-07-01T14:05",
            "lat": "",
            "lon": "",
            "reliability": "probable",
        },
    )
    assert refused.status_code == 422
    again = html.fromstring(refused.get_data(as_text=True))
    assert again.xpath("//input[@name='seen_at']/@value") == ["2026-07-01T14:05"]  # nothing typed is lost
    assert "click on the map" in again.xpath("//p[@id='sighting-error']")[0].text_content()
    recorded = client.post(
        f"/actions/{world.active_id}/sightings",
        data={
            "csrf_token": token,
            "seen_at": "2026-07-01T14:05",
            "lat": "52,0931",
            "lon": "5.1180",
            "reliability": "confirmed",
            "direction": "NE",
            "description": "rode jas",
        },
        headers=JSON,
    )
    assert recorded.status_code == 201
    assert recorded.get_json()["seen_at"] == "2026-07-01T12:05:00+00:00"  # meant in Amsterdam, CEST
    api = app.test_client()
    bearer = {"Authorization": f"Bearer {world.tokens['centralist']}"}
    created = api.post(
        f"/api/v1/actions/{world.active_id}/sightings",
        json={"seen_at": "2026-01-15T13:30:00+01:00", "lat": 52.09, "lon": 5.12, "reliability": "possible"},
        headers=bearer,
    )
    assert created.status_code == 201 and created.get_json()["seen_at"] == "2026-01-15T12:30:00+00:00"
    listed = api.get(f"/api/v1/actions/{world.active_id}/sightings", headers=bearer).get_json()["sightings"]
    assert [s["reliability"] for s in listed] == ["confirmed", "possible"]
    assert all(s["created_at"].endswith("+00:00") for s in listed)
    no_offset = api.post(
        f"/api/v1/actions/{world.active_id}/sightings",
        json={"seen_at": "2026-01-15T13:30:00", "lat": 52.09, "lon": 5.12, "reliability": "possible"},
        headers=bearer,
    )
    assert no_offset.status_code == 422 and no_offset.get_json()["error_id"] == "input.invalid"
    viewer = {"Authorization": f"Bearer {world.tokens['viewer']}"}
    assert api.get(f"/api/v1/actions/{world.active_id}/sightings", headers=viewer).status_code == 403
    # The API's other times carry an offset too (SQLite hands them back without one).
    action = api.get(f"/api/v1/actions/{world.active_id}", headers=bearer).get_json()
    assert action["created_at"].endswith("+00:00")


def test_a_centralist_can_neither_see_nor_work_nor_hear_another_regions_call_back(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    log = CallLog(bn_context.sessions)
    log.open_call(
        "ro.1", caller_number="+31611112222", action_id=world.draft_id, region_code="RO", reason="t"
    )
    recording = bn_context.settings.recordings_dir / "tips" / "ro.wav"
    recording.parent.mkdir(parents=True, exist_ok=True)
    recording.write_bytes(wav_bytes())
    log.register_tip(
        "ro.1", action_id=world.draft_id, recording_path=str(recording), callback_number="+31611112222"
    )
    items = bn_context.callbacks.worklist(WorklistScope.everything())
    other = next(item.id for item in items if item.number == "+31611112222")
    centralist = client_for("centralist")
    assert "+31611112222" not in centralist.get("/worklist").get_data(as_text=True)
    token = csrf_token(centralist, "/worklist")
    claim = centralist.post(f"/worklist/{other}/claim", data={"csrf_token": token}, headers=JSON)
    assert claim.status_code == 404 and claim.get_json()["error_id"] == "callback.not_found"
    assert centralist.get(f"/worklist/{other}/audio").status_code == 404
    operator = client_for("operator")  # national: sees and may play it (the read is audited)
    assert "+31611112222" in operator.get("/worklist").get_data(as_text=True)
    assert operator.get(f"/worklist/{other}/audio").status_code == 200
    with session_scope(bn_context.sessions) as session:
        reads = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.entity == "tip", AuditEvent.verb == "read")
        ).all()
    assert reads == ["operator"]

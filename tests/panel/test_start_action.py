"""The start-an-action flow's server side: place search, the type's template (and its Settings
page), the team with live state, and the preview of every message before it is sent."""

from __future__ import annotations

import io
import re
import wave
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from flask.testing import FlaskClient
from sqlalchemy import select, update

from broadcasting.messages import compose
from broadcasting.store import add_deliveries, load_job
from burgernet.action_types import ActionTypeTemplates
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.models import ActionTypeTemplate, Broadcast, Centralist, Delivery, User
from composition.context import Context
from routing.model import Presence
from tests.panel.conftest import UTRECHT, World, csrf_token

ALERT_FIELDS = {
    "action_type": "missing_child",
    "title": "Vermist meisje, 8 jaar",
    "description": "Rode jas, blauwe rugzak. Laatst gezien bij het station.",
    "region": "MN",
    "area_kind": "circle",
    "lon": str(UTRECHT[0]),
    "lat": str(UTRECHT[1]),
    "radius_m": "3000",
    "channels": ["voice", "sms", "email"],
}


def test_the_search_box_finds_a_postcode_and_proposes_the_region(
    world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    found = client.get("/actions/places?q=3511 AH 3").get_json()
    assert found["results"] == [
        {
            "kind": "address",
            "label": "Oudegracht 3, 3511 AH Utrecht",
            "lon": 5.126019,
            "lat": 52.090947,
            "zoom": 17,
            "region": "MN",
        }
    ]
    assert client.get("/actions/places?q=zzzz").get_json()["results"] == []
    assert client_for("viewer").get("/actions/places?q=3511").status_code == 403


def test_a_new_action_starts_from_its_types_template_edited_in_settings(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    page = client.get("/actions/new?type=vehicle").get_data(as_text=True)
    assert (
        'id="radius_m" inputmode="numeric" name="radius_m" placeholder="3000" type="text" value="10000"'
        in page
    )
    assert "Gezocht voertuig ..." in page
    default = client.get("/actions/new").get_data(as_text=True)
    assert 'value="3000"' in default and '<option selected value="missing_child">' in default

    token = csrf_token(client, "/settings/action-types/vehicle")
    form = {
        "csrf_token": token,
        "radius_m": "12000",
        "channels": ["sms", "voice"],
        "urgency": "urgent",
        "title_block": "Gestolen auto",
        "description_block": "Kenteken ...",
        "do": "save",
    }
    saved = client.post("/settings/action-types/vehicle", data=form)
    assert saved.status_code == 302
    page = client.get("/actions/new?type=vehicle").get_data(as_text=True)
    assert 'value="12000"' in page and "Gestolen auto" in page
    listing = client.get("/settings/action-types").get_data(as_text=True)
    assert "12.0 km" in listing and "Spraakoproep, SMS" in listing  # Dutch: the default language

    refused = client.post("/settings/action-types/vehicle", data={**form, "radius_m": "0", "channels": []})
    assert refused.status_code == 400
    with session_scope(bn_context.sessions) as session:
        row = session.get(ActionTypeTemplate, "vehicle")
        assert row is not None and (row.radius_m, row.channels) == (12000, "voice,sms")  # unchanged

    reset = client.post("/settings/action-types/vehicle", data={"csrf_token": token, "do": "reset"})
    assert reset.status_code == 302
    assert 'value="10000"' in client.get("/actions/new?type=vehicle").get_data(as_text=True)
    assert client_for("centralist").get("/settings/action-types").status_code == 403


def test_the_team_shows_live_state_and_puts_the_operators_own_endpoint_first(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    with session_scope(bn_context.sessions) as session:
        own = session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == "c-mn-3"))
        session.execute(update(User).where(User.username == "operator").values(centralist_id=own))
        session.execute(update(Centralist).where(Centralist.sip_endpoint == "c-mn-2").values(on_duty=False))
    bn_context.live.set_presence("c-mn-1", Presence.BUSY)
    bn_context.live.set_presence("c-mn-3", Presence.AVAILABLE)
    client = client_for("operator")
    team = client.get("/actions/team.json?region=MN").get_json()
    assert [(m["endpoint"], m["state"], m["reachable"], m["own"]) for m in team["members"]] == [
        ("c-mn-3", "available", True, True),
        ("c-mn-1", "in a call", False, False),
        ("c-mn-2", "off duty", False, False),
    ]
    assert team["reachable"] == 1
    bn_context.live.set_presence("c-mn-3", Presence.OFFLINE)
    assert client.get("/actions/team.json?region=MN").get_json()["reachable"] == 0
    # Another region's list still starts with the operator's own endpoint.
    other = client.get("/actions/team.json?region=RO").get_json()["members"]
    assert [m["endpoint"] for m in other] == ["c-mn-3", "c-ro-1", "c-ro-2", "c-ro-3"]


def test_the_preview_is_what_the_workers_send_with_counts_and_overlaps(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    headers = {"X-CSRFToken": csrf_token(client, "/actions/new")}
    preview = client.post("/actions/preview", headers=headers, data=ALERT_FIELDS).get_json()
    messages = {(m["channel"], m["language"]): m for m in preview["messages"]}
    assert sorted(messages) == [(c, lang) for c in ("email", "sms", "voice") for lang in ("en", "nl")]
    sms = messages[("sms", "nl")]
    assert "Rode jas" in sms["body"] and "0800-0011" in sms["body"]
    assert sms["sms"] == {
        "characters": len(sms["body"]),
        "segments": 1,
        "encoding": "GSM-7",
        "per_segment": 160,
    }
    assert messages[("email", "en")]["subject"]
    # The world's participant is at Utrecht's centre, on voice and SMS.
    assert preview["recipients"] == {"voice": 1, "sms": 1, "email": 0, "people": 1}
    # The world's active missing child action covers Utrecht too.
    assert preview["overlaps"] == [{"action_id": world.active_id, "title": "Vermist meisje"}]
    elsewhere = {**ALERT_FIELDS, "lon": "6.5", "lat": "53.2", "channels": ["sms"]}
    far = client.post("/actions/preview", headers=headers, data=elsewhere).get_json()
    assert far["overlaps"] == [] and far["recipients"] == {"sms": 0, "people": 0}
    assert {m["channel"] for m in far["messages"]} == {"sms"}
    bad = client.post("/actions/preview", headers=headers, data={**ALERT_FIELDS, "lon": "east"})
    assert bad.status_code == 400 and "lon" in bad.get_json()["error"]

    # Create and start: the alert the workers compose is the previewed text, word for word, but
    # for the action code, which is drawn at the start (the preview leaves its clause out).
    token = csrf_token(client, "/actions/new")
    created = client.post(
        "/actions/new",
        data={**ALERT_FIELDS, "team": "c-mn-1", "start_now": "y", "csrf_token": token},
        content_type="multipart/form-data",
    )
    assert created.status_code == 302
    action_id = int(created.headers["Location"].rsplit("/", 1)[1])
    with session_scope(bn_context.sessions) as session:
        broadcast = session.scalars(select(Broadcast).where(Broadcast.action_id == action_id)).one()
        add_deliveries(session, broadcast, {Channel.SMS: np.array([world.participant_id])})
        delivery_id = session.scalar(select(Delivery.id).where(Delivery.broadcast_id == broadcast.id))
        assert delivery_id is not None
        job = load_job(session, delivery_id)
        assert job is not None
        sent = compose(session, job, bn_context.settings)
    code = bn_context.actions.get(action_id).action_code
    assert code is not None and sent.body == sms["body"] + f", code {code}"


def test_the_voice_preview_is_spoken_on_demand(
    world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    headers = {"X-CSRFToken": csrf_token(client, "/actions/new")}
    spoken = client.post("/actions/preview/voice", headers=headers, data={**ALERT_FIELDS, "lang": "nl"})
    assert spoken.status_code == 200 and spoken.mimetype == "audio/wav"
    with wave.open(io.BytesIO(spoken.get_data())) as sound:
        assert sound.getnframes() / sound.getframerate() > 2.0  # the whole alert, not a beep
    assert client.post("/actions/preview/voice", headers=headers, data={"lang": "fr"}).status_code == 400


def test_the_overview_counts_calls_and_tips_per_active_action(
    world: World, client_for: Callable[[str | None], FlaskClient]
) -> None:
    overview = client_for("viewer").get("/actions/overview.json").get_json()
    assert overview == {
        "actions": [
            {
                "id": world.active_id,
                "title": "Vermist meisje",
                "action_type": "missing_child",
                "region": "MN",
                "reached": 0,  # the alert is queued, no worker ran
                "calls": 1,
                "tips": 1,
            }
        ],
        "unassigned_tips": 0,
    }
    assert client_for(None).get("/actions/overview.json").status_code == 302  # to the login page


def test_the_form_offers_the_templates_channels_and_urgency_and_the_action_gets_the_choice(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    templates = ActionTypeTemplates(bn_context.sessions)
    vehicle = templates.get("vehicle")
    templates.save(replace(vehicle, channels=("sms", "email"), urgency="urgent"), actor="test", source="test")
    client = client_for("operator")
    page = client.get("/actions/new?type=vehicle").get_data(as_text=True)
    ticked = set(
        re.findall(r'<input checked id="channels-\d" name="channels" type="checkbox" value="(\w+)">', page)
    )
    assert ticked == {"sms", "email"}  # pre-ticked from the template, and its urgency chosen
    assert '<option value="urgent" selected>' in page

    # The preview counts only the channels ticked: the world's participant has voice and SMS.
    headers = {"X-CSRFToken": csrf_token(client, "/actions/new")}
    mail_only = client.post("/actions/preview", headers=headers, data={**ALERT_FIELDS, "channels": ["email"]})
    assert mail_only.get_json()["recipients"] == {"email": 0, "people": 0}

    token = csrf_token(client, "/actions/new")
    chosen = {**ALERT_FIELDS, "channels": ["sms"], "urgency": "amber", "channels_offered": "y"}
    created = client.post(
        "/actions/new", data={**chosen, "csrf_token": token}, content_type="multipart/form-data"
    )
    assert created.status_code == 302
    view = bn_context.actions.get(int(created.headers["Location"].rsplit("/", 1)[1]))
    assert (view.channels, view.urgency) == (("sms",), "amber")

    # Every box unticked on the page: refused with a clear message, nothing created.
    before = len(bn_context.actions.list_actions())
    refused = client.post(
        "/actions/new",
        data={
            **ALERT_FIELDS,
            "channels": [],
            "channels_offered": "y",
            "csrf_token": csrf_token(client, "/actions/new"),
        },
        content_type="multipart/form-data",
    )
    assert refused.status_code == 400 and "at least one channel" in refused.get_data(as_text=True)
    assert len(bn_context.actions.list_actions()) == before

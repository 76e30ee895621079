"""The operator's first minute, in a real browser and from the keyboard alone.

A scripted operator types a postcode and house number in the search box, accepts the type's
template, picks two centralists (their own endpoint is already first; the other is ticked and
moved up with Alt+Up), reads the preview and starts. The action is created with the address
as the circle's centre, the template's radius and the team in that order; the alert the
workers compose for each channel and language is, word for word, the text that was previewed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from broadcasting.messages import compose
from broadcasting.store import add_deliveries, load_job
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.models import Action, Broadcast, Centralist, Delivery, Participant, User
from composition.context import Context
from routing.model import Presence
from tests.e2e.conftest import OPERATOR, BrowserPage
from tests.e2e.test_accessibility import AXE, axe_violations, blocking
from tests.e2e.test_browser import log_in

# How the alert texts carry the action code (burgernet/default_messages.py), to the sentence's end.
CODE_CLAUSE = re.compile(r", (?:code|en toets de actiecode|and key the action code) [^.]*")

# The demo sample's Oudegracht 3, 3511 AH Utrecht (burgernet/data/demo_addresses.csv).
ADDRESS = (5.126019, 52.090947)
OWN = "c-mn-2"


@pytest.fixture
def control_room(bn_context: Context) -> dict[str, int]:
    """The operator works as c-mn-2; c-mn-1 is free; a Dutch and an English participant nearby."""
    with session_scope(bn_context.sessions) as session:
        own = session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == OWN))
        session.execute(update(User).where(User.username == OPERATOR).values(centralist_id=own))
        people = {}
        for language, number in (("nl", "+31611110001"), ("en", "+31611110002")):
            person = Participant(
                phone_e164=number,
                email=f"{language}@example.org",
                postcode="3511AH",
                lat=ADDRESS[1],
                lon=ADDRESS[0],
                language=language,
                channel_voice=True,
                channel_sms=True,
                channel_email=True,
                inquiry_opt_in=False,
                opted_out=False,
                created_at=datetime.now(UTC),
            )
            session.add(person)
            session.flush()
            people[language] = person.id
    bn_context.live.set_presence("c-mn-1", Presence.AVAILABLE)
    bn_context.live.set_presence(OWN, Presence.AVAILABLE)
    return people


def test_from_a_postcode_to_a_started_action_with_the_keyboard(
    browser_page: BrowserPage, bn_context: Context, control_room: dict[str, int]
) -> None:
    page = browser_page.page
    keyboard = page.keyboard
    page.context.add_init_script(path=str(AXE))
    log_in(page)
    page.goto("/actions/new")

    # -- the type's template is already there: missing child, 3 km, every channel -------------------
    expect(page.get_by_label("Type", exact=True)).to_have_value("missing_child")
    expect(page.locator("#template-note")).to_have_text(
        "Template: 3 km · Voice call, SMS, E-mail, Push (app) · urgent"
    )
    expect(page.get_by_label("Radius (metres)")).to_have_value("3000")

    # -- the place: typed, Enter -------------------------------------------------------------------
    page.get_by_label("Title", exact=True).focus()
    keyboard.press("Control+A")
    keyboard.type("Vermist meisje, 8 jaar")
    keyboard.press("Tab")  # to the description
    keyboard.press("Control+A")
    keyboard.type("Rode jas, blauwe rugzak.")
    keyboard.press("Tab")  # to the search box
    expect(page.get_by_role("combobox", name=re.compile("^Find the place"))).to_be_focused()
    keyboard.type("3511 ah 3")
    expect(page.get_by_role("option", name="Oudegracht 3, 3511 AH Utrecht")).to_be_visible()
    keyboard.press("Enter")
    expect(page.locator("#place-status")).to_have_text(
        "Centre set on Oudegracht 3, 3511 AH Utrecht. Radius 3000 m."
    )
    expect(page.locator("#lon")).to_have_value(f"{ADDRESS[0]:.5f}")
    expect(page.locator("#lat")).to_have_value(f"{ADDRESS[1]:.5f}")
    expect(page.get_by_label("Region", exact=True)).to_have_value("MN")
    expect(page.locator("#draw-map path.leaflet-interactive").last).to_be_visible()  # the circle

    # -- the team: own endpoint first and ticked; tick c-mn-1 and move it up -------------------------
    rows = page.locator("#team-picker li")
    expect(rows).to_have_count(3)
    expect(rows.first).to_have_attribute("data-endpoint", OWN)
    expect(page.get_by_label("Team: centralist endpoints in ringing order")).to_have_value(OWN)
    page.locator("#member-c-mn-1").focus()
    keyboard.press("Space")
    keyboard.press("Alt+ArrowUp")
    expect(page.get_by_label("Team: centralist endpoints in ringing order")).to_have_value("c-mn-1, c-mn-2")
    expect(page.locator("#team-status")).to_have_text(re.compile(r"is now number 1\."))
    expect(page.locator("#team-warning")).to_be_hidden()

    # -- the preview: every channel and language, counts, no overlap ----------------------------------
    cards = page.locator("#preview .message")
    expect(cards).to_have_count(8)  # voice, SMS, e-mail and push, each in Dutch and English
    expect(page.locator("#preview-recipients")).to_have_text(
        "Recipients — Voice call: 2 · SMS: 2 · E-mail: 2 · Push (app): 0 · 2 people"
    )
    expect(page.locator("#overlap")).to_be_hidden()
    previewed = {
        (body.get_attribute("data-channel"), body.get_attribute("data-lang")): body.inner_text()
        for body in page.locator("#preview .body").all()
    }
    # Push goes to the app's subscriptions, not to these participants (tests/push, tests/app).
    assert previewed.pop(("push", "nl")) and previewed.pop(("push", "en"))
    assert "Rode jas, blauwe rugzak." in previewed[("sms", "nl")]
    expect(page.locator("#preview .sms-size").first).to_contain_text("1 SMS (GSM-7)")
    # Everything the scripts added (results list, team, preview) is accessible too.
    assert blocking(axe_violations(page)) == []

    # -- start: the button is a keystroke away ----------------------------------------------------------
    start = page.get_by_role("button", name="Create and start")
    expect(start).to_be_enabled()
    start.focus()
    keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/actions/\d+$"))
    expect(page.locator("h1 .badge")).to_have_text("active")
    action_id = int(page.url.rsplit("/", 1)[1])

    with session_scope(bn_context.sessions) as session:
        action = session.get(Action, action_id)
        assert action is not None
        assert (action.area_kind, action.radius_m, action.region.code, action.status) == (
            "circle",
            3000.0,
            "MN",
            "active",
        )
        assert (action.center_lon, action.center_lat) == pytest.approx(ADDRESS, abs=1e-5)
        assert [m.centralist.sip_endpoint for m in action.team] == ["c-mn-1", "c-mn-2"]
        # What each participant will get: the workers' own composition of the alert.
        broadcast = session.scalars(select(Broadcast).where(Broadcast.action_id == action_id)).one()
        people = np.array(sorted(control_room.values()))
        # Push goes to app subscriptions, not participants (tests/push).
        add_deliveries(
            session, broadcast, {channel: people for channel in Channel if channel is not Channel.PUSH}
        )
        deliveries = session.execute(
            select(Delivery.id, Delivery.channel, Participant.language)
            .join(Participant, Participant.id == Delivery.participant_id)
            .where(Delivery.broadcast_id == broadcast.id)
        ).all()
        sent = {}
        for delivery_id, channel, language in deliveries:
            job = load_job(session, delivery_id)
            assert job is not None
            body = compose(session, job, bn_context.settings).body
            # The action code is drawn at the start, after the preview: its clause is the one
            # difference (the preview leaves it out).
            assert action.action_code is not None and CODE_CLAUSE.search(body), body
            sent[(channel, language)] = CODE_CLAUSE.sub("", body)
    assert sent == previewed

    # The control room's dashboard: the new action with its counters beside the map.
    page.get_by_role("link", name="Dashboard", exact=True).click()
    item = page.locator("#action-list li", has_text=f"#{action_id} Vermist meisje, 8 jaar")
    expect(item.locator(".counters")).to_have_text("0 reached · 0 calls · 0 tips")
    assert browser_page.errors == []

"""An operator's whole action in a real browser, with a call arriving through the telephony code.

Headless Chromium (Debian's) logs in to the panel served by waitress, draws the area on the
Leaflet map with leaflet-draw and sees the live recipient count, creates and starts the
action, watches a call to the free number arrive in the dashboard's live feed (server-sent
events, no reload) and closes the action. The call is made the way Asterisk makes it: a
FastAGI connection to the real ``freephone`` flow, then the AMI events the call tracker reads.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import shapely
from playwright.sync_api import Page, expect
from sqlalchemy import select

from burgernet import channel_vars as cv
from burgernet.calls import CallLog
from burgernet.db import session_scope
from burgernet.models import Action, AuditEvent, Participant
from composition.context import Context
from testbed.browser import draw_polygon
from testbed.telephony import call_free_number, phones_change, run_telephony
from tests.e2e.conftest import OPERATOR, PASSWORD, BrowserPage

# The new-action map opens on the centre of region Midden-Nederland (map.js: [52.2, 5.3], zoom 7).
MAP_CENTRE = (5.30, 52.20)  # lon, lat
# The polygon drawn: a square 60 px wide around the centre (at zoom 7 about 45 by 45 km).
SQUARE_PX = ((-30, -30), (30, -30), (30, 30), (-30, 30))
INSIDE = [(5.30, 52.20), (5.25, 52.17), (5.36, 52.23), (5.28, 52.25), (5.33, 52.15)]
OUTSIDE = [(6.57, 53.22), (5.69, 50.85), (4.48, 51.92)]  # Groningen, Maastricht, Rotterdam
CALLER = "+31611110000"  # the first participant inside: the caller of the test call
CALL_ID = "1700000123.45"


@pytest.fixture
def participants(bn_context: Context) -> None:
    """Five participants around the map's centre (one more there opted out), three far away."""
    now = datetime.now(UTC)
    rows = [(lon, lat, False) for lon, lat in INSIDE + OUTSIDE] + [(5.31, 52.21, True)]
    with session_scope(bn_context.sessions) as session:
        for number, (lon, lat, opted_out) in enumerate(rows):
            session.add(
                Participant(
                    phone_e164=f"+3161111{number:04d}",
                    postcode="3811AA",
                    lat=lat,
                    lon=lon,
                    language="nl",
                    channel_voice=True,
                    channel_sms=True,
                    channel_email=False,
                    inquiry_opt_in=False,
                    opted_out=opted_out,
                    opted_out_at=now if opted_out else None,
                    created_at=now,
                )
            )


def log_in(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(OPERATOR)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()


def action_row(context: Context, action_id: int) -> Action:
    with session_scope(context.sessions) as session:
        action = session.get(Action, action_id)
        assert action is not None
        session.expunge(action)
        return action


def test_operator_draws_starts_sees_a_live_call_and_closes_an_action(
    browser_page: BrowserPage, bn_context: Context, participants: None
) -> None:
    page = browser_page.page
    log_in(page)

    # -- new action: draw the area, see the count -------------------------------------------------
    page.get_by_role("link", name="Actions", exact=True).click()
    page.get_by_role("link", name="New action").click()
    expect(page).to_have_url(re.compile(r"/actions/new$"))
    expect(page.locator("#draw-map .leaflet-draw-draw-polygon")).to_be_visible()
    page.get_by_label("Title", exact=True).fill("Vermist meisje, 8 jaar, rode jas")
    page.get_by_label("Type", exact=True).select_option("missing_child")
    page.get_by_label("Region", exact=True).select_option("MN")
    page.get_by_label("Team: centralist endpoints in ringing order").fill("c-mn-1, c-mn-2")
    draw_polygon(page, SQUARE_PX)

    expect(page.locator("#draw-map path.leaflet-interactive").last).to_be_visible()
    expect(page.locator("#area_kind-1")).to_be_checked()  # leaflet-draw switched the kind to polygon
    expect(page.locator("#recipient-count")).to_have_text("Participants inside the area (not opted out): 5")
    drawn = shapely.geometry.shape(json.loads(page.locator("#geojson").input_value()))
    assert drawn.geom_type == "Polygon" and len(drawn.exterior.coords) == 5  # four corners, closed
    assert drawn.contains(shapely.Point(MAP_CENTRE))

    page.get_by_role("button", name="Create action").click()
    expect(page).to_have_url(re.compile(r"/actions/\d+$"))
    action_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator(".flash.success")).to_have_text(f"Action {action_id} created.")
    expect(page.locator("h1 .badge")).to_have_text("draft")
    created = action_row(bn_context, action_id)
    assert (created.status, created.area_kind, created.title) == (
        "draft",
        "polygon",
        "Vermist meisje, 8 jaar, rode jas",
    )
    expect(page.locator("#recipients")).to_have_text("5")

    # -- start it -------------------------------------------------------------------------------------
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.locator("h1 .badge")).to_have_text("active")
    assert action_row(bn_context, action_id).status == "active"

    # -- the dashboard, live: a centralist's phone comes free, then a call arrives ----------------------
    with page.expect_response(lambda response: response.url.endswith("/events")):
        # The feed's response starts once the server has subscribed: nothing published after is lost.
        page.get_by_role("link", name="Dashboard", exact=True).click()
    expect(page.locator("#action-list")).to_contain_text(f"#{action_id} Vermist meisje")
    feed = page.locator("#feed")
    expect(feed).to_contain_text("Waiting for calls")
    presence_row = page.locator("#presence tr", has_text="(c-mn-1)")
    expect(presence_row).to_contain_text("Unknown")

    run_telephony(phones_change(bn_context, {"c-mn-1": "NOT_INUSE"}))
    expect(presence_row).to_contain_text("Available")

    commands = run_telephony(call_free_number(bn_context, "0611110000", CALL_ID, answered_by="c-mn-1"))
    assert any(f"{cv.VAR_ROUTE}={cv.ROUTE_DIAL}" in command for command in commands), commands
    assert any("PJSIP/c-mn-1" in command for command in commands), commands
    expect(feed.locator("li", has_text=f"call routed · #{action_id}")).to_have_count(1)
    expect(feed.locator("li", has_text="call answered · c-mn-1 · connected")).to_have_count(1)
    expect(feed.locator("li", has_text=f"call ended · #{action_id} · connected")).to_have_count(1)
    expect(feed).not_to_contain_text("Waiting for calls")
    call = CallLog(bn_context.sessions).get(CALL_ID)
    assert call is not None
    assert (call.action_id, call.caller_number, call.centralist, call.outcome) == (
        action_id,
        CALLER,
        "c-mn-1",
        cv.OUTCOME_CONNECTED,
    )

    # -- the action page lists the call; close the action with an outcome -------------------------------
    page.locator("#action-list").get_by_role("link", name=f"#{action_id} Vermist meisje").click()
    calls = page.locator("section[aria-labelledby=calls-title] tbody tr")
    expect(calls).to_have_count(1)
    expect(calls.first).to_contain_text(CALLER)
    expect(calls.first).to_contain_text("c-mn-1")
    page.get_by_label("Outcome", exact=True).select_option("found_otherwise")
    page.get_by_label("Internal note").fill("Kind gevonden")
    page.get_by_label("Result message to everyone alerted").fill("Het meisje is terecht. Dank voor uw hulp.")
    page.get_by_role("button", name="Close", exact=True).click()
    expect(page.locator(".flash.success")).to_have_text(f"Action {action_id} closed.")
    expect(page.locator("h1 .badge")).to_have_text("closed")
    expect(page.get_by_role("button", name="Start", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Close", exact=True)).to_have_count(0)

    closed = action_row(bn_context, action_id)
    assert (closed.status, closed.outcome, closed.result_message) == (
        "closed",
        "Kind gevonden",
        "Het meisje is terecht. Dank voor uw hulp.",
    )
    assert closed.closed_at is not None
    with session_scope(bn_context.sessions) as session:
        changes = session.execute(
            select(AuditEvent.verb, AuditEvent.source)
            .where(AuditEvent.entity == "action", AuditEvent.entity_id == str(action_id))
            .where(AuditEvent.actor == OPERATOR, AuditEvent.verb.in_(["active", "closed"]))
            .order_by(AuditEvent.id)
        ).all()
    # Started and closed by the operator, from the browser (other parts may audit more).
    assert [(verb, source) for verb, source in changes] == [
        ("active", "web 127.0.0.1"),
        ("closed", "web 127.0.0.1"),
    ]

    assert browser_page.errors == []  # no script failed in the page
    # The map asked for tiles from the internet and got none: the panel works offline.
    assert browser_page.refused and all("tile.openstreetmap.org" in url for url in browser_page.refused)

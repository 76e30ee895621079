"""The desk's work in two real browsers (Chromium under Playwright) on the panel under waitress:
a sighting entered in one appears in the other within a second; two centralists claim the same
tip, one wins; the worklist and the sightings map as a centralist sees them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select, update

from asterisk_conf.render import AsteriskPlan
from asterisk_conf.sandbox import AsteriskInstall
from burgernet.actions import AreaSpec
from burgernet.calls import CallLog
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Centralist, User
from callback_api import live_events
from callback_api.auth.services import create_user
from composition.context import Context
from ivr.callback_dial import AmiCallbackDialer
from testbed.browser import PanelServer, offline_context
from testbed.ports import free_port
from tests.asterisk.conftest import StartAsterisk, asterisk_settings, centralist, start_asterisk  # noqa: F401
from tests.asterisk.test_callback_originate import _first_invite, _traced_phone
from tests.e2e.conftest import PASSWORD

UTRECHT = (5.1214, 52.0907)


@dataclass
class Desk:
    action_id: int
    tip_number: str


@pytest.fixture(autouse=True)
def short_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    # A stream whose browser has gone notices on its next write: threads are free when the test ends.
    monkeypatch.setattr(live_events, "HEARTBEAT_SECONDS", 0.5)


def _centralist_user(context: Context, username: str, endpoint: str) -> None:
    create_user(
        context.sessions, username=username, role="centralist", password=PASSWORD, actor="t", source="t"
    )
    with session_scope(context.sessions) as session:
        centralist_id = session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == endpoint))
        session.execute(update(User).where(User.username == username).values(centralist_id=centralist_id))


@pytest.fixture
def desk(bn_context: Context, panel_server: PanelServer) -> Desk:
    """Two centralists of region MN (anna on c-mn-1, bert on c-mn-2), an active action with a tip."""
    _centralist_user(bn_context, "anna", "c-mn-1")
    _centralist_user(bn_context, "bert", "c-mn-2")
    view = bn_context.actions.create(
        action_type="missing_child",
        title="Vermist meisje, 8 jaar, rode jas",
        region_code="MN",
        area=AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=1500),
        team=["c-mn-1", "c-mn-2"],
        actor="test",
    )
    bn_context.actions.start(view.id, actor="test")
    log = CallLog(bn_context.sessions)
    log.open_call("e2e.1", caller_number="+31612340001", action_id=view.id, region_code="MN", reason="test")
    log.register_tip(
        "e2e.1", action_id=view.id, recording_path="/nonexistent.wav", callback_number="+31612340001"
    )
    return Desk(view.id, "+31612340001")


@pytest.fixture
def two_centralists(browser: Browser, panel_server: PanelServer, desk: Desk) -> Iterator[tuple[Page, Page]]:
    contexts: list[BrowserContext] = []
    pages = []
    errors: list[str] = []
    for username in ("anna", "bert"):
        context, _refused = offline_context(browser, panel_server.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto("/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()
        pages.append(page)
    try:
        yield pages[0], pages[1]
        assert errors == [], errors  # no script failed on the way
    finally:
        for context in contexts:
            context.close()


def _live(page: Page) -> None:
    """Wait until the page's live stream is subscribed."""
    expect(page.locator("html")).to_have_attribute("data-live", "open")


def test_a_sighting_entered_in_one_browser_appears_in_the_other_within_a_second(
    desk: Desk, two_centralists: tuple[Page, Page]
) -> None:
    anna, bert = two_centralists
    for page in (anna, bert):
        page.goto(f"/actions/{desk.action_id}")
        _live(page)
    map_box = anna.locator("#map").bounding_box()
    assert map_box is not None
    anna.locator("#map").click(position={"x": map_box["width"] / 2 + 40, "y": map_box["height"] / 2 - 30})
    expect(anna.get_by_label("Latitude")).not_to_have_value("")
    anna.get_by_label("Direction of travel").select_option("NE")
    anna.get_by_label("Reliability").select_option("confirmed")
    anna.get_by_label("Description").fill("Meisje in rode jas, loopt richting station")
    anna.get_by_role("button", name="Record sighting").click()
    expect(bert.locator("#sightings-list li", has_text="loopt richting station")).to_be_visible(timeout=1000)
    expect(bert.locator("path.sighting-marker")).to_have_count(1)
    expect(anna.locator("#sightings-list li", has_text="loopt richting station")).to_be_visible()
    expect(anna.get_by_label("Description")).to_have_value("")  # sent: the form is ready for the next


def test_a_refused_sighting_keeps_what_was_typed(desk: Desk, two_centralists: tuple[Page, Page]) -> None:
    anna, _ = two_centralists
    anna.goto(f"/actions/{desk.action_id}")
    anna.get_by_label("Description").fill("zonder plaats")
    anna.get_by_role("button", name="Record sighting").click()
    expect(anna.locator("#sighting-error")).to_contain_text("click on the map")
    expect(anna.get_by_label("Description")).to_have_value("zonder plaats")


def test_two_centralists_claim_the_same_tip_and_one_wins(
    desk: Desk, two_centralists: tuple[Page, Page]
) -> None:
    anna, bert = two_centralists
    for page in (anna, bert):
        page.goto("/worklist")
        _live(page)
        expect(
            page.locator("tr[data-item]", has_text=desk.tip_number).get_by_role("button", name="Claim")
        ).to_be_visible()
    # Both saw a free item; both click. Bert's list must not redraw in between (Anna's claim
    # reaches it live within a few hundred ms, and then his button is gone): hold his redraws.
    # Held by a flag rather than unrouted: an unroute while a redraw is in flight let Playwright
    # pass the already aborted request on to the context's handler, and the reload then hung.
    holding = {"redraws": True}
    bert.route(
        "**/worklist/list.part",
        lambda route: route.abort() if holding["redraws"] else route.fallback(),
    )
    anna.locator("tr[data-item]", has_text=desk.tip_number).get_by_role("button", name="Claim").click()
    bert.locator("tr[data-item]", has_text=desk.tip_number).get_by_role("button", name="Claim").click()
    expect(anna.locator("#worklist-message")).to_contain_text("is yours")
    expect(bert.locator("#worklist-message")).to_contain_text("anna is on call-back")
    holding["redraws"] = False
    bert.reload()
    _live(bert)
    anna_row = anna.locator("tr[data-item]", has_text=desk.tip_number)
    bert_row = bert.locator("tr[data-item]", has_text=desk.tip_number)
    expect(anna_row).to_have_attribute("data-state", "mine")
    expect(anna_row.get_by_role("button", name="Call back")).to_be_visible()
    expect(bert_row).to_have_attribute("data-state", "taken")
    expect(bert_row.get_by_role("button")).to_have_count(0)
    # Anna notes the result: the item leaves both lists (Bert's through the live stream).
    anna_row.get_by_label("Result").select_option("reached")
    anna_row.get_by_role("button", name="Done").click()
    expect(bert.locator("tr[data-item]", has_text=desk.tip_number)).to_have_count(0)
    expect(anna.locator("tr[id^=done-]", has_text=desk.tip_number)).to_contain_text("anna")


@pytest.mark.asterisk
def test_call_back_from_the_browser_rings_the_centralist_then_the_citizen(
    desk: Desk,
    two_centralists: tuple[Page, Page],
    bn_context: Context,
    start_asterisk: StartAsterisk,  # noqa: F811
    asterisk_install: AsteriskInstall,
    tmp_path: Path,
) -> None:
    anna, _ = two_centralists
    phone_port = free_port()
    settings = asterisk_settings(tmp_path / "asterisk", asterisk_install)
    start_asterisk(AsteriskPlan((centralist("c-mn-1", port=phone_port),), "MN"), settings)
    # The panel's click-to-call goes to this Asterisk (the composition root's AMI dialer).
    bn_context.__dict__["callback_dialer"] = AmiCallbackDialer(settings)
    bn_context.__dict__.pop("callbacks", None)
    centralist_phone = _traced_phone(tmp_path, "centralist", phone_port, "answer")
    citizen_phone = _traced_phone(tmp_path, "citizen", settings.asterisk.trunk_port, "answer-hangup-1500")
    try:
        anna.goto("/worklist")
        row = anna.locator("tr[data-item]", has_text=desk.tip_number)
        row.get_by_role("button", name="Claim").click()
        row.get_by_role("button", name="Call back").click()
        expect(anna.locator("#worklist-message")).to_contain_text("Your phone rings now")
        assert citizen_phone.wait(30) == 0
        assert centralist_phone.wait(15) == 0
    finally:
        for process in (centralist_phone, citizen_phone):
            if process.poll() is None:
                process.kill()
    rang_centralist, _ = _first_invite(tmp_path / "centralist.msg")
    rang_citizen, to_citizen = _first_invite(tmp_path / "citizen.msg")
    assert rang_centralist < rang_citizen and "INVITE sip:0612340001@" in to_citizen
    row.get_by_label("Result").select_option("no_answer")
    row.get_by_role("button", name="Done").click()
    expect(anna.locator("tr[id^=done-]", has_text=desk.tip_number)).to_contain_text("no answer")
    anna.goto(f"/actions/{desk.action_id}")
    expect(anna.locator("#calls-body tr", has_text="callback")).to_have_count(1)

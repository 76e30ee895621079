#!/usr/bin/env python3
"""Screenshots of the control panel for the README, taken from a small demo, offline.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--lang en] [--participants 20000]

Starts its own redis-server and a fresh SQLite database in a temporary folder, seeds the demo
(regions, centralists, a few thousand participants, the demo actions and an AMBER Alert),
serves the panel with waitress and makes calls the way Asterisk does (FastAGI + AMI events,
see testbed/telephony.py), then has Debian's headless Chromium save 1280x800 PNGs of the
dashboard, an action (top and calls), the new-action form started from an address and its
preview, the participants page and the AMBER Alert display. Map tiles are not fetched (no
internet in a control room, nor here): the maps show the region borders the panel serves
itself. Needs the test extras (Playwright).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import math
import re
import sys
import tempfile
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import func, select, update

from burgernet import db
from burgernet.actions import AreaSpec
from burgernet.callbacks import WorklistScope
from burgernet.calls import CallLog
from burgernet.db import session_scope
from burgernet.desk import AsyncDeskFeed, DeskCall
from burgernet.domain import AreaKind
from burgernet.live import AsyncLiveState
from burgernet.models import Centralist, Participant, User
from burgernet.secrets import create_missing_secrets
from burgernet.settings import load_settings
from burgernet.sightings import NewSighting
from callback_api import live_events
from callback_api.app import create_app
from callback_api.auth.services import create_user
from composition import demo, demo_history
from composition.context import Context
from composition.redis_server import ManagedRedis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the testbed package holds the helpers

from testbed.approvals import start_approved  # noqa: E402
from testbed.browser import PanelServer, launch_chromium, offline_context, png_size  # noqa: E402
from testbed.ports import port_block  # noqa: E402
from testbed.telephony import call_free_number, phones_change, run_telephony  # noqa: E402

USERNAME = "demo"
PASSWORD = "demo screenshots only"
AMERSFOORT = (5.3872, 52.1561)
A_COUNT = re.compile(r"\d")  # a recipient count is shown


def silent_wav(seconds: float = 2.0) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * int(8000 * seconds))
    return buffer.getvalue()


def seed(context: Context, participants: int) -> int:
    """The demo (regions, participants, actions) plus an AMBER Alert; returns the AMBER action's id."""
    settings = context.settings
    rng = np.random.default_rng(settings.demo.seed)
    with session_scope(context.sessions) as session:
        demo.seed_regions(session, rng)
        demo.seed_participants(session, participants, rng)
    demo.seed_actions(context.actions)
    amber = context.actions.create(
        action_type="amber_alert",
        title="Sanne (6) vermist in Amersfoort",
        description=(
            "Sanne is 6 jaar, 1,15 m lang, heeft blond krullend haar en draagt een gele regenjas en "
            "roze laarsjes. Zij is voor het laatst gezien om 15.40 uur bij het speelterrein in het "
            "Bisschopsweg-park."
        ),
        region_code="MN",
        area=AreaSpec(AreaKind.CIRCLE, centre=AMERSFOORT, radius_m=5000),
        team=["c-mn-1", "c-mn-2", "c-mn-3"],
        actor="demo",
        source="demo",
    )
    # An AMBER Alert starts only through a second person's approval (burgernet.approvals).
    start_approved(context, amber.id, requester="demo", approver="demo-approver", source="demo")
    with session_scope(context.sessions) as session:
        # A year of closed actions for the Reports page (after the demo's, which keep ids 1-5).
        demo_history.seed_history(session, rng)
    create_user(
        context.sessions, username=USERNAME, role="admin", password=PASSWORD, actor="demo", source="demo"
    )
    return amber.id


def callers_near(context: Context, lon: float, lat: float, radius_m: float, count: int) -> list[str]:
    """Phone numbers (national notation) of participants within ``radius_m`` of a point."""
    degrees_lat = radius_m / 111_320
    degrees_lon = degrees_lat / math.cos(math.radians(lat))
    with session_scope(context.sessions) as session:
        rows = session.execute(
            select(Participant.phone_e164, Participant.lon, Participant.lat)
            .where(Participant.opted_out.is_(False))
            .where(Participant.lon.between(lon - degrees_lon, lon + degrees_lon))
            .where(Participant.lat.between(lat - degrees_lat, lat + degrees_lat))
            .order_by(Participant.id)
        ).all()
    numbers = [
        number
        for number, at_lon, at_lat in rows
        if math.hypot((at_lon - lon) / degrees_lon, (at_lat - lat) / degrees_lat) < 1.0
    ][:count]
    if len(numbers) < count:
        raise RuntimeError(f"only {len(numbers)} participants near {lon}, {lat}: seed more participants")
    return ["0" + number.removeprefix("+31") for number in numbers]


def make_calls(context: Context, callers: list[str], first_id: int) -> None:
    """Calls about the missing girl in Utrecht: two answered, one left a tip."""
    answers: list[tuple[str | None, bytes | None]] = [
        ("c-mn-1", None),
        ("c-mn-2", None),
        (None, silent_wav()),
    ]
    for number, (caller, (answered_by, tip)) in enumerate(zip(callers, answers, strict=True)):
        run_telephony(
            call_free_number(
                context, caller, f"1732000{first_id + number}.1", answered_by=answered_by, tip_wav=tip
            )
        )


def log_in(page: Page) -> None:
    page.goto("/login")
    page.locator("#username").fill(USERNAME)
    page.locator("#password").fill(PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url("**/")


def save(page: Page, out: Path, name: str) -> Path:
    """A viewport screenshot, reduced to a 256-colour palette (a third of the size, same look)."""
    path = out / f"{name}.png"
    shot = Image.open(io.BytesIO(page.screenshot(animations="disabled")))
    shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


def take(context: Context, server: PanelServer, out: Path, lang: str, amber_id: int) -> list[Path]:
    utrecht = demo.UTRECHT
    callers = callers_near(context, *utrecht, radius_m=2500, count=5)  # action 1: 3 km
    run_telephony(phones_change(context, {"c-mn-1": "NOT_INUSE", "c-mn-2": "INUSE", "c-am-1": "NOT_INUSE"}))
    make_calls(context, callers[:3], first_id=1)
    saved: list[Path] = []
    with sync_playwright() as driver:
        browser = launch_chromium(driver)
        page_context, _refused = offline_context(
            browser, server.url, locale="nl-NL" if lang == "nl" else "en-GB"
        )
        page_context.set_default_timeout(15_000)
        page = page_context.new_page()
        log_in(page)

        # Dashboard, with two calls arriving while it is open (the live feed).
        with page.expect_response(lambda response: response.url.endswith("/events")):
            page.goto("/")
        run_telephony(phones_change(context, {"c-ro-1": "NOT_INUSE", "c-ro-2": "UNAVAILABLE"}))
        make_calls(context, callers[3:5] + callers[:1], first_id=11)
        expect(page.locator("#feed li")).to_have_count(9)  # per call: routed, answered or tip, ended
        expect(page.locator("#action-list li")).to_have_count(4)
        page.wait_for_timeout(500)  # the map's region borders
        saved.append(save(page, out, "dashboard"))

        # The missing girl: the calls, the tip, the timeline.
        page.goto("/actions/1")
        expect(page.locator("#recipients")).to_have_text(A_COUNT)
        page.wait_for_timeout(500)
        saved.append(save(page, out, "action"))
        page.locator("#calls-title").evaluate(
            "heading => window.scrollTo(0, heading.getBoundingClientRect().top + window.scrollY - 16)"
        )
        saved.append(save(page, out, "action-calls"))
        # Closing it: the outcome from the fixed list, the internal note, the public result message.
        page.locator("#outcome_kind").select_option("solved_by_tip")
        page.locator("#outcome").fill("Tip van een buurman; gevonden bij het station")
        page.locator("#result_message").fill("Het meisje is terecht. Dank voor uw hulp!")
        page.locator("#outcome_kind").evaluate(
            "field => window.scrollTo(0, field.closest('form').getBoundingClientRect().top"
            " + window.scrollY - 16)"
        )
        saved.append(save(page, out, "action-close"))

        saved.extend(take_desk_work(context, browser, server, out, lang, callers, amber_id))
        saved.append(take_call_card(context, browser, server, out, lang, callers[0]))

        # A new action from an address: the search box, the type's template, the team, the preview.
        page.goto("/actions/new")
        page.locator("#place-search").fill("3511 ah 3")
        page.locator("#place-search").press("Enter")
        expect(page.locator("#place-status")).to_contain_text("Oudegracht 3")
        page.locator("#title").fill("Vermist meisje, 8 jaar, rode jas")
        page.locator("#description").fill("Rode jas, blauwe rugzak. Laatst gezien bij het station.")
        page.locator("#member-c-mn-1").check()
        page.locator("#member-c-mn-2").check()
        expect(page.locator("#preview .message")).to_have_count(6)
        expect(page.locator("#recipient-count")).to_contain_text(A_COUNT)
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(500)
        saved.append(save(page, out, "new-action"))
        page.locator("#step-preview").evaluate(
            "box => window.scrollTo(0, box.getBoundingClientRect().top + window.scrollY - 16)"
        )
        saved.append(save(page, out, "new-action-preview"))

        # Participants: a search by the postcode area where most of them live.
        with session_scope(context.sessions) as session:
            pc4 = func.substr(Participant.postcode, 1, 4)
            busiest = session.scalar(select(pc4).group_by(pc4).order_by(func.count().desc(), pc4).limit(1))
        page.goto(f"/people?q={busiest}")
        expect(page.locator("tbody tr").first).to_be_visible()
        saved.append(save(page, out, "participants"))

        # The AMBER Alert display for screens in public places.
        page.goto(f"/amber/{amber_id}")
        expect(page.locator("article.active")).to_be_visible()
        saved.append(save(page, out, "amber-display"))

        # Reports: the last twelve months of the demo history, charts drawn by Chart.js.
        page.set_viewport_size({"width": 1280, "height": 1060})  # the figures and the charts whole
        page.goto("/reports")
        for chart in ("chart-trend", "chart-hours", "chart-regions", "chart-speed"):
            expect(page.locator(f"#{chart}")).to_have_attribute("data-drawn", "true")
        page.locator(".report-meta").evaluate(
            "box => window.scrollTo(0, box.getBoundingClientRect().top + window.scrollY - 16)"
        )
        saved.append(save(page, out, "reports"))
        page_context.close()
        browser.close()
    return saved


def take_desk_work(
    context: Context,
    browser: Browser,
    server: PanelServer,
    out: Path,
    lang: str,
    callers: list[str],
    amber_id: int,
) -> list[Path]:
    """The worklist (claims, an AMBER tip first, a failure-path tip, a call that found nobody) and
    the missing girl's sightings on the map, as centralist c-mn-1 sees them."""
    now = datetime.now(UTC)
    log = CallLog(context.sessions)
    tips = context.settings.recordings_dir / "tips"
    tips.mkdir(parents=True, exist_ok=True)
    for unique_id, caller, action_id in (
        ("1732000901.1", "+31622418837", amber_id),
        ("1732000902.1", "+31302345678", None),
    ):
        log.open_call(unique_id, caller_number=caller, action_id=action_id, region_code="MN", reason="demo")
        (tips / f"{unique_id}.wav").write_bytes(silent_wav())
        log.register_tip(
            unique_id,
            action_id=action_id,
            recording_path=str(tips / f"{unique_id}.wav"),
            callback_number=caller,
        )
    run_telephony(
        call_free_number(context, "0653091274", "1732000903.1", answered_by=None, outcome="abandoned")
    )
    for username, endpoint in (("anna", "c-mn-1"), ("bert", "c-mn-2")):
        create_user(
            context.sessions,
            username=username,
            role="centralist",
            password=PASSWORD,
            actor="demo",
            source="demo",
        )
        with session_scope(context.sessions) as session:
            centralist_id = session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == endpoint))
            session.execute(update(User).where(User.username == username).values(centralist_id=centralist_id))
    items = context.callbacks.worklist(WorklistScope.everything())
    context.callbacks.claim(items[1].id, WorklistScope.everything(), actor="bert", source="demo")
    context.callbacks.claim(items[0].id, WorklistScope.everything(), actor="anna", source="demo")
    seen = [
        (
            50,
            52.0952,
            5.1105,
            "SW",
            "possible",
            "Meisje met rode jas bij de bushalte, liep met een oudere man",
        ),
        (
            32,
            52.0921,
            5.1148,
            "E",
            "probable",
            "Kind in rode jas op de fiets achterop, richting Catharijnesingel",
        ),
        (12, 52.0889, 5.1203, "NE", "confirmed", "Door de beller herkend bij de ingang van het station"),
    ]
    for minutes, lat, lon, direction, reliability, text in seen:
        context.sightings.record(
            1,
            NewSighting(now - timedelta(minutes=minutes), lat, lon, reliability, text, direction),
            actor="anna",
            source="demo",
        )
    saved: list[Path] = []
    page_context, _refused = offline_context(browser, server.url, locale="nl-NL" if lang == "nl" else "en-GB")
    page_context.set_default_timeout(15_000)
    page = page_context.new_page()
    page.goto("/login")
    page.locator("#username").fill("anna")
    page.locator("#password").fill(PASSWORD)
    page.locator("form button[type=submit]").last.click()
    expect(page.locator(".who")).to_contain_text("anna")
    page.goto("/worklist")
    expect(page.locator("tr[data-item]")).to_have_count(len(items))
    expect(page.locator("html")).to_have_attribute("data-live", "open")
    saved.append(save(page, out, "worklist"))
    page.goto("/actions/1")
    expect(page.locator("path.sighting-marker")).to_have_count(len(seen))
    box = page.locator("#map").bounding_box()
    assert box is not None
    page.locator("#map").click(position={"x": box["width"] / 2 + 140, "y": box["height"] / 2 + 90})
    page.locator("#sighting-description").fill("Meisje stapt in een grijze auto")
    page.locator("path.sighting-marker").first.click()  # the newest sighting's popup
    page.locator("#map-title").evaluate(
        "heading => window.scrollTo(0, heading.getBoundingClientRect().top + window.scrollY - 16)"
    )
    page.wait_for_timeout(300)
    saved.append(save(page, out, "sightings-map"))
    page_context.close()
    return saved


def take_call_card(
    context: Context, browser: Browser, server: PanelServer, out: Path, lang: str, caller: str
) -> Path:
    """The call card on anna's desk (c-mn-1) while a call about the missing girl rings her phone:
    announced as FastAGI announces a routing decision (burgernet/desk.py)."""
    number = "+31" + caller[1:]
    with session_scope(context.sessions) as session:
        participant_id = session.scalar(select(Participant.id).where(Participant.phone_e164 == number))
    page_context, _refused = offline_context(browser, server.url, locale="nl-NL" if lang == "nl" else "en-GB")
    page_context.set_default_timeout(15_000)
    page = page_context.new_page()
    page.goto("/login")
    page.locator("#username").fill("anna")
    page.locator("#password").fill(PASSWORD)
    page.locator("form button[type=submit]").last.click()
    expect(page.locator("#desk-status")).to_contain_text("c-mn-1")  # a centralist lands on the desk
    page.wait_for_timeout(700)  # the live stream is open
    reason = "caller inside the area of action 1"
    call = DeskCall("1732000990.1", 1, "", number, participant_id, reason, "inbound")

    async def announce() -> None:
        live = AsyncLiveState.from_url(context.settings.redis.url, context.live.keys.prefix)
        try:
            title = context.actions.get(1).title
            await AsyncDeskFeed(live).route_decided(dataclasses.replace(call, title=title), ("c-mn-1",))
        finally:
            await live.close()

    run_telephony(announce())
    expect(page.locator("article.call-card")).to_have_attribute("data-loaded", "yes")
    page.wait_for_timeout(700)  # the small map's region borders and area
    path = save(page, out, "call-card")
    page_context.close()
    return path


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="where the PNGs go")
    parser.add_argument("--lang", choices=("en", "nl"), default="en", help="panel language (browser locale)")
    parser.add_argument("--participants", type=int, default=20_000, help="demo participants to seed")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    live_events.HEARTBEAT_SECONDS = 0.5  # open live feeds end soon after the browser closes

    with tempfile.TemporaryDirectory(prefix="burgernet-shots-") as folder:
        tmp = Path(folder)
        redis = ManagedRedis(port_block(), tmp / "redis")
        redis.start()
        try:
            url = f"sqlite:///{tmp / 'burgernet.db'}"
            db.upgrade(url)
            create_missing_secrets(tmp)  # the panel's session key, among others
            settings = load_settings(
                data_dir=tmp, database={"url": url}, redis={"url": redis.url, "key_prefix": "shots:"}
            )
            context = Context(settings)
            try:
                amber_id = seed(context, args.participants)
                with PanelServer(create_app(settings, context=context), port_block()) as server:
                    saved = take(context, server, args.out, args.lang, amber_id)
            finally:
                context.close()
        finally:
            redis.stop()
    for path in saved:
        width, height = png_size(path)
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {width}x{height}, "
            f"{path.stat().st_size // 1024} KiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

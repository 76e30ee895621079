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
import io
import math
import re
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import func, select

from burgernet import db
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Participant
from burgernet.secrets import create_missing_secrets
from burgernet.settings import load_settings
from callback_api.app import create_app
from callback_api.auth.services import create_user
from callback_api.dashboard import views as dashboard
from composition import demo
from composition.context import Context
from composition.redis_server import ManagedRedis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the testbed package holds the helpers

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
    context.actions.start(amber.id, actor="demo", source="demo")
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
        page_context.close()
        browser.close()
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="where the PNGs go")
    parser.add_argument("--lang", choices=("en", "nl"), default="en", help="panel language (browser locale)")
    parser.add_argument("--participants", type=int, default=20_000, help="demo participants to seed")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dashboard.HEARTBEAT_SECONDS = 0.5  # open live feeds end soon after the browser closes

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

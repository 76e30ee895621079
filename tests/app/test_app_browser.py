"""The participant app in Chromium (Debian's, through Playwright), against the real panel server.

A persistent profile (push is refused in incognito-like contexts), notifications granted, the
geolocation of a place inside the active action's area. ``pushManager.subscribe`` never
resolves in headless Chromium (no push service), so the page's PushManager is replaced by one
that returns a subscription with real keys; the server stores it through the real endpoint.
Pushes reach the service worker through the DevTools protocol (``ServiceWorker.
deliverPushMessage``) with payloads built by the real builder (``burgernet.app_alerts``), and
what the worker showed is read back with ``registration.getNotifications()``.
"""

# ruff: noqa: E501  (the device's decisions are one table in JavaScript: one case a line)
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, CDPSession, FilePayload, Page, Playwright, Route, expect
from sqlalchemy import select

from burgernet.actions import AreaSpec
from burgernet.app_alerts import action_payload
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Action, PushSubscription, Sighting
from burgernet.push_subscriptions import cell_box
from callback_api.photos import has_metadata
from composition.context import Context
from testbed.browser import PanelServer
from testbed.ports import free_port
from tests.app.conftest import INSIDE, FakeDevice, World, fake_device, jpeg_with_gps, phone_context
from tests.e2e.test_accessibility import AXE, axe_violations, blocking

# Where the geolocation puts the phone: digits no other row of the database has, so a search
# of the whole database for them finds a leak of the device's place.
HERE = INSIDE
MAASTRICHT = (5.6909, 50.8514)  # lon, lat: an action far from every place of the phone
SCREENSHOTS_ENV = "BURGERNET_APP_SCREENSHOTS"  # a folder: the README's screenshots are written there

_PUSH_STUB = """
(() => {
  if (typeof PushManager === "undefined" || typeof localStorage === "undefined") { return; }
  const device = %s;
  const KEY = "burgernet-test-subscription";
  const subscription = {
    endpoint: device.endpoint, expirationTime: null, options: { userVisibleOnly: true },
    toJSON() { return { endpoint: device.endpoint, expirationTime: null, keys: device.keys }; },
    getKey() { return null; },
    unsubscribe() { localStorage.removeItem(KEY); return Promise.resolve(true); }
  };
  PushManager.prototype.subscribe = function (options) {
    localStorage.setItem(KEY, JSON.stringify({
      userVisibleOnly: options.userVisibleOnly, keyBytes: new Uint8Array(options.applicationServerKey).length
    }));
    return Promise.resolve(subscription);
  };
  PushManager.prototype.getSubscription = function () {
    return Promise.resolve(localStorage.getItem(KEY) ? subscription : null);
  };
})();
"""


@pytest.fixture
def server(app: Flask, world: World) -> Iterator[PanelServer]:
    with PanelServer(app, free_port()) as running:
        yield running


class Phone:
    def __init__(self, context: BrowserContext, server: PanelServer, device: FakeDevice) -> None:
        self.context = context
        self.server = server
        self.device = device
        self.page = context.pages[0] if context.pages else context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self._cdp: CDPSession | None = None
        self._registrations: dict[str, dict[str, Any]] = {}
        self.offline = False  # True: the server cannot be reached (the browser refuses it)

    def open(self, path: str = "/app/") -> Page:
        self.page.goto(path)
        self.page.evaluate("BurgernetApp.ready.then(() => true)")
        # Controlled by the worker (it claims the page when it activates). Polled from here:
        # wait_for_function evaluates a string, which the app's CSP (no 'unsafe-eval') refuses.
        deadline = time.monotonic() + 10
        while not self.page.evaluate("navigator.serviceWorker.controller !== null"):
            assert time.monotonic() < deadline, "the service worker never took the page"
            self.page.wait_for_timeout(50)
        return self.page

    def registration_id(self) -> str:
        if self._cdp is None:
            self._cdp = self.context.new_cdp_session(self.page)
            self._cdp.on(
                "ServiceWorker.workerRegistrationUpdated",
                lambda event: self._registrations.update(
                    {r["registrationId"]: r for r in event["registrations"]}
                ),
            )
            self._cdp.send("ServiceWorker.enable")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = [
                r
                for r in self._registrations.values()
                if r["scopeURL"].endswith("/app/") and not r["isDeleted"]
            ]
            if found:
                return str(found[0]["registrationId"])
            self.page.wait_for_timeout(100)
        raise AssertionError(f"no service worker registration for /app/: {self._registrations}")

    def push(self, payload: bytes | str) -> dict[str, Any]:
        """Deliver a push to the worker and wait for its decision (kept in IndexedDB)."""
        registration = self.registration_id()
        self.page.evaluate("BurgernetStore.setSetting('last_decision', null)")
        assert self._cdp is not None
        self._cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": self.server.url,
                "registrationId": registration,
                "data": payload.decode() if isinstance(payload, bytes) else payload,
            },
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            decision: dict[str, Any] | None = self.page.evaluate("BurgernetStore.setting('last_decision')")
            if decision:
                return decision
            self.page.wait_for_timeout(50)
        raise AssertionError("the service worker decided nothing within 10 s")

    def notifications(self) -> list[dict[str, Any]]:
        shown: list[dict[str, Any]] = self.page.evaluate(
            """navigator.serviceWorker.ready.then(r => r.getNotifications()).then(list => list.map(n => ({
                 title: n.title, body: n.body, tag: n.tag, data: n.data,
                 actions: n.actions.map(a => ({ action: a.action, title: a.title })) })))"""
        )
        return shown


@pytest.fixture
def phone(playwright: Playwright, server: PanelServer, tmp_path: Path) -> Iterator[Phone]:
    device = fake_device()
    context = phone_context(playwright, tmp_path / "profile", server.url)
    context.set_default_timeout(10_000)
    keys = {"p256dh": device.p256dh, "auth": device.auth}
    context.add_init_script(_PUSH_STUB % json.dumps({"endpoint": device.endpoint, "keys": keys}))
    context.add_init_script(path=str(AXE))
    refused: list[str] = []

    def only_the_server(route: Route) -> None:
        if route.request.url.startswith(server.url) and not opened.offline:
            route.continue_()
        else:
            refused.append(route.request.url)  # map tiles: the test runs offline
            route.abort("blockedbyclient")

    opened = Phone(context, server, device)
    context.route("**/*", only_the_server)
    try:
        yield opened
    finally:
        context.close()


def payload(context: Context, action_id: int, kind: str = "alert", **extra: Any) -> bytes:
    with session_scope(context.sessions) as session:
        action = session.get(Action, action_id)
        assert action is not None
        return action_payload(
            action,
            kind=kind,
            message=extra.pop("message", "Wie heeft haar gezien?"),
            free_number="08000011",
            session=session,
            **extra,
        )


def far_action(context: Context) -> int:
    view = context.actions.create(
        action_type="suspect",
        title="Verdachte in Maastricht",
        region_code="LB",
        area=AreaSpec(AreaKind.CIRCLE, centre=MAASTRICHT, radius_m=2000),
        team=["c-lb-1"],
        actor="test",
        source="test",
    )
    context.actions.start(view.id, actor="test", source="test")
    return view.id


def database_text(context: Context) -> str:
    """Every value in the SQLite database, as text (to look for a leak of the phone's place)."""
    path = context.settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        return "\n".join(connection.iterdump())


def save_screenshot(
    page: Page, name: str, tmp_path: Path, selector: str | None = None, full_page: bool = True
) -> Path:
    path = tmp_path / name
    if selector:
        page.locator(selector).screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=full_page)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    folder = os.environ.get(SCREENSHOTS_ENV)
    if folder:
        shutil.copyfile(path, Path(folder) / name)
    return path


# --- the device's decisions (match.js), as the service worker makes them --------------------------
MATCH_CASES = r"""
() => {
  const M = BurgernetMatch;
  const square = (x0, y0, x1, y1) => [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]];
  const donut = { type: "Polygon", coordinates: [square(5.0, 52.0, 5.2, 52.2), square(5.08, 52.08, 5.12, 52.12)] };
  const multi = { type: "MultiPolygon", coordinates: [donut.coordinates, [square(6.0, 53.0, 6.1, 53.1)]] };
  const place = (lat, lon, slot) => ({ lat, lon, slot: slot || "home" });
  const alert = (area, id) => ({ v: 1, kind: "alert", action: { id: id || 7, code: "4821", type: "missing_child", title: "Sanne", area }, message: "Sanne (8) is vermist", free_number: "08000011" });
  const circle = { kind: "circle", lat: 52.0907, lon: 5.1214, radius_m: 3000 };
  const pcs = { kind: "postcodes", pc4: [{ code: "3511", lat: 52.09, lon: 5.12, geojson: null },
                                         { code: "1011", lat: 52.37, lon: 4.90, geojson: { type: "Polygon", coordinates: [square(4.89, 52.36, 4.91, 52.38)] } }] };
  const twoKm = 2400 / 111195, threeKm = 2600 / 111195;  // degrees of latitude
  return {
    utrechtAmsterdamKm: Math.round(M.haversine(52.0907, 5.1214, 52.3676, 4.9041) / 1000),
    circleIn: M.placeInArea(place(52.10, 5.13), circle),
    circleOut: M.placeInArea(place(52.20, 5.13), circle),
    donutRing: M.inGeometry(5.05, 52.05, donut),
    donutHole: M.inGeometry(5.10, 52.10, donut),
    donutOutside: M.inGeometry(5.30, 52.10, donut),
    multiSecond: M.inGeometry(6.05, 53.05, multi),
    multiHole: M.inGeometry(5.10, 52.10, multi),
    feature: M.inGeometry(5.05, 52.05, { type: "Feature", geometry: donut }),
    line: M.inGeometry(5.05, 52.05, { type: "LineString", coordinates: [[5, 52], [5.1, 52.1]] }),
    pcFallbackIn: M.placeInArea(place(52.09 + twoKm, 5.12), pcs),
    pcFallbackOut: M.placeInArea(place(52.09 + threeKm, 5.12), pcs),
    pcPolygon: M.placeInArea(place(52.37, 4.90), pcs),
    national: M.placeInArea(place(50.9, 5.7), { kind: "national" }),
    unknownKind: M.placeInArea(place(52.09, 5.12), { kind: "triangle" }),
    inside: M.decide(alert(circle), [place(53.2, 6.5, "work"), place(52.10, 5.13, "current")], []),
    outside: M.decide(alert(circle), [place(53.2, 6.5, "work")], []),
    noPlaces: M.decide(alert(circle), [], []),
    nationalNoPlaces: M.decide(alert({ kind: "national" }), [], []),
    fetch: M.decide(alert({ kind: "fetch" }), [place(52.10, 5.13)], []),
    updateUnseen: M.decide(Object.assign(alert(circle), { kind: "update" }), [place(52.10, 5.13)], []),
    updateSeen: M.decide(Object.assign(alert(circle), { kind: "update" }), [], [7]),
    resultSeen: M.decide(Object.assign(alert(circle), { kind: "result" }), [], [7]),
    reply: M.decide(Object.assign(alert(circle), { kind: "reply", sighting_id: 3 }), [], []),
    invalid: M.decide({ v: 2, kind: "alert" }, [place(52.1, 5.1)], []),
    nothing: M.decide(null, [], []),
    geohash: M.geohash(57.64911, 10.40744, 11),
    cellOne: M.cellFor([place(52.0907, 5.1214), place(52.0950, 5.1250)]),
    cellTwo: M.cellFor([place(52.0907, 5.1214), place(53.2194, 6.5665)]),
    cellNone: M.cellFor([]),
    nl: M.notification(alert(circle), "nl", "https://example.nl"),
    en: M.notification(alert(circle), "en", ""),
    replyNl: M.notification(Object.assign(alert(circle), { kind: "reply", sighting_id: 3, message: "Welke kant op?" }), "nl", ""),
    resultNl: M.notification(Object.assign(alert(circle), { kind: "result", message: "Gevonden" }), "nl", ""),
    clickCall: M.clickTarget("call", { free_number: "08000011", code: "4821", action_id: 7 }),
    clickCallNoCode: M.clickTarget("call", { free_number: "08000011", code: null, action_id: 7 }),
    clickSighting: M.clickTarget("sighting", { action_id: 7 }),
    clickAnswer: M.clickTarget("", { kind: "reply", action_id: 7, sighting_id: 3 }),
    clickBody: M.clickTarget("", { kind: "alert", action_id: 7 }),
    language: [M.chooseLanguage(["de-DE", "en-US", "nl"]), M.chooseLanguage(["fr"]), M.chooseLanguage(["nl-BE", "en"])]
  };
}
"""


def test_every_decision_of_the_service_worker(phone: Phone) -> None:
    page = phone.open()
    result = page.evaluate(MATCH_CASES)
    assert 34 <= result["utrechtAmsterdamKm"] <= 36
    assert (result["circleIn"], result["circleOut"]) == (True, False)
    assert (result["donutRing"], result["donutHole"], result["donutOutside"]) == (True, False, False)
    assert (result["multiSecond"], result["multiHole"], result["feature"], result["line"]) == (
        True,
        False,
        True,
        False,
    )
    assert (result["pcFallbackIn"], result["pcFallbackOut"], result["pcPolygon"]) == (True, False, True)
    assert (result["national"], result["unknownKind"]) == (True, False)
    assert result["inside"] == {"show": True, "reason": "inside", "places": ["current"]}
    assert result["outside"] == {"show": False, "reason": "outside", "places": []}
    assert result["noPlaces"]["reason"] == "no-places" and not result["noPlaces"]["show"]
    assert result["nationalNoPlaces"]["show"] is True
    assert result["fetch"] == {"show": False, "reason": "fetch", "places": []}
    assert (result["updateUnseen"]["show"], result["updateSeen"]["show"], result["resultSeen"]["show"]) == (
        False,
        True,
        True,
    )
    assert result["reply"]["show"] is True
    assert result["invalid"]["reason"] == "invalid" and result["nothing"]["reason"] == "invalid"
    assert result["geohash"] == "u4pruydqqvj"  # the reference example of the geohash format
    assert result["cellOne"] is not None and len(result["cellOne"]) == 4 and result["cellTwo"] is None
    assert result["cellNone"] is None
    # The device's cell is the server's cell: the box A's code decodes holds the place.
    min_lon, min_lat, max_lon, max_lat = cell_box(result["cellOne"])
    assert min_lat <= 52.0907 <= max_lat and min_lon <= 5.1214 <= max_lon

    nl = result["nl"]
    assert nl["title"] == "Vermist kind: Sanne"
    assert (
        nl["options"]["body"] == "Sanne (8) is vermist\nIets gezien? Bel 0800-0011 en toets actiecode 4821."
    )
    assert [a["title"] for a in nl["options"]["actions"]] == ["Bel 0800-0011", "Ik zag iets"]
    assert nl["options"]["icon"] == "https://example.nl/app/icons/192.png"
    assert nl["options"]["data"] == {
        "kind": "alert",
        "action_id": 7,
        "code": "4821",
        "free_number": "08000011",
        "sighting_id": None,
    }
    assert result["en"]["title"] == "Missing child: Sanne"
    assert [a["title"] for a in result["en"]["options"]["actions"]] == ["Call 0800-0011", "I saw something"]
    assert result["replyNl"]["title"] == "Een vraag van de meldkamer"
    assert [a["action"] for a in result["replyNl"]["options"]["actions"]] == ["answer", "call"]
    assert result["resultNl"]["title"] == "Afloop: Sanne" and result["resultNl"]["options"]["actions"] == []
    assert result["clickCall"] == "tel:08000011,4821" and result["clickCallNoCode"] == "tel:08000011"
    assert result["clickSighting"] == "/app/#/sighting/7"
    assert result["clickAnswer"] == "/app/#/sighting/7/reply/3"
    assert result["clickBody"] == "/app/#/alert/7"
    assert result["language"] == ["en", "nl", "nl"]
    assert phone.errors == []


# --- places, subscribing, pushes ---------------------------------------------------------------------
def test_places_stay_on_the_phone_and_only_pushes_for_them_are_shown(
    phone: Phone, bn_context: Context, world: World, tmp_path: Path
) -> None:
    page = phone.open()
    expect(page.locator("#home-title")).to_have_text("Burgernet op deze telefoon")
    # Current location (the browser asks; granted), home by postcode.
    page.locator("[data-slot=current] [data-do=locate]").click()
    expect(page.locator("[data-slot=current] .where")).to_contain_text("52.0948, 5.1274")
    page.locator("#pc-home").fill("3511 AH")
    page.locator("[data-slot=home] form button").click()
    expect(page.locator("[data-slot=home] .where")).to_contain_text("3511 AH")
    places = page.evaluate("BurgernetStore.places()")
    assert sorted(p["slot"] for p in places) == ["current", "home"]
    current = next(p for p in places if p["slot"] == "current")
    assert (current["lat"], current["lon"], current["how"]) == (HERE[0], HERE[1], "gps")

    # Alerts on: permission, the server's key, the subscription with the device's own cell.
    page.locator("#push-on").click()
    expect(page.locator("#push-status")).to_have_text("Meldingen staan aan.")
    asked = json.loads(page.evaluate("localStorage.getItem('burgernet-test-subscription')"))
    assert asked == {"userVisibleOnly": True, "keyBytes": 65}
    with session_scope(bn_context.sessions) as session:
        stored = session.scalars(select(PushSubscription)).all()
        assert [s.endpoint for s in stored] == [phone.device.endpoint]
        cell = stored[0].cell
        assert (stored[0].p256dh, stored[0].lang) == (phone.device.p256dh, "nl")
    assert cell is not None and cell == page.evaluate("BurgernetStore.places().then(BurgernetMatch.cellFor)")
    min_lon, min_lat, max_lon, max_lat = cell_box(cell)
    assert min_lat <= HERE[0] <= max_lat and min_lon <= HERE[1] <= max_lon
    # The server knows the cell, never the place.
    dump = database_text(bn_context)
    assert "52.094817" not in dump and "5.127391" not in dump

    # getNotifications() works here: nothing yet, then exactly what the worker showed.
    assert phone.notifications() == []
    decision = phone.push(payload(bn_context, world.active_id))
    assert (decision["show"], decision["reason"]) == (True, "inside")
    assert sorted(decision["places"]) == ["current", "home"]
    shown = phone.notifications()
    assert len(shown) == 1
    assert shown[0]["title"] == "Vermist kind: Vermist meisje"
    assert [a["title"] for a in shown[0]["actions"]] == ["Bel 0800-0011", "Ik zag iets"]
    assert shown[0]["data"]["action_id"] == world.active_id

    # An action far from both places: no notification.
    far = far_action(bn_context)
    decision = phone.push(payload(bn_context, far))
    assert (decision["show"], decision["reason"]) == (False, "outside")
    # Its update neither: this phone never showed its alert. The near one's update: yes.
    assert phone.push(payload(bn_context, far, kind="update"))["reason"] == "not-alerted"
    assert phone.push(payload(bn_context, world.active_id, kind="update", message="Ze droeg een gele tas"))[
        "show"
    ]
    titles = [n["title"] for n in phone.notifications()]
    assert titles == ["Update: Vermist meisje"]  # the same tag: the update replaces the alert
    # Too large for a push: the worker fetches the area and still decides on the device.
    too_big = json.loads(payload(bn_context, world.active_id))
    too_big["action"]["area"] = {"kind": "fetch"}
    decision = phone.push(json.dumps(too_big))
    assert (decision["show"], decision["reason"]) == (True, "inside")
    assert phone.push("not json")["reason"] == "invalid"

    # The app lists what was shown, exactly as the notifications said it.
    page.reload()
    page.evaluate("BurgernetApp.ready.then(() => true)")
    cards = page.locator("#recent .notification")
    expect(cards.first.locator("h3")).to_have_text("Vermist kind: Vermist meisje")
    expect(cards.first.locator(".buttons a").first).to_have_attribute(
        "href", "tel:08000011" + _code_suffix(bn_context, world.active_id)
    )
    expect(cards.first.locator(".buttons a").nth(1)).to_have_attribute(
        "href", f"#/sighting/{world.active_id}"
    )
    assert page.evaluate("BurgernetStore.shownIds()") == [world.active_id]
    # The README's picture: the alerts and the places (the recent alerts are the other one).
    bottom = page.evaluate(
        "Math.ceil(document.querySelector('#places').closest('.card').getBoundingClientRect().bottom + window.scrollY)"
    )
    page.set_viewport_size({"width": 412, "height": bottom + 16})
    page.evaluate("window.scrollTo(0, 0)")
    save_screenshot(page, "app.png", tmp_path, full_page=False)
    save_screenshot(page, "app-notification.png", tmp_path, "#recent > li:first-child")
    assert phone.errors == []


def _code_suffix(context: Context, action_id: int) -> str:
    with session_scope(context.sessions) as session:
        code = session.scalar(select(Action.action_code).where(Action.id == action_id))
    return f",{code}" if code else ""


def test_a_sighting_from_the_app_reaches_the_action_with_its_reply_channel(
    phone: Phone, bn_context: Context, world: World
) -> None:
    page = phone.open()
    page.locator("#push-on").click()
    expect(page.locator("#push-status")).to_contain_text("Meldingen staan aan.")
    page.goto(f"/app/#/sighting/{world.active_id}")
    expect(page.locator("#sighting-action .action-title")).to_have_text("Vermist meisje")
    page.locator("#s-text").fill("Meisje in rode jas bij de Dom, liep richting Neude")
    page.locator("#s-when").select_option("15")
    page.locator("#s-locate").click()
    expect(page.locator("#s-place")).to_contain_text("52.09482, 5.12739")
    photo: FilePayload = {"name": "foto.jpg", "mimeType": "image/jpeg", "buffer": jpeg_with_gps()}
    page.locator("#s-photo").set_input_files(files=[photo])
    page.locator("#sighting-form button[type=submit]").click()
    expect(page.locator("#sighting-done")).to_be_visible()
    expect(page.locator("#sighting-done-text")).to_contain_text("De meldkamer heeft uw waarneming")

    views = bn_context.sightings.for_action(world.active_id)
    assert len(views) == 1
    view = views[0]
    assert (view.source, view.reliability, view.has_photo, view.has_reply_channel) == (
        "app",
        "possible",
        True,
        True,
    )
    assert (view.lat, view.lon) == HERE
    assert view.description == "Meisje in rode jas bij de Dom, liep richting Neude"
    with session_scope(bn_context.sessions) as session:
        row = session.scalar(select(Sighting))
        subscription = session.scalar(select(PushSubscription))
        assert row is not None and subscription is not None
        assert row.push_subscription_id == subscription.id
        assert row.photo_path is not None and not has_metadata(Path(row.photo_path))
    assert page.evaluate("BurgernetStore.sent()")[0]["id"] == view.id

    # The control room asks back: the reply is shown, and answering opens the form with it.
    decision = phone.push(
        payload(bn_context, world.active_id, kind="reply", message="Droeg ze een tas?", sighting_id=view.id)
    )
    assert (decision["show"], decision["reason"]) == (True, "reply")
    reply = [n for n in phone.notifications() if n["data"]["kind"] == "reply"]
    assert (
        reply
        and reply[0]["title"] == "Een vraag van de meldkamer"
        and reply[0]["body"] == "Droeg ze een tas?"
    )
    page.goto(f"/app/#/sighting/{world.active_id}/reply/{view.id}")
    expect(page.locator("#reply-question")).to_have_text("De meldkamer vraagt: Droeg ze een tas?")
    assert phone.errors == []


def test_a_closed_action_says_call_instead(phone: Phone, bn_context: Context, world: World) -> None:
    bn_context.actions.close(
        world.active_id, result_message="Gevonden", outcome_kind="found_otherwise", actor="t"
    )
    page = phone.open(f"/app/#/sighting/{world.active_id}")
    expect(page.locator("#sighting-action")).to_contain_text(
        "Deze actie is afgelopen. Zag u iets, bel dan 0800-0011."
    )
    expect(page.locator("#sighting-form")).to_be_hidden()


def test_the_app_works_offline_with_its_places(phone: Phone) -> None:
    page = phone.open()
    page.locator("[data-slot=current] [data-do=locate]").click()
    expect(page.locator("[data-slot=current] .where")).to_contain_text("52.0948")
    phone.context.set_offline(True)
    phone.offline = True
    try:
        page.reload()
        page.evaluate("BurgernetApp.ready.then(() => true)")
        expect(page.locator("#offline")).to_be_visible()
        expect(page.locator("[data-slot=current] .where")).to_contain_text("52.0948, 5.1274")
        page.locator("#pc-home").fill("3511")
        page.locator("[data-slot=home] form button").click()
        expect(page.locator("#places-status")).to_have_text("Geen verbinding. Probeer het later opnieuw.")
    finally:
        phone.offline = False
        phone.context.set_offline(False)


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_the_app_is_accessible_in_both_languages(phone: Phone, world: World, lang: str) -> None:
    page = phone.open()
    page.locator(f"[data-lang={lang}]").click()
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("#push-on")).to_have_text("Meldingen aanzetten" if lang == "nl" else "Turn on alerts")
    assert blocking(axe_violations(page)) == []
    page.goto(f"/app/#/sighting/{world.active_id}")
    page.reload()
    page.evaluate("BurgernetApp.ready.then(() => true)")
    expect(page.locator("#sighting-action .action-title")).to_have_text("Vermist meisje")
    assert page.evaluate("BurgernetApp.language()") == lang  # the choice stays on the device
    assert blocking(axe_violations(page)) == []


def _polygon_action(context: Context, title: str, rings: list[list[tuple[float, float]]]) -> int:
    geometry = {"type": "Polygon", "coordinates": [[list(corner) for corner in ring] for ring in rings]}
    view = context.actions.create(
        action_type="vehicle",
        title=title,
        region_code="MN",
        area=AreaSpec(AreaKind.POLYGON, geojson=json.dumps(geometry)),
        team=["c-mn-1"],
        actor="test",
        source="test",
    )
    context.actions.start(view.id, actor="test", source="test")
    return view.id


def _box(west: float, south: float, east: float, north: float) -> list[tuple[float, float]]:
    return [(west, south), (east, south), (east, north), (west, north), (west, south)]


def test_a_drawn_area_a_place_picked_on_the_map_and_alerts_off(phone: Phone, bn_context: Context) -> None:
    page = phone.open()
    page.locator("[data-slot=current] [data-do=locate]").click()
    expect(page.locator("[data-slot=current] .where")).to_contain_text("52.0948")
    # Work, picked on the map (no tiles offline: the map still takes the tap).
    page.locator("[data-slot=work] [data-do=map]").click()
    expect(page.locator("#map-picker")).to_be_visible()
    expect(page.locator("#pick-save")).to_be_disabled()
    page.locator("#pick-map").click()  # the middle of the map: about 52.2, 5.3
    page.locator("#pick-save").click()
    expect(page.locator("#map-picker")).to_be_hidden()
    work = next(p for p in page.evaluate("BurgernetStore.places()") if p["slot"] == "work")
    assert work["how"] == "map" and abs(work["lat"] - 52.2) < 0.2 and abs(work["lon"] - 5.3) < 0.2
    page.locator("#push-on").click()
    expect(page.locator("#push-status")).to_have_text("Meldingen staan aan.")
    with session_scope(bn_context.sessions) as session:
        # Two places in two cells: the phone sends no cell rather than miss one place's alerts.
        assert session.scalar(select(PushSubscription.cell)) is None

    # Real actions with drawn areas, as the payload builder sends them: around the phone,
    # and the same area with a hole where the phone is.
    around = _polygon_action(bn_context, "Witte bestelbus", [_box(5.10, 52.08, 5.15, 52.11)])
    holed = _polygon_action(
        bn_context, "Rode scooter", [_box(5.10, 52.08, 5.15, 52.11), _box(5.12, 52.09, 5.13, 52.10)]
    )
    decision = phone.push(payload(bn_context, around))
    assert (decision["show"], decision["reason"], decision["places"]) == (True, "inside", ["current"])
    decision = phone.push(payload(bn_context, holed))
    assert (decision["show"], decision["reason"]) == (False, "outside")
    assert [n["title"] for n in phone.notifications()] == ["Voertuig: Witte bestelbus"]

    page.locator("#push-off").click()
    expect(page.locator("#push-status")).to_have_text("Meldingen staan uit.")
    with session_scope(bn_context.sessions) as session:
        assert session.scalars(select(PushSubscription)).all() == []
    assert phone.errors == []

"""Browser fixtures: Debian's Chromium under Playwright, the real panel under waitress.

The panel runs on the shared real SQLite + Redis fixtures (``bn_context``), so what the
browser does can be checked in the database, and what the telephony side publishes to Redis
reaches the browser through the real live feed.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from callback_api import app as panel_app
from callback_api import live_events
from callback_api.auth.services import create_user
from composition.context import Context
from testbed.browser import PanelServer, launch_chromium, offline_context
from testbed.ports import free_port

OPERATOR = "operator"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Module scope: Playwright's sync API keeps an event loop of its own, stopped before the
    # asyncio tests of other modules run.
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = launch_chromium(playwright)
    yield chromium
    chromium.close()


@pytest.fixture
def panel_server(bn_context: Context, monkeypatch: pytest.MonkeyPatch) -> Iterator[PanelServer]:
    # A short heartbeat: a live feed whose browser has gone notices on its next write, so the
    # server's worker threads are free within a second when the test ends.
    monkeypatch.setattr(live_events, "HEARTBEAT_SECONDS", 0.5)
    create_user(
        bn_context.sessions,
        username=OPERATOR,
        role="operator",
        password=PASSWORD,
        actor="test",
        source="test",
    )
    # The real tile server stays configured: the browser asks for tiles and the test refuses
    # them (offline), as a control room without internet would.
    app = panel_app.create_app(bn_context.settings, context=bn_context)
    with PanelServer(app, free_port()) as server:
        yield server


@dataclass
class BrowserPage:
    page: Page
    refused: list[str]
    errors: list[str] = field(default_factory=list)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def browser_page(
    browser: Browser, panel_server: PanelServer, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[BrowserPage]:
    context, refused = offline_context(browser, panel_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    opened = BrowserPage(page, refused)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    try:
        yield opened
    finally:
        if request.node.stash.get(_FAILED, False):
            # What the browser showed when the test failed, for whoever reads the CI log.
            shot = tmp_path / "failure.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"browser screenshot at failure: {shot} ({page.url})")
        context.close()  # closes the live feed before the server stops

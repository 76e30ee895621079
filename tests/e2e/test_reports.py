"""The Reports page in Chromium: a year of demo history, drawn by Chart.js (from node_modules,
served by the panel itself), offline, and without a serious WCAG violation."""

from __future__ import annotations

import numpy as np
from playwright.sync_api import expect

from burgernet.db import session_scope
from callback_api.app import DEFAULT_TILE_URL
from composition.context import Context
from composition.demo_history import seed_history
from tests.e2e.conftest import OPERATOR, PASSWORD, BrowserPage
from tests.e2e.test_accessibility import AXE, axe_violations, blocking

CHARTS = ("chart-trend", "chart-hours", "chart-regions", "chart-speed")


def test_the_reports_page_draws_its_charts(bn_context: Context, browser_page: BrowserPage) -> None:
    with session_scope(bn_context.sessions) as session:
        seeded = seed_history(session, np.random.default_rng(11), months=12, per_month=20)
    assert seeded.actions > 100
    page = browser_page.page
    page.context.add_init_script(path=str(AXE))  # axe-core, for the WCAG check at the end
    page.goto("/login")
    page.get_by_label("Username").fill(OPERATOR)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Reports").click()

    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    for chart in CHARTS:
        expect(page.locator(f"#{chart}")).to_have_attribute("data-drawn", "true")
    # The trend chart is a Chart.js chart with one bar per month of the default twelve months,
    # and its canvas holds drawn pixels (a blank canvas of the same size encodes far shorter).
    months = page.locator("#by-month tbody tr").count()
    assert months == 12
    drawn = page.evaluate(
        """() => {
            const canvas = document.getElementById("chart-trend");
            const chart = Chart.getChart(canvas);
            const blank = document.createElement("canvas");
            blank.width = canvas.width; blank.height = canvas.height;
            return {
                labels: chart.data.labels.length,
                actions: chart.data.datasets[0].data.reduce((a, b) => a + b, 0),
                pixels: canvas.toDataURL().length > 2 * blank.toDataURL().length,
                hours: Chart.getChart(document.getElementById("chart-hours")).data.labels.length,
            };
        }"""
    )
    shown = int("".join(c for c in page.locator('[data-figure="actions"]').inner_text() if c.isdigit()))
    assert drawn == {"labels": 12, "actions": shown, "pixels": True, "hours": 24}
    # Nothing but the dashboard's map tiles was asked of another host: Chart.js is the panel's own.
    tiles = DEFAULT_TILE_URL.split("{", 1)[0]
    assert (
        browser_page.errors == [] and [url for url in browser_page.refused if not url.startswith(tiles)] == []
    )
    # The page meets WCAG 2.1 A and AA as the rest of the panel does (tests/e2e/test_accessibility.py).
    assert blocking(axe_violations(page)) == []

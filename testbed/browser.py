"""The panel under waitress in a thread, and Debian's Chromium driven by Playwright, offline.

Shared by the browser tests and ``scripts/screenshots.py``. Playwright never downloads a
browser here (``playwright install`` needs the internet): it drives the Chromium that
``scripts/bootstrap.sh`` installs from Debian. Every request to a host other than the panel
(map tiles) is refused in the browser, so nothing leaves the machine.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urlsplit

import waitress
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, ViewportSize
from waitress import wasyncore

CHROMIUM_ENV = "BURGERNET_CHROMIUM"
DEBIAN_CHROMIUM = "/usr/bin/chromium"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


def chromium_executable() -> str:
    """Debian's Chromium (or $BURGERNET_CHROMIUM); a clear error when it is missing."""
    wanted = os.environ.get(CHROMIUM_ENV) or DEBIAN_CHROMIUM
    found = shutil.which(wanted)
    if found is None:
        raise RuntimeError(
            f"no Chromium at {wanted}: install Debian's package (apt-get install chromium, done by "
            f"scripts/bootstrap.sh) or point ${CHROMIUM_ENV} at a Chromium binary"
        )
    return found


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(
        executable_path=chromium_executable(),
        headless=True,
        # CI runs as root, where Chromium refuses its sandbox; /dev/shm is small in containers.
        args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    )


class PanelServer:
    """The panel's WSGI app served by waitress (as ``burgernet web serve`` does) in a thread.

    waitress's own ``run()`` has no way to stop from another thread, so the thread turns its
    event loop in short steps and checks a stop flag between them.
    """

    def __init__(self, app: Flask, port: int, threads: int = 8) -> None:
        self._sockets: dict[int, wasyncore.dispatcher] = {}
        self._server = waitress.create_server(
            app, map=self._sockets, host="127.0.0.1", port=port, threads=threads, ident="burgernet"
        )
        self.url = f"http://127.0.0.1:{port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="panel-waitress", daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set() and self._sockets:
            wasyncore.loop(timeout=0.05, map=self._sockets, count=1)

    def start(self) -> PanelServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        # Closing every channel ends open live feeds (SSE): their next write finds the client gone.
        wasyncore.close_all(self._sockets)
        self._server.task_dispatcher.shutdown(timeout=10)

    def __enter__(self) -> PanelServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def offline_context(
    browser: Browser, base_url: str, locale: str = "en-GB"
) -> tuple[BrowserContext, list[str]]:
    """A browser context that reaches only ``base_url``; returns it and the list of refused URLs."""
    allowed = urlsplit(base_url).netloc
    refused: list[str] = []

    def only_the_panel(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == allowed or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort("blockedbyclient")

    context = browser.new_context(base_url=base_url, viewport=VIEWPORT, locale=locale)
    context.route("**/*", only_the_panel)
    return context, refused


def draw_polygon(
    page: Page, corners_px: tuple[tuple[int, int], ...], map_selector: str = "#draw-map"
) -> None:
    """leaflet-draw's polygon tool: one click per corner around the map's centre, then the first again."""
    map_element = page.locator(map_selector)
    map_element.locator(".leaflet-draw-draw-polygon").click()
    map_element.scroll_into_view_if_needed()
    box = map_element.bounding_box()
    assert box is not None
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in (*corners_px, corners_px[0]):
        page.mouse.move(centre_x + dx, centre_y + dy, steps=3)
        page.mouse.down()
        page.mouse.up()
        # leaflet-draw ignores a mouse-down within 50 ms of the previous corner (its guard against
        # duplicate touch and click events); a person is never that fast.
        page.wait_for_timeout(150)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    if header[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")

"""The centralist's desk: how fast the call card pops up, and how fast the centralist's phone rings.

One run, same machine: the real Asterisk sandbox with our rendered configuration, our FastAGI/AMI
service and the panel (waitress) in this process, Redis, SQLite, SIPp callers (registered
participants inside ten actions) and one SIPp answering for all 50 centralists.

* **Card**: 50 centralists are logged in, each with the live stream open (50 server-sent-event
  connections, each holding a panel thread, as browsers would). Real Chromium pages are heavy on
  a 2-core machine, so 47 of the 50 are lightweight Python SSE clients and 3 are real browser
  pages showing the desk (``--browsers``). Measured from the moment the AMI ``DialBegin`` for a
  phone reaches the service to: the ``call_ringing`` event at that phone's SSE client (the card
  shows), the card's details fetched (``/desk/calls/<id>.json``), and in the browsers the card
  element inserted in the page (a MutationObserver; browser and Python share the clock).
* **First ring**: from the caller's answer (the 200 OK SIPp's caller receives) to the first INVITE
  SIPp's centralist phone receives, from SIPp's own message traces; measured with the dialplan as
  rendered now (ring at once, the prompt while it rings) and, in the same run, re-rendered with
  ``asterisk.connecting_prompt = before_ringing`` (the old order: the prompt first).

    python benchmarks/desk.py [--quick] [--rate CPS] [--seconds S] [--browsers N]

Goals: card p95 < 500 ms, first ring p95 < 1.5 s. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import requests
from sqlalchemy import select, update

from asterisk_conf.render import render
from asterisk_conf.sipp import caller_scenario
from burgernet import db
from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import Centralist, Participant, Region, User
from burgernet.secrets import create_missing_secrets
from burgernet.settings import Settings, load_settings
from callback_api import app as panel_app
from callback_api.auth.services import create_user
from composition import demo
from composition.context import Context
from composition.redis_server import ManagedRedis
from ivr.app import TelephonyService
from ivr.call_tracker import endpoint_of
from recordings.catalogue import build_catalogue

# The SIP and browser test peers live in the testbed package; a script needs the repo on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from asterisk_conf.instance import prepare
from asterisk_conf.plan import plan_from_database
from testbed.browser import PanelServer, launch_chromium, offline_context
from testbed.ports import free_port, port_block
from testbed.sipp import SIPP
from testbed.sipp_phone import phone_scenario

PASSWORD = "benchmark desk password"
CENTRALISTS = 50
ACTIONS = 10  # each with a team of five: the calls spread over all fifty phones
EXTRA_ENDPOINT = "c-bench-{n:02d}"

# In each browser page: when a card element is inserted, the epoch milliseconds by call id.
CARD_OBSERVER = """
window.__cards = {};
document.addEventListener("DOMContentLoaded", function () {
  var cards = document.getElementById("cards");
  if (!cards) { return; }
  new MutationObserver(function (changes) {
    changes.forEach(function (change) {
      change.addedNodes.forEach(function (node) {
        if (node.dataset && node.dataset.call && !window.__cards[node.dataset.call]) {
          window.__cards[node.dataset.call] = Date.now();
        }
      });
    });
  }).observe(cards, { childList: true });
});
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 0.5), 1),
        "p95_ms": round(percentile(values, 0.95), 1),
        "max_ms": round(max(values), 1),
    }


class SseClient(threading.Thread):
    """One logged-in centralist's live stream; records when each call's card event and details arrive."""

    def __init__(self, base: str, username: str) -> None:
        super().__init__(daemon=True, name=f"sse-{username}")
        self.base = base
        self.username = username
        self.arrived: dict[str, float] = {}
        self.detailed: dict[str, float] = {}
        self.failures = 0
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.session = requests.Session()

    def log_in(self) -> None:
        page = self.session.get(f"{self.base}/login", timeout=30).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
            r'value="([^"]+)"[^>]*name="csrf_token"', page
        )
        assert token, "no CSRF token on the login page"
        response = self.session.post(
            f"{self.base}/login",
            data={"username": self.username, "password": PASSWORD, "csrf_token": token.group(1)},
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 302, (self.username, response.status_code)
        # The cookie stays; the connection goes (waitress accepts at most 100 at once).
        self.session.close()

    def run(self) -> None:
        host, port = self.base.removeprefix("http://").split(":")
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)
        while not self.stop.is_set():
            # Longer than the stream's heartbeat (15 s): a read never times out on a healthy stream.
            connection = http.client.HTTPConnection(host, int(port), timeout=60)
            try:
                connection.request(
                    "GET", "/live/events", headers={"Cookie": cookie, "Accept": "text/event-stream"}
                )
                response = connection.getresponse()
                kind = ""
                while not self.stop.is_set():
                    line = response.readline().decode()
                    if not line:
                        break  # the stream's lifetime ended: reconnect
                    if line.startswith(": subscribed"):
                        self.ready.set()
                    elif line.startswith("event: "):
                        kind = line[7:].strip()
                    elif line.startswith("data: ") and kind == "call_ringing":
                        now = time.time()
                        event = json.loads(line[6:])
                        call = str(event["call"])
                        if call not in self.arrived:
                            self.arrived[call] = now
                            self.fetch(call)
            except OSError:
                self.failures += 1
                time.sleep(0.2)
            finally:
                connection.close()

    def fetch(self, call: str) -> None:
        response = requests.get(
            f"{self.base}/desk/calls/{call}.json",
            cookies=self.session.cookies,
            headers={"Connection": "close", "Accept": "application/json"},
            timeout=10,
        )
        if response.status_code == 200:
            self.detailed[call] = time.time()
        else:
            self.failures += 1


def serve_panel(settings: Settings, port: int, ready: Any, stop: Any) -> None:
    """The panel under waitress (a process of its own), a thread for each of the 50 streams and more."""
    context = Context(settings)
    app = panel_app.create_app(settings, context=context, config={"LIVE_STREAM_SLOTS": CENTRALISTS + 10})
    server = PanelServer(app, port, threads=CENTRALISTS + 24)
    # waitress accepts 100 connections by default; 50 streams plus three browsers' own
    # connections plus the card fetches come close (a production panel sits behind a proxy).
    server._server.adj.connection_limit = 1000
    server.start()
    ready.set()
    stop.wait()
    server.stop()
    context.close()


def watch_desks(base: str, usernames: list[str], ready: Any, stop: Any, seen: Any) -> None:
    """The lightweight centralists (a process of their own): when each saw which card."""
    clients = [SseClient(base, username) for username in usernames]
    for client in clients:
        client.log_in()
        client.start()
    for client in clients:
        client.ready.wait(60)
    ready.set()
    stop.wait()
    for client in clients:
        client.stop.set()
    seen.put({client.username: (dict(client.arrived), dict(client.detailed)) for client in clients})


def setup_world(context: Context, calls: int, phone_port: int) -> tuple[dict[str, list[str]], list[str]]:
    """50 centralists (the demo's 30 and 20 more in MN), ten actions, callers inside them; every
    centralist's phone is the one SIPp. Returns the team per action and the callers' numbers."""
    rng = np.random.default_rng(14)
    with session_scope(context.sessions) as session:
        demo.seed_regions(session, rng)
    with session_scope(context.sessions) as session:
        region = session.scalar(select(Region.id).where(Region.code == "MN"))
        present = len(session.scalars(select(Centralist.id)).all())
        for n in range(1, CENTRALISTS - present + 1):
            session.add(
                Centralist(
                    name=f"Bench {n}", sip_endpoint=EXTRA_ENDPOINT.format(n=n), region_id=region, on_duty=True
                )
            )
        session.flush()
        session.execute(update(Centralist).values(sip_contact=f"sip:phone@127.0.0.1:{phone_port}"))
        endpoints = sorted(session.scalars(select(Centralist.sip_endpoint)))[:CENTRALISTS]
    teams: dict[str, list[str]] = {}
    numbers: list[str] = []
    per_action = calls // ACTIONS + 1
    with session_scope(context.sessions) as session:
        for a in range(ACTIONS):
            lon, lat = 4.7 + 0.15 * a, 52.0 + 0.02 * (a % 3)  # 10 km apart: no caller in two areas
            people = []
            for n in range(per_action):
                number = f"+3162{a:02d}{n:05d}"
                people.append(
                    Participant(
                        phone_e164=number,
                        postcode="3511AB",
                        lat=lat + float(rng.uniform(-0.003, 0.003)),
                        lon=lon + float(rng.uniform(-0.003, 0.003)),
                        created_at=datetime.now().astimezone(),
                    )
                )
                numbers.append("0" + number[3:])
            session.add_all(people)
            teams[f"{lon},{lat}"] = endpoints[a * 5 : a * 5 + 5]
    for centre, team in teams.items():
        lon, lat = (float(v) for v in centre.split(","))
        view = context.actions.create(
            action_type="missing_person",
            title=f"Vermiste persoon {len(team)}",
            region_code="MN",
            area=AreaSpec(AreaKind.CIRCLE, centre=(lon, lat), radius_m=1500),
            team=team,
            actor="bench",
        )
        context.actions.start(view.id, actor="bench")
    for endpoint in endpoints:
        create_user(
            context.sessions,
            username=endpoint,
            role="centralist",
            password=PASSWORD,
            actor="bench",
            source="bench",
        )
        with session_scope(context.sessions) as session:
            centralist = session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == endpoint))
            session.execute(update(User).where(User.username == endpoint).values(centralist_id=centralist))
    # Interleave the actions' callers: consecutive calls go to different actions.
    numbers = [numbers[(i % ACTIONS) * per_action + i // ACTIONS] for i in range(ACTIONS * per_action)]
    return teams, numbers


_TRACE_HEAD = re.compile(r"^-+ (\d{4}-\d\d-\d\d)\s+(\d\d:\d\d:\d\d\.\d+)", re.MULTILINE)


def trace_messages(path: Path) -> list[tuple[float, str]]:
    """(epoch, text) of every message in a SIPp -trace_msg file."""
    text = path.read_text(errors="replace") if path.is_file() else ""
    heads = list(_TRACE_HEAD.finditer(text))
    found = []
    for head, following in zip(heads, [*heads[1:], None], strict=True):
        body = text[head.end() : following.start() if following else len(text)]
        when = datetime.fromisoformat(f"{head.group(1)} {head.group(2)}").timestamp()
        found.append((when, body))
    return found


def _from_user(message: str) -> str | None:
    match = re.search(r"^From:[^<\n]*<sip:([^@>]+)@", message, re.MULTILINE)
    return match.group(1) if match else None


def first_ring_delays(caller_trace: Path, phone_trace: Path) -> list[float]:
    """Per caller number: the caller's first 200 OK to its INVITE → the phone's first INVITE from it."""
    answered: dict[str, float] = {}
    for when, message in trace_messages(caller_trace):
        received = "received" in message[:200]
        ok_to_invite = re.search(r"^SIP/2.0 200", message, re.MULTILINE) and re.search(
            r"^CSeq: \d+ INVITE", message, re.MULTILINE
        )
        user = _from_user(message)
        if received and ok_to_invite and user and user not in answered:
            answered[user] = when
    rung: dict[str, float] = {}
    for when, message in trace_messages(phone_trace):
        if re.search(r"^INVITE sip:", message, re.MULTILINE) and "received" in message[:200]:
            user = _from_user(message)
            if user and user not in rung:
                rung[user] = when
    return [(rung[user] - answered[user]) * 1000 for user in answered if user in rung]


# The G.711 A-law recording shipped with SIPp that the callers' scenarios play (20 ms per packet).
SIPP_AUDIO = Path("/usr/share/sip-tester/g711a.pcap")


def first_packets(pcap: bytes, count: int) -> bytes:
    """The pcap file's global header and its first ``count`` packets (classic little-endian pcap)."""
    end, kept = 24, 0
    while kept < count and end + 16 <= len(pcap):
        end += 16 + struct.unpack_from("<I", pcap, end + 8)[0]  # incl_len of the record
        kept += 1
    return pcap[:end]


def place_calls(
    workdir: Path, asterisk_port: int, number: str, callers: list[str], rate: float, hold_ms: int, tag: str
) -> tuple[int, Path]:
    injection = workdir / f"callers-{tag}.csv"
    injection.write_text("SEQUENTIAL\n" + "".join(f"{c};\n" for c in callers))
    scenario = workdir / f"uac-{tag}.xml"
    # The caller sends audio from the answer on, as a phone does: Asterisk's Answer() waits up to
    # 500 ms for the caller's first media frame, and a silent SIPp would add those to every figure.
    # Half a second of it is enough (hundreds of 7 s streams would load the machine for nothing).
    audio = workdir / "first-words.pcap"
    audio.write_bytes(first_packets(SIPP_AUDIO.read_bytes(), 25))
    scenario.write_text(
        caller_scenario(number, "[field0]", (), hold_ms, 0).replace(str(SIPP_AUDIO), str(audio))
    )
    trace = workdir / f"uac-{tag}-messages.log"
    command = [
        SIPP,
        f"127.0.0.1:{asterisk_port}",
        "-sf",
        str(scenario),
        "-inf",
        str(injection),
        "-i",
        "127.0.0.1",
        "-p",
        str(port_block()),
        "-mp",
        str(port_block()),
        "-m",
        str(len(callers)),
        "-r",
        str(rate),
        "-l",
        str(len(callers)),
        "-nostdin",
        "-timeout",
        f"{int(len(callers) / rate + 90)}s",
        "-recv_timeout",
        "30000",
        "-trace_msg",
        "-message_file",
        str(trace),
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, cwd=workdir, timeout=len(callers) / rate + 180
    )
    return completed.returncode, trace


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rate", type=float, help="calls per second offered")
    parser.add_argument("--seconds", type=float, help="how long the load lasts, per variant")
    parser.add_argument("--browsers", type=int, default=3, help="real Chromium pages among the 50")
    args = parser.parse_args()
    rate = args.rate or (8.0 if args.quick else 20.0)
    seconds = args.seconds or (6.0 if args.quick else 15.0)
    calls = int(rate * seconds)

    workdir = Path(tempfile.mkdtemp(prefix="bn-bench-desk-"))
    redis_server = ManagedRedis(port_block(), workdir / "redis")
    redis_server.start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        create_missing_secrets(workdir)
        settings = load_settings(
            data_dir=workdir,
            log_level="WARNING",
            database={"url": f"sqlite:///{workdir / 'bench.db'}"},
            redis={"url": redis_server.url, "key_prefix": "bench:"},
            asterisk={
                "sip_port": port_block(),
                "ami_port": port_block(),
                "agi_port": port_block(),
                "trunk_port": port_block(),
                "rtp_start": 20000,
                "rtp_end": 40000,
                "instance_name": f"bench-desk-{port_block()}",
                "owner_ring_seconds": 10,
            },
        )
        context = Context(settings)
        db.upgrade(settings.database_url)
        phone_port = port_block()
        teams, numbers = setup_world(context, 2 * calls, phone_port)
        with session_scope(context.sessions) as session:
            plan = plan_from_database(session, settings)
        build_catalogue(settings=settings, langs=["nl"])
        asterisk = prepare(settings, plan, log=lambda line: print(line, file=sys.stderr))
        asterisk.instance.start()

        # The phone of every centralist: answers after 300 ms of ringing; its trace gives the INVITE times.
        uas = workdir / "uas.xml"
        uas.write_text(phone_scenario("answer", 300))

        def start_phone(tag: str) -> Path:
            trace = workdir / f"uas-{tag}-messages.log"
            process = subprocess.Popen(
                [
                    SIPP,
                    "-sf",
                    str(uas),
                    "-i",
                    "127.0.0.1",
                    "-p",
                    str(phone_port),
                    "-mp",
                    str(port_block()),
                    "-nostdin",
                    "-trace_msg",
                    "-message_file",
                    str(trace),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=workdir,
            )
            processes.append(process)
            time.sleep(0.5)
            return trace

        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        service = TelephonyService(Context(settings))
        dial_began: dict[tuple[str, str], float] = {}

        async def on_dial_begin(event: Mapping[str, Any]) -> None:
            endpoint = endpoint_of(str(event.get("DestChannel", "")))
            if endpoint:
                dial_began.setdefault((str(event.get("Uniqueid", "")), endpoint), time.time())

        service.ami.on("DialBegin", on_dial_begin)
        asyncio.run_coroutine_threadsafe(service.start(), loop).result(30)
        asyncio.run_coroutine_threadsafe(service.ami.wait_connected(15), loop).result(30)

        # The panel and the 47 SSE clients in processes of their own, as in production (the panel
        # is `burgernet web serve`, not the FastAGI process): no shared interpreter lock.
        processes_mp = multiprocessing.get_context("spawn")
        panel_port = free_port()
        panel_ready, panel_stop = processes_mp.Event(), processes_mp.Event()
        panel = processes_mp.Process(target=serve_panel, args=(settings, panel_port, panel_ready, panel_stop))
        panel.start()
        if not panel_ready.wait(120):
            raise RuntimeError("the panel did not start")
        base = f"http://127.0.0.1:{panel_port}"
        endpoints = [e for team in teams.values() for e in team]
        in_browser = endpoints[: args.browsers]
        watched = endpoints[args.browsers :]
        watchers_ready, watchers_stop = processes_mp.Event(), processes_mp.Event()
        seen_queue: Any = processes_mp.Queue()
        watchers = processes_mp.Process(
            target=watch_desks, args=(base, watched, watchers_ready, watchers_stop, seen_queue)
        )
        watchers.start()
        if not watchers_ready.wait(180):
            raise RuntimeError("the SSE clients did not connect")

        from playwright.sync_api import sync_playwright

        with sync_playwright() as driver:
            chromium = launch_chromium(driver)
            pages = []
            for endpoint in in_browser:
                browser_context, _refused = offline_context(chromium, base)
                browser_context.add_init_script(CARD_OBSERVER)
                page = browser_context.new_page()
                page.goto("/login")
                page.get_by_label("Username").fill(endpoint)
                page.get_by_label("Password").fill(PASSWORD)
                # The desk reads the calls on its phone whenever its live stream opens: then it is open.
                with page.expect_response(lambda response: response.url.endswith("/desk/current.json")):
                    page.get_by_role("button", name="Log in").click()
                pages.append(page)
            time.sleep(1.0)

            # -- the dialplan as rendered now: ring at once --------------------------------------
            phone_trace = start_phone("new")
            started = time.time()
            code_new, caller_trace = place_calls(
                workdir,
                settings.asterisk.sip_port,
                settings.asterisk.free_number,
                numbers[:calls],
                rate,
                1500,  # a short call: 20 calls/s then keep about 30 of the 50 phones busy
                "new",
            )
            time.sleep(2)
            ring_new = first_ring_delays(caller_trace, phone_trace)
            browser_cards: dict[str, float] = {}
            for page in pages:
                browser_cards.update(
                    {call: ms / 1000 for call, ms in page.evaluate("window.__cards").items()}
                )
            print(f"browser pages saw {len(browser_cards)} cards", file=sys.stderr)
            chromium.close()
        new_ended = time.time()
        watchers_stop.set()
        seen: dict[str, tuple[dict[str, float], dict[str, float]]] = seen_queue.get(timeout=120)
        watchers.join(30)

        card_shown: list[float] = []
        card_details: list[float] = []
        card_browser: list[float] = []
        announced = missing = 0
        for (call, endpoint), began in list(dial_began.items()):
            if not started <= began <= new_ended:
                continue
            announced += 1
            if endpoint in seen:
                arrived, detailed = seen[endpoint]
                if call in arrived:
                    card_shown.append((arrived[call] - began) * 1000)
                else:
                    missing += 1
                if call in detailed:
                    card_details.append((detailed[call] - began) * 1000)
            elif call in browser_cards:
                card_browser.append((browser_cards[call] - began) * 1000)
            else:
                missing += 1

        # -- the old order, rendered from the setting, same run ----------------------------------
        for process in processes:
            process.terminate()
            process.wait(10)
        old = settings.model_copy(
            update={"asterisk": settings.asterisk.model_copy(update={"connecting_prompt": "before_ringing"})}
        )
        render(asterisk.install.inside(asterisk.paths.layout.etc), old, plan, asterisk.paths)
        asterisk.instance.rx("dialplan reload")
        phone_trace = start_phone("old")
        code_old, caller_trace = place_calls(
            workdir,
            settings.asterisk.sip_port,
            settings.asterisk.free_number,
            numbers[calls : 2 * calls],
            rate,
            10_000,  # the prompt (3.6 s) plays before the ring: hold on long enough to hear it
            "old",
        )
        ring_old = first_ring_delays(caller_trace, phone_trace)

        panel_stop.set()
        panel.join(30)
        asyncio.run_coroutine_threadsafe(service.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        asterisk.instance.remove()
        context.close()

        # The card shows when its event arrives (SSE client) or its element is in the page (browser).
        card = summary(card_shown + card_browser)
        ring = summary(ring_new)
        result = {
            "benchmark": "desk",
            "rate_cps": rate,
            "seconds": seconds,
            "calls_per_variant": calls,
            "centralists_logged_in": CENTRALISTS,
            "sse_clients": len(watched),
            "browser_pages": len(in_browser),
            "phones_rung": announced,
            "cards_missing": missing,
            "card_dialbegin_to_visible": card,
            "card_dialbegin_to_event": summary(card_shown),
            "card_dialbegin_to_details": summary(card_details),
            "card_dialbegin_to_browser": summary(card_browser),
            "first_ring_after_answer": ring,
            "first_ring_after_answer_prompt_first": summary(ring_old),
            "sipp_exit_codes": [code_new, code_old],
            "goals": "card p95 < 500 ms, first ring p95 < 1500 ms",
            "goals_met": bool(
                card.get("p95_ms", 1e9) < 500 and ring.get("p95_ms", 1e9) < 1500 and missing == 0
            ),
        }
        print(json.dumps(result))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Panel response times under concurrent use, with a million participants stored.

Stores N participants (1,000,000; --quick 100,000) in SQLite with the demo regions, the demo
actions, a year of closed actions (4,000) and a busy active action (1,000 logged calls), starts
the real panel (``burgernet web serve``: waitress, 16 threads) in a subprocess with a real
redis-server, then lets C client threads (8) fire requests at once, each with its own
session (logged in through the form, CSRF token and all) or API token:

* ``dashboard``: the page and the active actions on the map (``/``, ``/dashboard/actions.geojson``);
* ``api_actions``: ``GET /api/v1/actions`` with a bearer token;
* ``action_detail``: the busy active action's page (calls, timeline, broadcasts);
* ``people_search``: participants by PC4 postcode and by phone number.

Baseline, same run, same load: a second database with 10,000 participants and nothing else.
Two loads each: R page requests per second offered on a schedule (40; a busy control room
and its integrations), where latency counts from when a request was due; and the clients
sending back to back, which saturates the server and shows its throughput (its latencies are
queueing time). Reports p50/p95/p99 (ms) per endpoint; target p95 < 100 ms with N
participants at the offered rate.
Prints one JSON object last.

    python benchmarks/panel_load.py [--quick] [--participants N] [--clients C] [--requests R] [--rate R]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from burgernet import db
from burgernet.db import session_scope
from burgernet.models import Action, AuditEvent, Call, Centralist, Participant, Region
from burgernet.secrets import create_missing_secrets
from burgernet.settings import load_settings
from callback_api.auth.services import create_user, issue_token
from composition import demo
from composition.context import Context
from composition.redis_server import ManagedRedis

PASSWORD = "benchmark-password-1"
TARGET_P95_MS = 100.0
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    """One database + panel process: what a run measures."""

    name: str
    workdir: Path
    redis_url: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    token: str = ""
    busy_action_id: int = 0
    pc4: str = ""
    phones: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "BURGERNET_DATA_DIR": str(self.workdir),
            "BURGERNET_DATABASE__URL": f"sqlite:///{self.workdir / 'panel.db'}",
            "BURGERNET_REDIS__URL": self.redis_url,
            "BURGERNET_REDIS__KEY_PREFIX": f"bench-{self.name}:",
        }


def seed(stack: Stack, participants: int, history: bool) -> None:
    url = stack.env["BURGERNET_DATABASE__URL"]
    create_missing_secrets(stack.workdir)  # `web serve` refuses to start without strong secrets
    db.upgrade(url)
    context = Context(
        load_settings(
            data_dir=stack.workdir,
            database={"url": url},
            redis={"url": stack.redis_url, "key_prefix": stack.env["BURGERNET_REDIS__KEY_PREFIX"]},
        )
    )
    rng = np.random.default_rng(23)
    with session_scope(context.sessions) as session:
        demo.seed_regions(session, rng)
    with session_scope(context.sessions) as session:
        demo.seed_participants(session, participants, rng, chunk=50_000)
    demo.seed_actions(context.actions)
    if history:
        _history(context, rng)
    create_user(
        context.sessions,
        username="operator",
        role="operator",
        password=PASSWORD,
        actor="bench",
        source="bench",
    )
    stack.token = issue_token(context.sessions, "operator", actor="bench", source="bench")
    with session_scope(context.sessions) as session:
        stack.busy_action_id = int(
            session.scalar(select(Action.id).where(Action.status == "active").order_by(Action.id).limit(1))
            or 0
        )
        stack.phones = list(
            session.scalars(select(Participant.phone_e164).where(Participant.id % 997 == 0).limit(200))
        )
        stack.pc4 = str(
            session.scalar(select(Participant.postcode).where(Participant.id == participants // 2))
        )[:4]
    context.close()


def _history(context: Context, rng: np.random.Generator) -> None:
    """A year of closed actions (with their audit trail) and a busy active action's call log."""
    now = datetime.now(UTC)
    with session_scope(context.sessions) as session:
        regions = list(session.scalars(select(Region.id)))
        centralist_ids = list(session.scalars(select(Centralist.id)))
        active_id = session.scalar(
            select(Action.id).where(Action.status == "active").order_by(Action.id).limit(1)
        )
        actions, audits = [], []
        for n in range(4000):
            created = now - timedelta(hours=2 + n * 2.2)
            actions.append(
                {
                    "action_type": "information",
                    "title": f"Afgesloten actie {n}",
                    "description": "Getuigen gezocht",
                    "region_id": int(rng.choice(regions)),
                    "area_kind": "postcodes",
                    "postcodes": "3011,3012",
                    "status": "closed",
                    "created_at": created,
                    "started_at": created + timedelta(minutes=5),
                    "closed_at": created + timedelta(hours=1),
                    "outcome": "afgerond",
                    "result_message": "Dank voor uw hulp",
                    "created_by": "bench",
                }
            )
        session.execute(insert(Action), actions)
        first_id = int(session.scalar(select(Action.id).where(Action.title == "Afgesloten actie 0")) or 0)
        for n in range(4000):
            for verb in ("create", "start", "close"):
                audits.append(
                    {
                        "at": now,
                        "actor": "bench",
                        "verb": verb,
                        "entity": "action",
                        "entity_id": str(first_id + n),
                        "source": "bench",
                    }
                )
        session.execute(insert(AuditEvent), audits)
        calls = [
            {
                "unique_id": f"1700000000.{n}",
                "kind": "inbound",
                "caller_number": f"+3161{n:07d}",
                "action_id": active_id,
                "centralist_id": int(rng.choice(centralist_ids)),
                "region_code": "MN",
                "started_at": now - timedelta(seconds=n * 7),
                "outcome": "connected",
            }
            for n in range(1000)
        ]
        session.execute(insert(Call), calls)


def start_panel(stack: Stack) -> None:
    stack.port = free_port()
    log = (stack.workdir / "web.log").open("ab")
    stack.process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "composition.cli",
            "web",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(stack.port),
            "--threads",
            "16",
        ],
        env=stack.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", stack.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the panel did not start; see {stack.workdir / 'web.log'}")


def stop_panel(stack: Stack) -> None:
    if stack.process is not None and stack.process.poll() is None:
        stack.process.terminate()
        try:
            stack.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            stack.process.kill()


class Browser:
    """One client: a keep-alive connection, a session cookie (logged in through the form)."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = ""

    def request(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        all_headers = {"Cookie": self.cookie} if self.cookie else {}
        all_headers.update(headers or {})
        self.connection.request(method, path, body=body, headers=all_headers)
        response = self.connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        for header, value in response.getheaders():
            if header.lower() == "set-cookie" and value.startswith("burgernet_session="):
                self.cookie = value.split(";", 1)[0]
        return response.status, text

    def login(self) -> None:
        _, page = self.request("GET", "/login")
        match = _CSRF.search(page)
        assert match, "no CSRF token on the login page"
        body = urlencode(
            {"username": "operator", "password": PASSWORD, "csrf_token": match.group(1) or match.group(2)}
        )
        status, _ = self.request(
            "POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert status == 302, f"login failed: {status}"


def endpoints(
    stack: Stack,
) -> dict[str, Callable[[Browser, random.Random], list[tuple[str, dict[str, str]]]]]:
    bearer = {"Authorization": f"Bearer {stack.token}"}
    return {
        "dashboard": lambda _b, _r: [("/", {}), ("/dashboard/actions.geojson", {})],
        "api_actions": lambda _b, _r: [("/api/v1/actions", bearer)],
        "action_detail": lambda _b, _r: [(f"/actions/{stack.busy_action_id}", {})],
        "people_search": lambda _b, r: [
            ("/people?" + urlencode({"q": stack.pc4}), {}),
            ("/people?" + urlencode({"q": "0" + r.choice(stack.phones)[3:]}), {}),
        ],
    }


def load(
    stack: Stack, clients: int, per_endpoint: int, rate: float | None = None
) -> dict[str, dict[str, float]]:
    """Every client thread runs every endpoint in a shuffled order; timings per endpoint (ms).

    With ``rate`` (requests per second, all clients together) each client sends on a fixed
    schedule and a request's time counts from when it was *due*, so a server that falls behind
    is charged for the wait (no coordinated omission). Without it, clients send back to back:
    the server is saturated and the figures measure its queue; ``throughput`` says how much it
    served.
    """
    timings: dict[str, list[float]] = {name: [] for name in endpoints(stack)}
    interval = clients / rate if rate else 0.0
    served = [0]
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(seed_value: int) -> None:
        rnd = random.Random(seed_value)
        browser = Browser(stack.port)
        browser.login()
        plan = [name for name in timings for _ in range(per_endpoint // clients)]
        rnd.shuffle(plan)
        start.wait()
        table = endpoints(stack)
        due = time.perf_counter() + rnd.random() * interval
        for name in plan:
            if interval:
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                began = due
                due += interval
            else:
                began = time.perf_counter()
            for path, headers in table[name](browser, rnd):
                status, _ = browser.request("GET", path, headers=headers)
                if status != 200:
                    with lock:
                        errors.append(f"{name} {path}: {status}")
            elapsed = (time.perf_counter() - began) * 1000
            with lock:
                timings[name].append(elapsed)
                served[0] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    began_all = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began_all
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[:3]}")
    figures: dict[str, dict[str, float]] = {name: _percentiles(values) for name, values in timings.items()}
    figures["all"] = {"requests": served[0], "per_second": round(served[0] / wall, 1)}
    return figures


def _percentiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "requests": len(values),
        "p50_ms": round(statistics.median(values), 1),
        "p95_ms": round(cuts[94], 1),
        "p99_ms": round(cuts[98], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--participants", type=int)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, help="requests per endpoint (all clients together)")
    parser.add_argument(
        "--rate",
        type=float,
        default=40.0,
        help="offered page requests per second, all clients together, for the latency figures",
    )
    args = parser.parse_args()
    participants = args.participants or (100_000 if args.quick else 1_000_000)
    per_endpoint = args.requests or (200 if args.quick else 800)
    workdir = Path(tempfile.mkdtemp(prefix="bn-bench-panel-"))
    redis_server = ManagedRedis(free_port(), workdir / "redis")
    redis_server.start()
    stacks = [
        Stack("baseline", workdir / "baseline", redis_server.url),
        Stack("loaded", workdir / "loaded", redis_server.url),
    ]
    result: dict[str, object] = {
        "benchmark": "panel_load",
        "participants": participants,
        "baseline_participants": 10_000,
        "clients": args.clients,
        "requests_per_endpoint": per_endpoint,
    }
    try:
        for stack, count, history in ((stacks[0], 10_000, False), (stacks[1], participants, True)):
            stack.workdir.mkdir(parents=True)
            started = time.perf_counter()
            seed(stack, count, history)
            print(
                f"{stack.name}: {count} participants seeded in {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )
            start_panel(stack)
            load(stack, args.clients, args.clients * 2)  # warm-up: connections, caches, first compiles
            result[stack.name] = load(stack, args.clients, per_endpoint, args.rate)
            result[f"{stack.name}_saturated"] = load(stack, args.clients, per_endpoint)
            stop_panel(stack)
            for run in (stack.name, f"{stack.name}_saturated"):
                for name, figures in result[run].items():  # type: ignore[attr-defined]
                    if name == "all":
                        print(f"{run:17} {figures['per_second']:.1f} requests/s served", file=sys.stderr)
                        continue
                    line = "  ".join(f"{k} {figures[k]:7.1f}" for k in ("p50_ms", "p95_ms", "p99_ms"))
                    print(f"{run:17} {name:14} {line}", file=sys.stderr)
        loaded: dict[str, dict[str, float]] = result["loaded"]  # type: ignore[assignment]
        result["offered_per_second"] = args.rate
        result["target_p95_ms"] = TARGET_P95_MS
        result["missed"] = [
            name for name, figures in loaded.items() if name != "all" and figures["p95_ms"] >= TARGET_P95_MS
        ]
        result["target_met"] = not result["missed"]
        print(json.dumps(result))
    finally:
        for stack in stacks:
            stop_panel(stack)
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Latency of one full routing decision: participant look-up + area match + team selection.

Stores N participants (1,000,000; --quick 100,000) in SQLite and M active actions (500;
--quick 200) of mixed shapes, starts its own redis-server, then times decisions for random
known callers through :class:`burgernet.routing_service.RoutingService` twice, interleaved:
with the STRtree :class:`routing.AreaIndex` and with a naive linear scan over every area.
The last line printed is one JSON object with the figures.

    python benchmarks/routing_decision.py [--quick] [--participants N] [--actions M] [--calls K]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from shapely.geometry import Polygon, mapping
from sqlalchemy import insert, select

from burgernet import db
from burgernet.db import session_scope
from burgernet.live import AsyncLiveState
from burgernet.models import Action, ActionCentralist, Centralist, Participant, PostcodeArea, Region
from burgernet.routing_service import RoutingService
from burgernet.settings import load_settings
from composition import demo
from composition.context import Context
from composition.redis_server import ManagedRedis
from routing import AreaIndex, LinearScanIndex, RoutingPolicy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def store_actions(context: Context, count: int, rng: random.Random) -> None:
    """Active actions spread over the country: 50 % circles, 35 % polygons, 15 % postcode lists."""
    now = datetime.now(UTC)
    with session_scope(context.sessions) as session:
        regions = dict(session.execute(select(Region.code, Region.id)).all())
        team_by_region: dict[int, list[int]] = {}
        for cid, rid in session.execute(select(Centralist.id, Centralist.region_id)):
            team_by_region.setdefault(rid, []).append(cid)
        pc4s = list(session.scalars(select(PostcodeArea.pc4)))
        rows: list[dict[str, object]] = []
        teams: list[dict[str, int]] = []
        region_ids = list(regions.values())
        for n in range(count):
            lon, lat = rng.uniform(3.6, 7.0), rng.uniform(51.0, 53.3)
            row: dict[str, object] = {
                "action_type": rng.choice(["missing_person", "missing_child", "suspect", "vehicle"]),
                "title": f"bench action {n}",
                "description": "",
                "region_id": rng.choice(region_ids),
                "status": "active",
                "created_at": now,
                "started_at": now,
                "center_lat": None,
                "center_lon": None,
                "radius_m": None,
                "area_geojson": None,
                "postcodes": None,
            }
            kind = rng.random()
            if kind < 0.5:
                row.update(
                    area_kind="circle", center_lon=lon, center_lat=lat, radius_m=rng.uniform(500, 10_000)
                )
            elif kind < 0.85:
                size = rng.uniform(0.01, 0.15)
                ring = [
                    (lon + size * np.cos(a), lat + size * 0.6 * np.sin(a)) for a in np.linspace(0, 6.2, 12)
                ]
                row.update(area_kind="polygon", area_geojson=json.dumps(mapping(Polygon(ring))))
            else:
                row.update(area_kind="postcodes", postcodes=",".join(rng.sample(pc4s, 5)))
            rows.append(row)
        session.execute(insert(Action), rows)
        ids = list(session.scalars(select(Action.id).order_by(Action.id)))
        for action_id, row in zip(ids, rows, strict=True):
            members = team_by_region[int(row["region_id"])][:2]  # type: ignore[call-overload]
            teams.extend(
                {"action_id": action_id, "centralist_id": cid, "position": p} for p, cid in enumerate(members)
            )
        session.execute(insert(ActionCentralist), teams)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def measure(services: dict[str, RoutingService], numbers: list[str]) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {name: [] for name in services}
    kinds: dict[str, dict[str, int]] = {name: {} for name in services}
    for service in services.values():  # warm-up: builds each index once
        await service.route(numbers[0])
    for number in numbers:
        for name, service in services.items():  # interleaved, so drift hits both alike
            start = time.perf_counter()
            routed = await service.route(number)
            timings[name].append((time.perf_counter() - start) * 1000)
            kinds[name][routed.decision.kind.value] = kinds[name].get(routed.decision.kind.value, 0) + 1
    if kinds["indexed"] != kinds["linear_scan"]:
        raise SystemExit(f"the index and the scan disagree: {kinds}")
    print(f"decisions by kind: {kinds['indexed']}", file=sys.stderr)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small run (under a minute)")
    parser.add_argument("--participants", type=int)
    parser.add_argument("--actions", type=int)
    parser.add_argument("--calls", type=int)
    args = parser.parse_args()
    participants = args.participants or (100_000 if args.quick else 1_000_000)
    actions = args.actions or (200 if args.quick else 500)
    calls = args.calls or (2_000 if args.quick else 10_000)

    workdir = Path(tempfile.mkdtemp(prefix="bn-bench-routing-"))
    redis_server = ManagedRedis(free_port(), workdir / "redis")
    redis_server.start()
    try:
        url = f"sqlite:///{workdir / 'bench.db'}"
        settings = load_settings(data_dir=workdir, database={"url": url}, redis={"url": redis_server.url})
        context = Context(settings)
        started = time.perf_counter()
        db.upgrade(url)
        rng = np.random.default_rng(11)
        with session_scope(context.sessions) as session:
            demo.seed_regions(session, rng)
        with session_scope(context.sessions) as session:
            demo.seed_participants(session, participants, rng)
        store_actions(context, actions, random.Random(5))
        seed_seconds = time.perf_counter() - started
        print(
            f"stored {participants} participants and {actions} actions in {seed_seconds:.1f} s",
            file=sys.stderr,
        )

        with session_scope(context.sessions) as session:
            phones = list(session.scalars(select(Participant.phone_e164).where(Participant.id % 97 == 0)))
        picker = random.Random(3)
        # Callers dial in with national-format caller IDs, as the trunk delivers them.
        numbers = ["0" + picker.choice(phones)[3:] for _ in range(calls)]

        policy = RoutingPolicy()

        async def run() -> dict[str, list[float]]:
            services = {
                name: RoutingService(
                    context.sessions,
                    AsyncLiveState.from_url(settings.redis.url),
                    policy,
                    "MN",
                    alerted_window_seconds=3600,
                    index_factory=factory,
                )
                for name, factory in (("indexed", AreaIndex), ("linear_scan", LinearScanIndex))
            }
            return await measure(services, numbers)

        timings = asyncio.run(run())
        figures = {
            name: {
                "p50_ms": round(statistics.median(values), 4),
                "p99_ms": round(percentile(values, 0.99), 4),
                "mean_ms": round(statistics.fmean(values), 4),
            }
            for name, values in timings.items()
        }
        result = {
            "benchmark": "routing_decision",
            "participants": participants,
            "active_actions": actions,
            "decisions": calls,
            "indexed": figures["indexed"],
            "linear_scan": figures["linear_scan"],
            "p99_speedup": round(figures["linear_scan"]["p99_ms"] / figures["indexed"]["p99_ms"], 2),
            "target_p99_ms": 2.0,
            "target_met": figures["indexed"]["p99_ms"] < 2.0,
        }
        context.close()
        print(json.dumps(result))
    finally:
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

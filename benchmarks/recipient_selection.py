"""Time to select an alert's recipients: an area holding ~10 % of all participants.

Stores N participants (3,000,000; --quick 300,000) in SQLite and in PostgreSQL (a private
cluster this script starts), then selects every participant inside a circle around Utrecht
sized to hold about a tenth of them, per channel, with :func:`broadcasting.recipients.
select_recipients` (bounding-box range scan on the (lat, lon) index, then an exact test)
beside a baseline that reads every participant and tests each one. Prints one JSON object
last. Target: 300,000 recipients out of 3,000,000 in under 2 s on both databases.

    python benchmarks/recipient_selection.py [--quick] [--participants N] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select, text

from broadcasting.recipients import select_recipients
from burgernet import db, demo
from burgernet.context import Context
from burgernet.db import session_scope
from burgernet.models import Participant
from burgernet.settings import load_settings
from routing import CircleArea, Location
from routing.areas import distance_m

UTRECHT = Location(5.1214, 52.0907)


def seed(url: str, count: int, workdir: Path) -> Context:
    db.upgrade(url)
    context = Context(load_settings(data_dir=workdir, database={"url": url}))
    rng = np.random.default_rng(17)
    with session_scope(context.sessions) as session:
        demo.seed_regions(session, rng)
    with session_scope(context.sessions) as session:
        demo.seed_participants(session, count, rng, chunk=50_000)
    if url.startswith("postgresql"):
        with context.engine.connect() as connection:
            connection.execute(text("ANALYZE participants"))
            connection.commit()
    return context


def radius_for_share(context: Context, share: float) -> float:
    """The circle radius around Utrecht that holds ``share`` of all participants."""
    with session_scope(context.sessions) as session:
        points = session.execute(
            select(Participant.lon, Participant.lat).where(Participant.id % 50 == 0)
        ).all()
    distances = sorted(distance_m(UTRECHT, Location(lon, lat)) for lon, lat in points)
    return distances[int(share * len(distances))]


def baseline(context: Context, area: CircleArea) -> int:
    """Every participant read and tested in Python: what the index and vectorised test replace."""
    with session_scope(context.sessions) as session:
        rows = session.execute(select(Participant.lon, Participant.lat, Participant.opted_out)).all()
    return sum(
        1
        for lon, lat, out in rows
        if not out and distance_m(area.centre, Location(lon, lat)) <= area.radius_m
    )


def measure(context: Context, area: CircleArea, runs: int) -> dict[str, float | int]:
    timings, base = [], []
    people = 0
    for _ in range(runs):
        start = time.perf_counter()
        with session_scope(context.sessions) as session:
            recipients = select_recipients(session, area)
        timings.append(time.perf_counter() - start)
        people = recipients.people()
        start = time.perf_counter()
        counted = baseline(context, area)
        base.append(time.perf_counter() - start)
    return {
        "recipients": people,
        "baseline_count_not_opted_out": counted,
        "select_median_s": round(statistics.median(timings), 3),
        "baseline_median_s": round(statistics.median(base), 3),
        "speedup": round(statistics.median(base) / statistics.median(timings), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--participants", type=int)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    count = args.participants or (300_000 if args.quick else 3_000_000)
    runs = 3
    workdir = Path(tempfile.mkdtemp(prefix="bn-bench-recipients-"))
    result: dict[str, object] = {"benchmark": "recipient_selection", "participants": count, "runs": runs}
    try:
        started = time.perf_counter()
        sqlite = seed(f"sqlite:///{workdir / 'bench.db'}", count, workdir)
        print(f"SQLite seeded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        area = CircleArea(UTRECHT, radius_for_share(sqlite, 0.10))
        result["radius_m"] = round(area.radius_m)
        result["sqlite"] = measure(sqlite, area, runs)
        sqlite.close()
        if not args.skip_postgres:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from tests.conftest import free_port
            from tests.support.postgres import ManagedPostgres

            pg_dir = Path(tempfile.mkdtemp(prefix="bn-bench-pg-"))
            server = ManagedPostgres(pg_dir, free_port())
            server.start()
            try:
                started = time.perf_counter()
                pg = seed(server.url, count, workdir)
                print(f"PostgreSQL seeded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
                result["postgresql"] = measure(pg, area, runs)
                pg.close()
            finally:
                server.stop()
                shutil.rmtree(pg_dir, ignore_errors=True)
        medians = [v["select_median_s"] for k, v in result.items() if k in {"sqlite", "postgresql"}]  # type: ignore[index]
        result["target_s"] = 2.0
        result["target_met"] = all(m < 2.0 for m in medians)
        print(json.dumps(result))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Time to select an alert's recipients: an area holding ~10 % of all participants.

Stores N participants (3,000,000; --quick 300,000) in SQLite and the very same rows in
PostgreSQL (a private cluster this script starts; the rows are copied over with COPY, which
is much faster than seeding twice), then selects every participant inside a circle around
Utrecht sized to hold about a tenth of them, per channel, three ways on each database:

- ``select``: :func:`broadcasting.recipients.select_recipients` (latitude strips answered
  from the covering index, rows straight into NumPy, an exact vectorised test);
- ``previous``: the implementation it replaced (one bounding-box query read as SQLAlchemy
  rows, then the same exact test), kept here for comparison;
- ``baseline``: every participant read and tested one by one in Python (a full scan).

The recipient counts must agree with the baseline. A national AMBER Alert (everyone) is timed
too, for information. Prints a table on stderr and one JSON object last on stdout. Target:
300,000 recipients out of 3,000,000 in under 2 s on both databases.

    python benchmarks/recipient_selection.py [--quick] [--participants N] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import and_, select, text
from sqlalchemy.orm import Session

from broadcasting.recipients import select_recipients
from burgernet import db
from burgernet.db import session_scope
from burgernet.models import Participant
from burgernet.settings import load_settings
from composition import demo
from composition.context import Context
from routing import CircleArea, Location, NationalArea
from routing.areas import distance_m

UTRECHT = Location(5.1214, 52.0907)
TARGET_S = 2.0


def context_for(url: str, workdir: Path) -> Context:
    return Context(load_settings(data_dir=workdir, database={"url": url}))


def seed_sqlite(path: Path, count: int, workdir: Path) -> Context:
    url = f"sqlite:///{path}"
    db.upgrade(url)
    context = context_for(url, workdir)
    rng = np.random.default_rng(17)
    with session_scope(context.sessions) as session:
        demo.seed_regions(session, rng)
    with session_scope(context.sessions) as session:
        demo.seed_participants(session, count, rng, chunk=50_000)
    return context


def copy_to_postgres(sqlite_path: Path, url: str, workdir: Path) -> Context:
    """The same regions, postcode areas and participants as the SQLite file, via COPY."""
    db.upgrade(url)
    context = context_for(url, workdir)
    source = sqlite3.connect(sqlite_path)
    tables = ["regions", "centralists", "postcode_areas", "participants"]
    with context.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        cursor: Any = raw.cursor()  # psycopg2's, for copy_expert
        try:
            for table in tables:
                columns = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
                booleans = {
                    row[1] for row in source.execute(f"PRAGMA table_info({table})") if row[2] == "BOOLEAN"
                }
                listing = ", ".join(columns)
                rows = source.execute(f"SELECT {listing} FROM {table}")
                while chunk := rows.fetchmany(200_000):
                    buffer = io.StringIO()
                    writer = csv.writer(buffer)
                    for row in chunk:
                        writer.writerow(
                            [
                                ("t" if value else "f") if name in booleans and value is not None else value
                                for name, value in zip(columns, row, strict=True)
                            ]
                        )
                    buffer.seek(0)
                    cursor.copy_expert(f"COPY {table} ({listing}) FROM STDIN (FORMAT csv)", buffer)
                if "id" in columns:
                    sequence = f"pg_get_serial_sequence('{table}', 'id')"
                    cursor.execute(f"SELECT setval({sequence}, (SELECT max(id) FROM {table}))")
        finally:
            cursor.close()
        raw.commit()
    source.close()
    # After a bulk load autovacuum sets the visibility map (PostgreSQL >= 13 vacuums after
    # many inserts); do it now so index-only scans work as they will in production.
    with context.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    return context


def radius_for_share(context: Context, share: float) -> float:
    """The circle radius around Utrecht that holds ``share`` of all participants."""
    with session_scope(context.sessions) as session:
        points = session.execute(
            select(Participant.lon, Participant.lat).where(Participant.id % 50 == 0)
        ).all()
    distances = sorted(distance_m(UTRECHT, Location(lon, lat)) for lon, lat in points)
    return distances[int(share * len(distances))]


def previous_select(session: Session, area: CircleArea) -> int:
    """The replaced implementation: bounding box (111,320 m a degree), ORM rows, exact test."""
    dlat = area.radius_m / 111_320.0
    dlon = area.radius_m / (111_320.0 * math.cos(math.radians(area.centre.lat)))
    rows = session.execute(
        select(
            Participant.id,
            Participant.lat,
            Participant.lon,
            Participant.channel_voice,
            Participant.channel_sms,
            Participant.channel_email,
        ).where(
            Participant.opted_out.is_(False),
            and_(
                Participant.lat.between(area.centre.lat - dlat, area.centre.lat + dlat),
                Participant.lon.between(area.centre.lon - dlon, area.centre.lon + dlon),
            ),
        )
    ).all()
    data = np.array(rows, dtype=np.float64)
    phi1, phi2 = math.radians(area.centre.lat), np.radians(data[:, 1])
    dlmb = np.radians(data[:, 2] - area.centre.lon)
    h = np.sin((phi2 - phi1) / 2) ** 2 + math.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2) ** 2
    keep = 2 * 6_371_008.8 * np.arcsin(np.minimum(1.0, np.sqrt(h))) <= area.radius_m
    return int(np.count_nonzero(keep & (data[:, 3:6].sum(axis=1) > 0)))


def baseline(session: Session, area: CircleArea) -> int:
    """Every participant read and tested in Python: what the index and vectorised test replace."""
    rows = session.execute(
        select(
            Participant.lon,
            Participant.lat,
            Participant.opted_out,
            Participant.channel_voice,
            Participant.channel_sms,
            Participant.channel_email,
        )
    ).all()
    return sum(
        1
        for lon, lat, out, voice, sms, email in rows
        if not out
        and (voice or sms or email)
        and distance_m(area.centre, Location(lon, lat)) <= area.radius_m
    )


def timed(context: Context, work: Callable[[Session], int], runs: int) -> tuple[float, int]:
    timings, result = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        with session_scope(context.sessions) as session:
            result = work(session)
        timings.append(time.perf_counter() - start)
    return round(statistics.median(timings), 3), result


def measure(context: Context, area: CircleArea, runs: int) -> dict[str, object]:
    select_s, recipients = timed(context, lambda s: select_recipients(s, area).people(), runs)
    previous_s, previous_count = timed(context, lambda s: previous_select(s, area), runs)
    baseline_s, expected = timed(context, lambda s: baseline(s, area), 1)
    national_s, everyone = timed(context, lambda s: select_recipients(s, NationalArea()).people(), runs)
    return {
        "recipients": recipients,
        "baseline_count": expected,
        "matches_baseline": recipients == expected,
        "previous_count": previous_count,
        "select_median_s": select_s,
        "previous_median_s": previous_s,
        "baseline_s": baseline_s,
        "speedup_vs_previous": round(previous_s / select_s, 1),
        "speedup_vs_baseline": round(baseline_s / select_s, 1),
        "national_recipients": everyone,
        "national_median_s": national_s,
    }


def table(result: dict[str, object]) -> str:
    databases = [name for name in ("sqlite", "postgresql") if name in result]
    rows = [
        ("recipients (select)", "recipients"),
        ("recipients (full-scan baseline)", "baseline_count"),
        ("recipients (previous code)", "previous_count"),
        ("select, median s", "select_median_s"),
        ("previous code, median s", "previous_median_s"),
        ("full-scan baseline, s", "baseline_s"),
        ("speed-up vs previous", "speedup_vs_previous"),
        ("speed-up vs baseline", "speedup_vs_baseline"),
        ("national: recipients", "national_recipients"),
        ("national: median s", "national_median_s"),
    ]
    lines = [f"{'':34}" + "".join(f"{name:>14}" for name in databases)]
    for label, key in rows:
        values = [result[name][key] for name in databases]  # type: ignore[index]
        lines.append(f"{label:34}" + "".join(f"{value!s:>14}" for value in values))
    return "\n".join(lines)


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
        sqlite_path = workdir / "bench.db"
        sqlite = seed_sqlite(sqlite_path, count, workdir)
        print(f"SQLite seeded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        area = CircleArea(UTRECHT, radius_for_share(sqlite, 0.10))
        result["radius_m"] = round(area.radius_m)
        result["sqlite"] = measure(sqlite, area, runs)
        sqlite.close()
        if not args.skip_postgres:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from testbed.ports import free_port
            from testbed.postgres import ManagedPostgres

            pg_dir = Path(tempfile.mkdtemp(prefix="bn-bench-pg-"))
            server = ManagedPostgres(pg_dir, free_port())
            server.start()
            try:
                started = time.perf_counter()
                pg = copy_to_postgres(sqlite_path, server.url, workdir)
                print(f"PostgreSQL loaded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
                result["postgresql"] = measure(pg, area, runs)
                pg.close()
            finally:
                server.stop()
                shutil.rmtree(pg_dir, ignore_errors=True)
        measured = [result[name] for name in ("sqlite", "postgresql") if name in result]
        result["target_s"] = TARGET_S
        result["target_met"] = all(
            m["select_median_s"] < TARGET_S and m["matches_baseline"]  # type: ignore[index]
            for m in measured
        )
        print(table(result), file=sys.stderr)
        print(json.dumps(result))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

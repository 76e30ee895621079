"""Demo data: the ten Dutch police regions, centralists, postcode areas, participants, actions.

The region borders are approximate on purpose: Voronoi cells around each region's centre,
clipped to a coarse outline of the Netherlands. Postcode areas (PC4) get synthetic centres
inside their region, in the PC4 ranges the regions really use. A real deployment replaces
both with ``burgernet import areas`` (e.g. CBS PC4 polygons).
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Polygon
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from burgernet.actions import ActionService, AreaSpec
from burgernet.addresses import seed_demo_addresses
from burgernet.domain import AreaKind
from burgernet.models import Centralist, Participant, PostcodeArea, Region

# Coarse outline of the Netherlands (lon, lat), clockwise from the Zeeland coast.
NL_OUTLINE = Polygon(
    [
        (3.36, 51.37),
        (3.55, 51.60),
        (3.90, 51.85),
        (4.05, 52.00),
        (4.35, 52.20),
        (4.55, 52.45),
        (4.60, 52.70),
        (4.70, 52.95),
        (4.85, 53.20),
        (5.40, 53.40),
        (6.20, 53.50),
        (6.90, 53.45),
        (7.20, 53.25),
        (7.20, 53.00),
        (7.05, 52.65),
        (6.70, 52.55),
        (7.05, 52.40),
        (7.00, 52.20),
        (6.75, 52.05),
        (6.40, 51.85),
        (6.10, 51.85),
        (6.20, 51.50),
        (6.05, 51.20),
        (6.10, 51.05),
        (5.95, 50.80),
        (5.75, 50.75),
        (5.65, 50.85),
        (5.80, 51.10),
        (5.55, 51.25),
        (5.05, 51.45),
        (4.75, 51.48),
        (4.40, 51.45),
        (4.25, 51.37),
        (3.85, 51.30),
        (3.36, 51.37),
    ]
)


@dataclass(frozen=True)
class RegionSeed:
    code: str
    name: str
    centre: tuple[float, float]  # lon, lat
    pc4_ranges: tuple[tuple[int, int], ...]


REGIONS: tuple[RegionSeed, ...] = (
    RegionSeed("NN", "Noord-Nederland", (6.30, 53.10), ((8000, 8199), (8400, 9999))),
    RegionSeed("ON", "Oost-Nederland", (6.25, 52.20), ((6600, 7999),)),
    RegionSeed("MN", "Midden-Nederland", (5.30, 52.20), ((1200, 1299), (3400, 3999), (8200, 8399))),
    RegionSeed("NH", "Noord-Holland", (4.80, 52.70), ((1110, 1199), (1300, 1999), (2000, 2199))),
    RegionSeed("AM", "Amsterdam", (4.90, 52.37), ((1000, 1109),)),
    RegionSeed("DH", "Den Haag", (4.35, 52.08), ((2200, 2799),)),
    RegionSeed("RO", "Rotterdam", (4.45, 51.88), ((2800, 3399),)),
    RegionSeed("ZWB", "Zeeland-West-Brabant", (4.10, 51.50), ((4000, 4999),)),
    RegionSeed("OB", "Oost-Brabant", (5.45, 51.60), ((5000, 5799),)),
    RegionSeed("LB", "Limburg", (5.90, 51.20), ((5800, 6599),)),
)

CENTRALISTS_PER_REGION = 3
_FIRST_NAMES = ("Anouk", "Bram", "Daan", "Eva", "Fleur", "Joris", "Lotte", "Milan", "Noor", "Sanne", "Thijs")
_LETTER_PAIRS = [
    a + b for a in string.ascii_uppercase for b in string.ascii_uppercase if a + b not in {"SA", "SD", "SS"}
]


def region_polygons() -> dict[str, shapely.Geometry]:
    """Approximate region territories: Voronoi cells of the centres, clipped to the outline."""
    centres = MultiPoint([seed.centre for seed in REGIONS])
    cells = shapely.voronoi_polygons(centres, extend_to=NL_OUTLINE.buffer(1.0))
    polygons: dict[str, shapely.Geometry] = {}
    for seed in REGIONS:
        point = shapely.Point(seed.centre)
        cell = next(c for c in cells.geoms if c.covers(point))
        polygons[seed.code] = cell.intersection(NL_OUTLINE)
    return polygons


def random_points_in(geometry: shapely.Geometry, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` uniform points (lon, lat) inside ``geometry`` by vectorised rejection sampling."""
    min_x, min_y, max_x, max_y = geometry.bounds
    shapely.prepare(geometry)
    found: list[np.ndarray] = []
    have = 0
    while have < count:
        batch = max(64, (count - have) * 2)
        xs = rng.uniform(min_x, max_x, batch)
        ys = rng.uniform(min_y, max_y, batch)
        inside = shapely.contains_xy(geometry, xs, ys)
        chosen = np.column_stack([xs[inside], ys[inside]])
        found.append(chosen)
        have += len(chosen)
    return np.concatenate(found)[:count]


def seed_regions(session: Session, rng: np.random.Generator) -> dict[str, int]:
    """Regions, their centralists and PC4 areas (and, in a new database, the sample addresses);
    existing regions are left as they are."""
    existing = {code: rid for code, rid in session.execute(select(Region.code, Region.id))}
    before = len(existing)
    polygons = region_polygons()
    for number, seed in enumerate(REGIONS):
        if seed.code in existing:
            continue
        region = Region(
            code=seed.code,
            name=seed.name,
            boundary_geojson=json.dumps(shapely.geometry.mapping(polygons[seed.code])),
        )
        session.add(region)
        session.flush()
        existing[seed.code] = region.id
        for n in range(1, CENTRALISTS_PER_REGION + 1):
            first = _FIRST_NAMES[(number * CENTRALISTS_PER_REGION + n) % len(_FIRST_NAMES)]
            session.add(
                Centralist(
                    name=f"{first} ({seed.code}-{n})",
                    sip_endpoint=f"c-{seed.code.lower()}-{n}",
                    region_id=region.id,
                    on_duty=True,
                )
            )
        codes = [pc for low, high in seed.pc4_ranges for pc in range(low, high + 1)]
        centres = random_points_in(polygons[seed.code], len(codes), rng)
        session.execute(
            insert(PostcodeArea),
            [
                {"pc4": str(pc), "region_id": region.id, "lon": float(lon), "lat": float(lat)}
                for pc, (lon, lat) in zip(codes, centres, strict=True)
            ],
        )
    if len(existing) > before:
        # A new (demo) database: a few hundred synthetic addresses, so the search box finds
        # "3511 AH 3" offline. Never into a database that already had its regions: real
        # addresses come from `burgernet import addresses`.
        seed_demo_addresses(session)
    return existing


def participant_rows(
    count: int, postcodes: list[tuple[str, int, float, float]], rng: np.random.Generator, now: datetime
) -> Iterator[dict[str, object]]:
    """Synthetic participants: valid Dutch mobile numbers, near a PC4 centre.

    Mobile numbers are +316 and 8 digits; only 061-065 and 068 are mobile ranges (066 is for
    pagers; 060, 067 and 069 are not issued), so the 8 digits are drawn from 10,000,000-59,999,999
    and 80,000,000-89,999,999.
    """
    py_rng = random.Random(int(rng.integers(1 << 31)))
    numbers = [
        n + 10_000_000 if n < 50_000_000 else n + 30_000_000 for n in py_rng.sample(range(60_000_000), count)
    ]
    picks = rng.integers(0, len(postcodes), count)
    jitter = rng.normal(0.0, 0.004, (count, 2))
    languages = rng.random(count)
    channel_draws = rng.random((count, 4))
    for i in range(count):
        pc4, region_id, lat, lon = postcodes[int(picks[i])]
        email_ok = channel_draws[i, 2] < 0.4
        opted_out = bool(channel_draws[i, 3] < 0.01)
        yield {
            "phone_e164": f"+316{numbers[i]}",
            "email": f"deelnemer{i}@example.nl" if email_ok else None,
            "postcode": pc4 + _LETTER_PAIRS[int(picks[i] + i) % len(_LETTER_PAIRS)],
            "lat": min(53.7, max(50.7, lat + float(jitter[i, 0]))),
            "lon": min(7.4, max(3.1, lon + float(jitter[i, 1]) * 1.6)),
            "region_id": region_id,
            "language": "en" if languages[i] < 0.08 else "nl",
            "channel_voice": bool(channel_draws[i, 0] < 0.6),
            "channel_sms": bool(channel_draws[i, 1] < 0.85),
            "channel_email": email_ok,
            "inquiry_opt_in": bool(channel_draws[i, 0] > 0.7),
            "opted_out": opted_out,
            "opted_out_at": now if opted_out else None,
            "created_at": now,
        }


def seed_participants(
    session: Session,
    count: int,
    rng: np.random.Generator,
    progress: Callable[[int], None] = lambda _n: None,
    chunk: int = 20_000,
) -> int:
    """Insert ``count`` participants in chunks; returns how many were inserted."""
    postcodes = [
        (pc, rid, lat, lon)
        for pc, rid, lat, lon in session.execute(
            select(PostcodeArea.pc4, PostcodeArea.region_id, PostcodeArea.lat, PostcodeArea.lon)
        )
    ]
    if not postcodes:
        raise RuntimeError("no postcode areas: seed the regions first")
    now = datetime.now(UTC)
    batch: list[dict[str, object]] = []
    inserted = 0
    for row in participant_rows(count, postcodes, rng, now):
        batch.append(row)
        if len(batch) >= chunk:
            session.execute(insert(Participant), batch)
            inserted += len(batch)
            progress(len(batch))
            batch = []
    if batch:
        session.execute(insert(Participant), batch)
        inserted += len(batch)
        progress(len(batch))
    return inserted


def participant_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Participant)) or 0)


# Demo actions: (type, title, region, area, team, start?) — created once, when no action exists.
UTRECHT = (5.1214, 52.0907)
AMSTERDAM_CENTRE = {
    "type": "Polygon",
    "coordinates": [[[4.870, 52.360], [4.920, 52.360], [4.925, 52.385], [4.875, 52.388], [4.870, 52.360]]],
}


def seed_actions(actions: ActionService) -> int:
    """A few actions to call about; returns how many were created (0 when any exist)."""
    if actions.list_actions():
        return 0
    plans = [
        (
            "missing_child",
            "Vermist meisje, 8 jaar, rode jas",
            "MN",
            AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=3000),
            ["c-mn-1", "c-mn-2"],
            True,
        ),
        (
            "vehicle",
            "Gestolen witte bestelbus",
            "AM",
            AreaSpec(AreaKind.POLYGON, geojson=json.dumps(AMSTERDAM_CENTRE)),
            ["c-am-1"],
            True,
        ),
        (
            "information",
            "Getuigen gezocht inbraak",
            "MN",
            AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=8000),
            ["c-mn-3"],
            True,
        ),
        (
            "suspect",
            "Verdachte overval juwelier",
            "RO",
            AreaSpec(AreaKind.POSTCODES, postcodes=("3011", "3012", "3013")),
            ["c-ro-1", "c-ro-2"],
            False,
        ),
    ]
    for action_type, title, region, area, team, start in plans:
        view = actions.create(
            action_type=action_type,
            title=title,
            region_code=region,
            area=area,
            team=team,
            actor="demo",
            source="demo",
        )
        if start:
            # Demo actions route calls but alert nobody: demo numbers are not real people.
            actions.start(view.id, actor="demo", source="demo", broadcast=False)
    return len(plans)

"""Recipient selection agrees with a brute-force check of every participant, on SQLite and
on PostgreSQL, including points on and just beside an area's border."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Polygon, box
from sqlalchemy import insert, select

from broadcasting.recipients import Recipients, count_inside, select_recipients
from burgernet.db import session_scope
from burgernet.domain import Channel
from burgernet.models import Participant
from burgernet.settings import load_settings
from composition import demo
from composition.context import Context
from composition.redis_server import ManagedRedis
from routing import (
    Area,
    Caller,
    CallerKind,
    CircleArea,
    LinearScanIndex,
    Location,
    NationalArea,
    PolygonArea,
    PostcodeArea,
)
from routing.areas import EARTH_RADIUS_M
from routing.model import ActiveAction
from tests.conftest import postgres_context

BREDA_EAST = Location(5.5, 51.5)
BORDER_RADIUS_M = 20_000.0
# An L: the notch at the top right is inside the bounding box but outside the polygon.
L_SHAPE = Polygon([(6.0, 52.45), (6.2, 52.45), (6.2, 52.5), (6.1, 52.5), (6.1, 52.6), (6.0, 52.6)])
BEARINGS = range(0, 360, 45)


def destination(start: Location, bearing_deg: float, distance: float) -> Location:
    """The point ``distance`` metres from ``start`` on a great circle (the haversine sphere)."""
    angle = distance / EARTH_RADIUS_M
    lat1, lon1, theta = math.radians(start.lat), math.radians(start.lon), math.radians(bearing_deg)
    lat2 = math.asin(math.sin(lat1) * math.cos(angle) + math.cos(lat1) * math.sin(angle) * math.cos(theta))
    lon2 = lon1 + math.atan2(
        math.sin(theta) * math.sin(angle) * math.cos(lat1), math.cos(angle) - math.sin(lat1) * math.sin(lat2)
    )
    return Location(math.degrees(lon2), math.degrees(lat2))


@dataclass(frozen=True)
class Person:
    where: Location
    postcode: str = "4811AA"
    voice: bool = True
    sms: bool = True
    email: bool = False
    opted_out: bool = False


def crafted() -> dict[str, Person]:
    people: dict[str, Person] = {}
    for bearing in BEARINGS:  # 2 cm either side of the border
        people[f"circle-in-{bearing}"] = Person(destination(BREDA_EAST, bearing, BORDER_RADIUS_M - 0.02))
        people[f"circle-out-{bearing}"] = Person(destination(BREDA_EAST, bearing, BORDER_RADIUS_M + 0.02))
    inside = destination(BREDA_EAST, 10, 1_000)
    people["centre"] = Person(BREDA_EAST)
    people["email-only"] = Person(inside, voice=False, sms=False, email=True)
    people["voice-only"] = Person(inside, voice=True, sms=False, email=False)
    people["all-channels"] = Person(inside, voice=True, sms=True, email=True)
    people["no-channel"] = Person(inside, voice=False, sms=False, email=False)
    people["opted-out"] = Person(inside, voice=True, sms=True, email=True, opted_out=True)
    people["polygon-edge"] = Person(Location(6.15, 52.45))
    people["polygon-vertex"] = Person(Location(6.2, 52.5))
    people["polygon-top-edge"] = Person(Location(6.05, 52.6))
    people["polygon-inside"] = Person(Location(6.05, 52.55))
    people["polygon-notch"] = Person(Location(6.15, 52.55))
    people["polygon-just-outside"] = Person(Location(6.2 + 1e-6, 52.47))
    for code in ("3511AB", "3511ZZ", "3512AA", "1011AB", "1011AC"):
        people[f"postcode-{code}"] = Person(Location(5.12, 52.09), postcode=code)
    return people


CRAFTED = crafted()


@dataclass
class Population:
    context: Context
    ids: dict[str, int]  # crafted label -> participant id


def _populate(context: Context) -> Population:
    now = datetime.now(UTC)
    with session_scope(context.sessions) as session:
        demo.seed_participants(session, 10_000, np.random.default_rng(2))
        rows = [
            {
                "phone_e164": f"+3197{number:08d}",
                "postcode": person.postcode,
                "lat": person.where.lat,
                "lon": person.where.lon,
                "channel_voice": person.voice,
                "channel_sms": person.sms,
                "channel_email": person.email,
                "email": "x@example.nl" if person.email else None,
                "opted_out": person.opted_out,
                "opted_out_at": now if person.opted_out else None,
                "created_at": now,
            }
            for number, person in enumerate(CRAFTED.values())
        ]
        session.execute(insert(Participant), rows)
        phones = session.execute(select(Participant.phone_e164, Participant.id))
        by_phone = {phone: pid for phone, pid in phones}
    return Population(context, {label: by_phone[f"+3197{n:08d}"] for n, label in enumerate(CRAFTED)})


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def population(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: ManagedRedis,
    seeded_database: Path,
) -> Iterator[Population]:
    """The same 10,000 random and the crafted participants in one database of each kind."""
    data_dir = tmp_path_factory.mktemp(f"recipients-{request.param}")
    if request.param == "sqlite":
        database = data_dir / "burgernet.db"
        shutil.copyfile(seeded_database, database)
        context = Context(
            load_settings(
                data_dir=data_dir,
                database={"url": f"sqlite:///{database}"},
                redis={"url": redis_server.url, "key_prefix": "recipients-test:"},
            )
        )
    else:
        context = postgres_context(request.getfixturevalue("postgres_server"), redis_server, data_dir)
    yield _populate(context)
    context.close()


def _select(population: Population, area: Area) -> Recipients:
    with session_scope(population.context.sessions) as session:
        return select_recipients(session, area)


def _chosen(population: Population, recipients: Recipients, channel: Channel) -> set[str]:
    """The crafted labels among the recipients on ``channel``."""
    found = set(recipients.by_channel.get(channel, np.array([], dtype=np.int64)).tolist())
    return {label for label, pid in population.ids.items() if pid in found}


AREAS: dict[str, Area] = {
    "circle-utrecht-15km": CircleArea(Location(5.1214, 52.0907), 15_000),
    "circle-border": CircleArea(BREDA_EAST, BORDER_RADIUS_M),
    "circle-small": CircleArea(Location(5.1214, 52.0907), 600),
    "circle-whole-country": CircleArea(Location(5.3, 52.2), 300_000),
    "polygon-box": PolygonArea(box(4.7, 52.2, 5.0, 52.45)),
    "polygon-l-shape": PolygonArea(L_SHAPE),
    "multipolygon": PolygonArea(MultiPolygon([box(4.8, 52.3, 4.95, 52.4), box(5.05, 52.05, 5.2, 52.12)])),
    "postcodes": PostcodeArea(frozenset({"3511", "3512", "1011AB"})),
    "national": NationalArea(),
}


@pytest.mark.parametrize("area", AREAS.values(), ids=AREAS.keys())
def test_selection_matches_brute_force(population: Population, area: Area) -> None:
    with session_scope(population.context.sessions) as session:
        rows = session.execute(
            select(
                Participant.id,
                Participant.lon,
                Participant.lat,
                Participant.postcode,
                Participant.opted_out,
                Participant.channel_voice,
                Participant.channel_sms,
                Participant.channel_email,
            )
        ).all()
        recipients = select_recipients(session, area)
        counted = count_inside(session, area)
    scan = LinearScanIndex([ActiveAction(1, "x", "information", 1, "MN", area, ())])
    inside = [
        row
        for row in rows
        if not row.opted_out
        and scan.covering(
            Caller(kind=CallerKind.KNOWN, location=Location(row.lon, row.lat), postcode=row.postcode)
        )
    ]
    expected = {
        Channel.VOICE: sorted(row.id for row in inside if row.channel_voice),
        Channel.SMS: sorted(row.id for row in inside if row.channel_sms),
        Channel.EMAIL: sorted(row.id for row in inside if row.channel_email),
    }
    for channel, ids in expected.items():
        assert recipients.by_channel.get(channel, np.array([])).tolist() == ids, channel
    assert len(expected[Channel.SMS]) > 0
    people = {row.id for row in inside if row.channel_voice or row.channel_sms or row.channel_email}
    assert recipients.people() == counted == len(people)


def test_circle_border_is_the_exact_distance(population: Population) -> None:
    recipients = _select(population, AREAS["circle-border"])
    chosen = _chosen(population, recipients, Channel.SMS)
    # North and south too: the bounding box used to be 0.1 % short there (111,320 m a degree).
    assert {f"circle-in-{bearing}" for bearing in BEARINGS} <= chosen
    assert not {f"circle-out-{bearing}" for bearing in BEARINGS} & chosen
    assert "centre" in chosen


def test_polygon_border_counts_as_inside(population: Population) -> None:
    chosen = _chosen(population, _select(population, AREAS["polygon-l-shape"]), Channel.SMS)
    polygon_labels = {label for label in CRAFTED if label.startswith("polygon-")}
    assert chosen & polygon_labels == {
        "polygon-edge",
        "polygon-vertex",
        "polygon-top-edge",
        "polygon-inside",
    }


def test_each_channel_only_for_those_who_chose_it_and_never_the_opted_out(population: Population) -> None:
    recipients = _select(population, AREAS["circle-border"])
    local = {"email-only", "voice-only", "all-channels", "no-channel", "opted-out"}
    assert _chosen(population, recipients, Channel.EMAIL) & local == {"email-only", "all-channels"}
    assert _chosen(population, recipients, Channel.VOICE) & local == {"voice-only", "all-channels"}
    assert _chosen(population, recipients, Channel.SMS) & local == {"all-channels"}
    for channel_ids in recipients.by_channel.values():  # one delivery per person per channel
        assert len(np.unique(channel_ids)) == len(channel_ids)
        assert np.all(np.diff(channel_ids) > 0)


def test_postcode_list_matches_pc4_prefixes_and_whole_pc6(population: Population) -> None:
    # Codes are matched normalised; a code with a quote is just a code that matches nobody.
    area = PostcodeArea(frozenset({"3511", "1011ab", "1'--AB"}))
    chosen = _chosen(population, _select(population, area), Channel.SMS)
    postcode_labels = {label for label in CRAFTED if label.startswith("postcode-")}
    assert chosen & postcode_labels == {"postcode-3511AB", "postcode-3511ZZ", "postcode-1011AB"}
    assert _select(population, PostcodeArea(frozenset())).by_channel == {}


def test_national_amber_alert_reaches_everyone_not_opted_out(population: Population) -> None:
    recipients = _select(population, NationalArea())
    with session_scope(population.context.sessions) as session:
        reachable = session.scalars(
            select(Participant.id).where(
                Participant.opted_out.is_(False),
                Participant.channel_voice | Participant.channel_sms | Participant.channel_email,
            )
        ).all()
    assert recipients.people() == len(reachable) > 9_000
    assert "opted-out" not in _chosen(population, recipients, Channel.SMS)


def test_an_area_with_nobody_in_it_selects_nobody(population: Population) -> None:
    # The North Sea off Zeeland: inside the country's coordinate box, but nobody lives there.
    assert _select(population, CircleArea(Location(3.05, 53.7), 500)).by_channel == {}
    assert _select(population, PolygonArea(box(3.01, 53.6, 3.02, 53.61))).people() == 0

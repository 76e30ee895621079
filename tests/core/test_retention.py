"""Retention with a frozen clock: per kind of personal data, what is older than its setting goes
(rows and files), what is younger stays, the anonymous figures survive, every purge is audited
with counts only, and a dry run changes nothing. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from burgernet.actions import AreaSpec
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import (
    ActionFact,
    AuditEvent,
    Broadcast,
    Call,
    Delivery,
    Inquiry,
    InquiryLink,
    Participant,
    Sighting,
    Statement,
    Tip,
)
from burgernet.retention import REDACTED, Retention
from composition.cli import main
from composition.context import Context
from composition.redis_server import ManagedRedis
from testbed.postgres import ManagedPostgres
from tests.conftest import postgres_context

# The frozen clock: every row below is dated against it, and the purge runs at it.
NOW = datetime(2027, 6, 1, 3, 30, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass
class World:
    """Two of everything: one a day past its kind's retention ("old"), one a day inside ("fresh")."""

    action_id: int
    active_action_id: int
    old: dict[str, int] = field(default_factory=dict)
    fresh: dict[str, int] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


def _file(path: Path, data: bytes = b"RIFF....WAVE") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def build_world(context: Context) -> World:
    s = context.settings
    actions = context.actions
    closed = actions.create(
        action_type="missing_person",
        title="Oud",
        region_code="MN",
        area=AreaSpec(AreaKind.POSTCODES, postcodes=("3511",)),
        actor="t",
    )
    actions.start(closed.id, actor="t", broadcast=False)
    actions.close(closed.id, outcome_kind="found_otherwise", outcome="thuis", result_message="", actor="t")
    active = actions.create(
        action_type="vehicle",
        title="Nog bezig",
        region_code="MN",
        area=AreaSpec(AreaKind.POSTCODES, postcodes=("3511",)),
        actor="t",
    )
    actions.start(active.id, actor="t", broadcast=False)
    world = World(closed.id, active.id)
    r = s.retention
    with session_scope(context.sessions) as session:
        person = Participant(
            phone_e164="+31612340000",
            email="jan@example.nl",
            postcode="3511AB",
            lat=52.09,
            lon=5.12,
            created_at=NOW - 1000 * DAY,
        )
        session.add(person)
        session.flush()

        def at(kind_days: int, age: str) -> datetime:
            return NOW - (kind_days + 1) * DAY if age == "old" else NOW - (kind_days - 1) * DAY

        for age in ("old", "fresh"):
            bag = world.old if age == "old" else world.fresh
            when = at(r.call_numbers_days, age)
            call = Call(
                unique_id=f"call-{age}",
                kind="inbound",
                caller_number="+31612340000",
                participant_id=person.id,
                action_id=closed.id,
                started_at=when,
                ended_at=when + timedelta(seconds=30),
                outcome="tip_left",
            )
            session.add(call)
            session.flush()
            bag["call"] = call.id

            tip_when = at(s.tips_retention_days(), age)
            recording = _file(s.recordings_dir / "tips" / str(closed.id) / f"{age}.wav")
            world.files[f"tip-{age}"] = recording
            tip = Tip(
                call_id=call.id,
                action_id=closed.id,
                recording_path=str(recording),
                callback_number="+31612340000",
                created_at=tip_when,
            )
            session.add(tip)
            session.flush()
            bag["tip"] = tip.id

            broadcast = Broadcast(
                action_id=closed.id,
                kind="alert",
                status="done",
                created_at=NOW - 400 * DAY,
                started_at=NOW - 400 * DAY,
                finished_at=NOW - 400 * DAY,
                total=1,
            )
            session.add(broadcast)
            session.flush()
            delivery_when = at(r.deliveries_days, age)
            delivery = Delivery(
                broadcast_id=broadcast.id,
                participant_id=person.id,
                channel="sms",
                status="delivered",
                attempts=1,
                provider_ref=f"SM{age}",
                updated_at=delivery_when,
                sending_at=delivery_when - timedelta(seconds=2),
                finished_at=delivery_when,
            )
            session.add(delivery)
            session.flush()
            bag["delivery"] = delivery.id

            inquiry_when = at(r.inquiries_days, age)
            inquiry = Inquiry(
                action_id=closed.id,
                title=f"Inbraak {age}",
                question="Wie zag iets?",
                area_kind="postcodes",
                postcodes="3511",
                created_at=inquiry_when - 5 * DAY,
                closes_at=inquiry_when,
            )
            session.add(inquiry)
            session.flush()
            link = InquiryLink(
                inquiry_id=inquiry.id,
                participant_id=person.id,
                token_hash=f"{age:0<64}"[:64],
                expires_at=inquiry_when,
                delivery="sent",
                sent_at=inquiry_when - 5 * DAY,
            )
            session.add(link)
            session.flush()
            photo = _file(s.data_dir / "photos" / f"statement-{age}.jpg", b"\xff\xd8\xff")
            world.files[f"photo-{age}"] = photo
            statement = Statement(
                inquiry_id=inquiry.id,
                link_id=link.id,
                text="Ik zag een man met een rode jas",
                photo_path=str(photo),
                created_at=inquiry_when,
            )
            session.add(statement)
            session.flush()
            bag["statement"] = statement.id
            bag["link"] = link.id

            sighting_when = at(r.sightings_days, age)
            sighting = Sighting(
                action_id=closed.id,
                seen_at=sighting_when,
                lat=52.09,
                lon=5.12,
                direction="N",
                description="Jongen in rode jas, liep met Jan de Vries",
                reliability="probable",
                call_id=call.id,
                created_by="t",
                created_at=sighting_when,
            )
            session.add(sighting)
            session.flush()
            bag["sighting"] = sighting.id

            audit_when = at(r.audit_days, age)
            for entity, entity_id, detail in (
                ("participant", str(person.id), {"fields": ["phone"], "old": "+31612340000"}),
                ("action", str(closed.id), {"note": "beller 06-12345678 of jan@example.nl"}),
                ("action", str(closed.id), {"from": "draft"}),
            ):
                event = AuditEvent(
                    at=audit_when,
                    actor="operator",
                    verb="edit",
                    entity=entity,
                    entity_id=entity_id,
                    detail=json.dumps(detail),
                    source="web 10.0.0.1",
                )
                session.add(event)
                session.flush()
                bag[f"audit-{entity}-{len(bag)}"] = event.id

        # A tip past its time but of an action still being worked: it stays.
        session.add(
            Tip(
                action_id=active.id,
                recording_path=str(_file(s.recordings_dir / "tips" / str(active.id) / "busy.wav")),
                created_at=NOW - 1000 * DAY,
            )
        )
    logs = s.data_dir / "logs"
    world.files["log-old"] = _file(logs / "old.log", b"+31612340000 called\n")
    world.files["log-fresh"] = _file(logs / "fresh.log", b"today\n")
    old_mtime = (NOW - (r.logs_days + 1) * DAY).timestamp()
    os.utime(world.files["log-old"], (old_mtime, old_mtime))
    fresh_mtime = (NOW - (r.logs_days - 1) * DAY).timestamp()
    os.utime(world.files["log-fresh"], (fresh_mtime, fresh_mtime))
    return world


def snapshot(context: Context) -> dict[str, object]:
    """Everything personal the purge may touch, to compare before and after."""
    with session_scope(context.sessions) as session:
        return {
            "calls": sorted((c.id, c.caller_number, c.participant_id) for c in session.scalars(select(Call))),
            "tips": sorted(session.scalars(select(Tip.id))),
            "deliveries": sorted(session.scalars(select(Delivery.id))),
            "statements": sorted(session.scalars(select(Statement.id))),
            "links": sorted(session.scalars(select(InquiryLink.id))),
            "sightings": sorted((x.id, x.description, x.call_id) for x in session.scalars(select(Sighting))),
            "audit": sorted(
                (e.id, e.entity_id, e.detail)
                for e in session.scalars(select(AuditEvent).where(AuditEvent.actor == "operator"))
            ),
        }


def check_purge(context: Context, world: World) -> None:
    retention = Retention(context.sessions, context.settings, context.facts)
    files_before = {name: path.exists() for name, path in world.files.items()}
    before = snapshot(context)

    dry = retention.run(NOW, dry_run=True)
    expected = {
        "call_numbers": {"calls": 1},
        "tips": {"tips": 1, "callback_notes": 0},
        "deliveries": {"deliveries": 1},
        # Links: only the old inquiry's (the fresh one ended a day inside the retention).
        "inquiries": {"statements": 1, "links": 1},
        "sightings": {"sightings": 1},
        # The participant's event and the one with a number and an address in its text.
        "audit": {"events": 2},
        "logs": {"files": 1},
    }
    assert {k.kind: k.counts for k in dry.kinds} == expected
    assert snapshot(context) == before  # a dry run changes nothing ...
    assert {name: path.exists() for name, path in world.files.items()} == files_before
    with session_scope(context.sessions) as session:  # ... and audits nothing
        assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.entity == "retention")) == 0

    report = retention.run(NOW)
    assert not any(k.failed for k in report.kinds), [k.failed for k in report.kinds]
    assert report.kind("tips").counts == {"tips": 1, "recordings": 1, "callback_notes": 0}
    assert report.kind("inquiries").counts == {"statements": 1, "photos": 1, "links": 1}
    with session_scope(context.sessions) as session:
        calls = {c.id: c for c in session.scalars(select(Call))}
        old_call, fresh_call = calls[world.old["call"]], calls[world.fresh["call"]]
        assert (old_call.caller_number, old_call.participant_id, old_call.recording_path) == (
            None,
            None,
            None,
        )
        assert old_call.outcome == "tip_left" and old_call.action_id == world.action_id  # the call stays
        assert fresh_call.caller_number == "+31612340000"
        tips = set(session.scalars(select(Tip.id)))
        assert (
            world.old["tip"] not in tips and world.fresh["tip"] in tips and len(tips) == 2
        )  # + the busy one
        deliveries = set(session.scalars(select(Delivery.id)))
        assert deliveries == {world.fresh["delivery"]}
        assert set(session.scalars(select(Statement.id))) == {world.fresh["statement"]}
        assert set(session.scalars(select(InquiryLink.id))) == {world.fresh["link"]}
        sightings = {x.id: x for x in session.scalars(select(Sighting))}
        old_sighting, fresh_sighting = sightings[world.old["sighting"]], sightings[world.fresh["sighting"]]
        assert (old_sighting.description, old_sighting.call_id) == ("", None)
        assert (old_sighting.lat, old_sighting.reliability) == (52.09, "probable")
        assert "Jan de Vries" in fresh_sighting.description and fresh_sighting.call_id is not None
        events = {e.id: e for e in session.scalars(select(AuditEvent).where(AuditEvent.actor == "operator"))}
        old_ids = [v for k, v in world.old.items() if k.startswith("audit-")]
        fresh_ids = [v for k, v in world.fresh.items() if k.startswith("audit-")]
        person_event, number_event, plain_event = (events[i] for i in old_ids)
        assert (person_event.detail, person_event.entity_id) == (REDACTED, None)
        assert number_event.detail is not None
        assert "06-12345678" not in number_event.detail and "jan@example.nl" not in number_event.detail
        assert "[removed]" in number_event.detail
        assert plain_event.detail == json.dumps({"from": "draft"})
        assert all(events[event_id].detail != REDACTED for event_id in fresh_ids)
        assert "+31612340000" in (events[fresh_ids[0]].detail or "")
        assert "06-12345678" in (events[fresh_ids[1]].detail or "")
        # Each kind audited with its counts, never its contents.
        purges = {
            e.entity_id: json.loads(e.detail or "{}")
            for e in session.scalars(select(AuditEvent).where(AuditEvent.entity == "retention"))
        }
        assert set(purges) == {
            "call_numbers",
            "tips",
            "deliveries",
            "inquiries",
            "sightings",
            "audit",
            "logs",
        }
        assert purges["tips"]["tips"] == 1 and purges["deliveries"]["deliveries"] == 1
        assert "+316" not in json.dumps(purges)
        # The figures were taken before the deliveries and tip went, and are frozen from now on.
        fact = session.get(ActionFact, world.action_id)
        assert fact is not None and fact.sources_purged_at is not None
        assert fact.tips == 2 and fact.calls_total == 2 and fact.outcome_kind == "found_otherwise"
    assert not world.files["tip-old"].exists() and world.files["tip-fresh"].exists()
    assert not world.files["photo-old"].exists() and world.files["photo-fresh"].exists()
    assert not world.files["log-old"].exists() and world.files["log-fresh"].exists()
    assert not list(context.settings.data_dir.rglob("*.purging"))

    context.facts.refresh(world.action_id)  # rows are gone; the figures do not go down
    with session_scope(context.sessions) as session:
        fact = session.get(ActionFact, world.action_id)
        assert fact is not None and fact.tips == 2

    again = retention.run(NOW)  # nothing left to remove: a second run is a no-op
    assert all(k.removed == 0 for k in again.kinds), {k.kind: k.counts for k in again.kinds}


def test_retention_removes_exactly_what_expired_per_kind_on_sqlite(bn_context: Context) -> None:
    check_purge(bn_context, build_world(bn_context))


def test_retention_run_dry_run_on_the_command_line_removes_nothing(
    bn_context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(bn_context)
    with session_scope(bn_context.sessions) as session:  # this command runs on today's clock
        for delivery in session.scalars(select(Delivery)):
            delivery.finished_at = delivery.updated_at = datetime.now(UTC) - 10 * DAY
    before = snapshot(bn_context)
    for name, value in {
        "BURGERNET_DATA_DIR": str(bn_context.settings.data_dir),
        "BURGERNET_DATABASE__URL": bn_context.settings.database_url,
        "BURGERNET_REDIS__URL": bn_context.settings.redis.url,
        "BURGERNET_REDIS__KEY_PREFIX": bn_context.settings.redis.key_prefix,
        "BURGERNET_RETENTION__DELIVERIES_DAYS": "5",
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    dry = runner.invoke(main, ["retention", "run", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "deliveries    older than    5 days: would remove 2 deliveries" in dry.output
    assert snapshot(bn_context) == before
    assert all(path.exists() for path in world.files.values())

    done = runner.invoke(main, ["retention", "run", "--kind", "deliveries", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output.strip().splitlines()[-1])["kinds"]["deliveries"]["deliveries"] == 2
    with session_scope(bn_context.sessions) as session:
        assert session.scalar(select(func.count(Delivery.id))) == 0


@pytest.fixture
def pg_context(postgres_server: ManagedPostgres, redis_server: ManagedRedis) -> Iterator[Context]:
    data_dir = Path(tempfile.mkdtemp(prefix="bn-pg-retention-"))
    context = postgres_context(postgres_server, redis_server, data_dir)
    yield context
    context.close()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.postgres
def test_retention_removes_exactly_what_expired_per_kind_on_postgresql(pg_context: Context) -> None:
    check_purge(pg_context, build_world(pg_context))

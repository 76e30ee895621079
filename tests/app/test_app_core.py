"""The app's sightings in the core and the schema (migration 0017 on SQLite and PostgreSQL), their
retention, the run summary's QR code, and the app's words in Dutch."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import qrcode
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from burgernet import db
from burgernet.db import session_scope
from burgernet.models import Base, PushSubscription, Sighting
from burgernet.retention import Retention
from burgernet.sightings import AppPhoto, AppSighting
from callback_api.participant_app.words import DUTCH, words_script
from callback_api.photos import check_photo
from composition.context import Context
from composition.redis_server import ManagedRedis
from composition.runner import app_link_lines
from testbed.postgres import ManagedPostgres
from tests.app.conftest import World, fake_device, jpeg_with_gps, register_device
from tests.conftest import postgres_context

APP = Path(__file__).resolve().parents[2] / "callback_api" / "participant_app"


def app_sighting(context: Context, action_id: int, **changes: Any) -> int:
    fields: dict[str, Any] = {"description": "Rode jas, richting station", "seen_at": datetime.now(UTC)}
    fields.update(changes)
    view = context.sightings.record_from_app(
        action_id, AppSighting(**fields), photos_dir=context.settings.data_dir / "photos"
    )
    return view.id


def test_migrated_schema_matches_the_sighting_model(bn_context: Context) -> None:
    with bn_context.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diff if "sightings" in str(d)] == []


def test_the_database_keeps_a_panel_sighting_placed_and_never_half_a_place(
    bn_context: Context, world: World
) -> None:
    now = datetime.now(UTC)
    base = {
        "action_id": world.active_id,
        "seen_at": now,
        "reliability": "possible",
        "created_by": "t",
        "created_at": now,
        "description": "",
    }
    for wrong in (
        {"source": "panel", "lat": None, "lon": None},  # the panel always records a place
        {"source": "app", "lat": 52.1, "lon": None},  # half a place
        {"source": "app", "lat": 48.85, "lon": 2.35},  # outside the Netherlands
        {"source": "sms", "lat": 52.1, "lon": 5.1},
    ):
        with pytest.raises(IntegrityError), session_scope(bn_context.sessions) as session:
            session.add(Sighting(**base, **wrong))
    with session_scope(bn_context.sessions) as session:
        session.add(Sighting(**base, source="app", lat=None, lon=None))


def test_a_deleted_subscription_leaves_the_sighting_without_its_reply_channel(
    bn_context: Context, world: World
) -> None:
    device = fake_device()
    subscription_id = register_device(bn_context, device)
    sighting_id = app_sighting(bn_context, world.active_id, endpoint=device.endpoint)
    assert bn_context.sightings.get(sighting_id).has_reply_channel
    with session_scope(bn_context.sessions) as session:
        session.delete(session.get(PushSubscription, subscription_id))
    assert not bn_context.sightings.get(sighting_id).has_reply_channel
    assert bn_context.sightings.get(sighting_id).description == "Rode jas, richting station"


def test_retention_removes_an_app_sightings_photo_and_reply_channel(
    bn_context: Context, world: World
) -> None:
    device = fake_device()
    register_device(bn_context, device)
    photo = check_photo(jpeg_with_gps())
    old = app_sighting(
        bn_context,
        world.active_id,
        photo=AppPhoto(photo.data, photo.extension),
        endpoint=device.endpoint,
        lat=52.09,
        lon=5.12,
    )
    fresh = app_sighting(bn_context, world.active_id, photo=AppPhoto(photo.data, photo.extension))
    days = bn_context.settings.retention.sightings_days
    with session_scope(bn_context.sessions) as session:
        session.execute(
            update(Sighting)
            .where(Sighting.id == old)
            .values(created_at=datetime.now(UTC) - timedelta(days=days + 1))
        )
        old_path = Path(session.scalar(select(Sighting.photo_path).where(Sighting.id == old)) or "")
        fresh_path = Path(session.scalar(select(Sighting.photo_path).where(Sighting.id == fresh)) or "")
    assert old_path.is_file() and fresh_path.is_file()
    retention = Retention(bn_context.sessions, bn_context.settings, bn_context.facts)
    dry = retention.run(kinds=("sightings",), dry_run=True)
    assert dry.kind("sightings").counts == {"sightings": 1, "sighting_photos": 1}
    assert old_path.is_file()
    report = retention.run(kinds=("sightings",))
    assert report.kind("sightings").counts == {"sightings": 1, "sighting_photos": 1}
    assert not old_path.exists() and fresh_path.is_file()
    assert not list(old_path.parent.glob("*.purging"))
    with session_scope(bn_context.sessions) as session:
        row = session.get(Sighting, old)
        assert row is not None
        assert (row.description, row.photo_path, row.push_subscription_id) == ("", None, None)
        assert (row.lat, row.lon, row.source) == (52.09, 5.12, "app")  # time and place stay


def test_a_failed_sighting_leaves_no_photo_behind(bn_context: Context, world: World) -> None:
    photo = check_photo(jpeg_with_gps())
    bn_context.actions.close(
        world.active_id, result_message="Gevonden", outcome_kind="found_otherwise", actor="t"
    )
    with pytest.raises(Exception, match="has ended"):
        app_sighting(bn_context, world.active_id, photo=AppPhoto(photo.data, photo.extension))
    assert not [p for p in (bn_context.settings.data_dir / "photos").rglob("*") if p.is_file()]


@pytest.mark.parametrize("url", ["https://burgernet.example.nl", "http://127.0.0.1:8080/"])
def test_the_run_summary_prints_the_app_link_and_its_qr_code(url: str) -> None:
    lines = app_link_lines(url)
    app_url = url.rstrip("/") + "/app/"
    assert lines[0].strip() == f"Participant app: {app_url}"
    drawn = [line[2:] for line in lines if line.strip() and set(line.strip()) <= set("█▀▄ \xa0")]
    # The code of this URL: two rows of modules a line, one character a column, a border of one.
    code = qrcode.QRCode(border=1, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(app_url)
    code.make(fit=True)
    side = code.modules_count + 2
    assert len(drawn) == (side + 1) // 2
    assert all(len(row) == side for row in drawn)
    assert ("https://" in app_url) == (not any("needs web.public_base_url" in line for line in lines))


def test_sqlite_upgrade_and_downgrade_keep_the_panel_sightings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    db.upgrade(url, "0016")
    engine = db.make_engine(url)
    with engine.begin() as connection:
        _seed_for_sighting(connection)
        _insert(
            connection, lat=52.09, lon=5.12, description="paneel", reliability="probable", created_by="anna"
        )
    engine.dispose()
    db.upgrade(url)
    engine = db.make_engine(url)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT source, lat FROM sightings")).all() == [("panel", 52.09)]
        _insert(connection, description="app", reliability="possible", created_by="app", source="app")
    engine.dispose()
    _downgrade(url, "0016")
    engine = db.make_engine(url)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT description FROM sightings")).all() == [("paneel",)]
    engine.dispose()
    db.upgrade(url)


def test_postgres_upgrade_downgrade_and_constraints(
    postgres_server: ManagedPostgres, redis_server: ManagedRedis, tmp_path: Path
) -> None:
    context = postgres_context(postgres_server, redis_server, tmp_path)
    try:
        with context.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert [d for d in diff if "sightings" in str(d)] == []
        with context.engine.begin() as connection:
            _seed_for_sighting(connection)
        with pytest.raises(IntegrityError), context.engine.begin() as connection:
            _insert(connection, description="x", reliability="possible", created_by="anna")  # no place
        with context.engine.begin() as connection:
            _insert(connection, description="x", reliability="possible", created_by="app", source="app")
        context.engine.dispose()
        _downgrade(postgres_server.url, "0016")
        db.upgrade(postgres_server.url)
    finally:
        context.close()


def _insert(connection: Any, **values: object) -> None:
    """A sightings row of action 1, seen and made now, with ``values``."""
    row = {"action_id": 1, "seen_at": datetime.now(UTC), "created_at": datetime.now(UTC), **values}
    names, marks = ", ".join(row), ", ".join(f":{name}" for name in row)
    connection.execute(text(f"INSERT INTO sightings ({names}) VALUES ({marks})"), row)


def _seed_for_sighting(connection: object) -> None:
    """An action with id 1 (the sightings' foreign key), in the region the demo seeded first."""
    execute = connection.execute  # type: ignore[attr-defined]
    region = execute(text("SELECT id FROM regions ORDER BY id LIMIT 1")).scalar()
    if region is None:
        execute(text("INSERT INTO regions (code, name) VALUES ('TT', 'Test')"))
        region = execute(text("SELECT id FROM regions WHERE code = 'TT'")).scalar()
    columns = {row[1] for row in _columns(connection, "actions")}
    values = {
        "id": 1,
        "action_type": "missing_child",
        "title": "t",
        "description": "",
        "status": "draft",
        "region_id": region,
        "area_kind": "circle",
        "center_lat": 52.09,
        "center_lon": 5.12,
        "radius_m": 1000.0,
        "created_at": "2026-12-01 09:00:00",
        "urgency": "urgent",
        "channels": "voice",
    }
    wanted = {k: v for k, v in values.items() if k in columns}
    names = ", ".join(wanted)
    marks = ", ".join(f":{k}" for k in wanted)
    execute(text(f"INSERT INTO actions ({names}) VALUES ({marks})"), wanted)


def _columns(connection: object, table: str) -> list[tuple[object, str]]:
    from sqlalchemy import inspect

    return [(None, column["name"]) for column in inspect(connection).get_columns(table)]


def _downgrade(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(db.alembic_config(url), revision)


# --- words ---------------------------------------------------------------------------------------
_DATA_T = re.compile(r'data-t(?:-label)?="([^"{]+)"')
_TEMPLATE_T = re.compile(r"""\bt\((["'])(.+?)(?<!\\)\1""")


def test_every_text_of_the_app_has_its_dutch() -> None:
    template = (APP / "templates" / "participant_app" / "shell.html").read_text()
    marked = set(_DATA_T.findall(template)) | {m[1] for m in _TEMPLATE_T.findall(template)} | {"Home", "Work"}
    for script in ("app.js", "match.js"):
        source = (APP / "static" / script).read_text()
        marked |= set(re.findall(r"""\bt\(\s*"((?:[^"\\]|\\.)+)"\s*[,)]""", source))
    labels = re.search(r"TYPE_LABELS = \{(.*?)\}", (APP / "static" / "match.js").read_text(), re.S)
    assert labels is not None
    marked |= set(re.findall(r':\s*"([^"]+)"', labels.group(1)))
    assert len(marked) > 60  # the patterns really find the app's texts
    assert sorted(text for text in marked if text not in DUTCH) == []
    # Placeholders survive the translation.
    for english, dutch in DUTCH.items():
        assert sorted(re.findall(r"%\(\w+\)s", english)) == sorted(re.findall(r"%\(\w+\)s", dutch)), english
    assert words_script().startswith("/*") and "self.BURGERNET_WORDS = " in words_script()

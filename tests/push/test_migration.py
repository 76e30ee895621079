"""Migration 0016: push subscriptions, push deliveries beside the participants', the kind
"reply"; the schema matches the models, the old deliveries survive both ways (SQLite and
PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from burgernet import db
from burgernet.models import Base
from testbed.postgres import ManagedPostgres

MINE = ("push_subscriptions", "deliveries", "broadcasts")


def _old_rows(engine: sa.Engine) -> None:
    statements = [
        "INSERT INTO regions (id, code, name) VALUES (1, 'MN', 'Midden-Nederland')",
        "INSERT INTO actions (id, action_type, title, description, region_id, area_kind, postcodes, status,"
        " created_at, started_at) VALUES (1, 'missing_person', 'Oud', '', 1, 'postcodes', '3511', 'active',"
        " '2026-11-01 10:00:00', '2026-11-01 10:01:00')",
        "INSERT INTO participants (id, phone_e164, postcode, lat, lon, language, channel_voice, channel_sms,"
        " channel_email, opted_out, inquiry_opt_in, created_at) VALUES (1, '+31612345678', '3511AB',"
        " 52.09, 5.12, 'nl', true, true, false, false, false, '2026-11-01 09:00:00')",
        "INSERT INTO broadcasts (id, action_id, kind, message, status, created_at, priority, total)"
        " VALUES (1, 1, 'alert', '', 'done', '2026-11-01 10:01:00', 1, 1)",
        "INSERT INTO deliveries (id, broadcast_id, participant_id, channel, status, attempts, updated_at)"
        " VALUES (1, 1, 1, 'sms', 'sent', 1, '2026-11-01 10:02:00')",
    ]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))


def _push_rows(connection: sa.Connection) -> None:
    connection.execute(
        sa.text(
            "INSERT INTO push_subscriptions (id, endpoint, p256dh, auth, cell, lang, created_at, updated_at,"
            " failures) VALUES (1, 'https://push.example.org/1', 'k', 'a', 'u173', 'nl',"
            " '2026-11-01 09:00:00', '2026-11-01 09:00:00', 0)"
        )
    )
    connection.execute(
        sa.text(
            "INSERT INTO broadcasts (id, action_id, kind, message, status, created_at, priority, total)"
            " VALUES (2, 1, 'reply', 'Waar?', 'pending', '2026-11-01 11:00:00', 1, 1)"
        )
    )
    connection.execute(
        sa.text(
            "INSERT INTO deliveries (id, broadcast_id, push_subscription_id, channel, status, attempts,"
            " updated_at) VALUES (2, 2, 1, 'push', 'queued', 0, '2026-11-01 11:00:00')"
        )
    )


def _round_trip(url: str) -> None:
    engine = db.make_engine(url)
    db.upgrade(url, "0015")
    _old_rows(engine)
    db.upgrade(url)
    with engine.begin() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert [d for d in diff if any(name in str(d) for name in MINE)] == []
        _push_rows(connection)
    # A delivery names one recipient: a push delivery no participant, the others no subscription.
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO deliveries (id, broadcast_id, participant_id, push_subscription_id, channel,"
                " status, attempts, updated_at) VALUES (3, 2, 1, 1, 'push', 'queued', 0, '2026-11-01')"
            )
        )
    # Deleting the subscription keeps its delivery's outcome (the endpoint goes).
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM push_subscriptions WHERE id = 1"))
        kept = connection.execute(sa.text("SELECT push_subscription_id FROM deliveries WHERE id = 2")).all()
    assert kept == [(None,)]
    command.downgrade(db.alembic_config(url), "0015")
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, participant_id, channel FROM deliveries")).all()
        kinds = connection.execute(sa.text("SELECT kind FROM broadcasts")).scalars().all()
    assert rows == [(1, 1, "sms")]
    assert kinds == ["alert"]
    engine.dispose()


def test_migration_0016_on_sqlite(tmp_path: Path) -> None:
    _round_trip(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.postgres
def test_migration_0016_on_postgresql(postgres_server: ManagedPostgres) -> None:
    engine = db.make_engine(postgres_server.url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    _round_trip(postgres_server.url)

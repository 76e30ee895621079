"""Migration 0012: free-text outcomes become the kind "other" with their text kept; the new
tables match the models; the downgrade gives the actions back without losing a row."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from burgernet import db
from burgernet.models import Base
from composition.context import Context
from testbed.postgres import ManagedPostgres

FACT_TABLES = ("action_facts", "action_channel_facts", "outcome_kind")


def _insert_actions(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO regions (id, code, name) VALUES (1, 'MN', 'Midden-Nederland')")
        )
        rows = [
            (1, "closed", "Gevonden in het park, na een tip van een buurman"),
            (2, "closed", None),
            (3, "active", None),
            (4, "closed", "   "),
        ]
        for action_id, status, outcome in rows:
            connection.execute(
                sa.text(
                    "INSERT INTO actions (id, action_type, title, description, region_id, area_kind,"
                    " postcodes, status, created_at, started_at, closed_at, outcome) VALUES (:id,"
                    " 'missing_person', 'Oud', '', 1, 'postcodes', '3511', :status, '2026-11-01 10:00:00',"
                    " '2026-11-01 10:01:00', :closed, :outcome)"
                ),
                {
                    "id": action_id,
                    "status": status,
                    "closed": "2026-11-01 12:00:00" if status == "closed" else None,
                    "outcome": outcome,
                },
            )


def test_free_text_outcomes_become_other_with_the_text_kept_and_downgrade_loses_nothing(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db.upgrade(url, "0011")
    engine = db.make_engine(url)
    _insert_actions(engine)

    db.upgrade(url, "0012")
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, outcome_kind, outcome FROM actions ORDER BY id")).all()
    assert [tuple(row) for row in rows] == [
        (1, "other", "Gevonden in het park, na een tip van een buurman"),
        (2, None, None),  # closed without a text: nothing to migrate
        (3, None, None),  # still active
        (4, None, "   "),
    ]
    assert {"action_facts", "action_channel_facts"} <= set(sa.inspect(engine).get_table_names())

    command.downgrade(db.alembic_config(url), "0011")
    assert "outcome_kind" not in {c["name"] for c in sa.inspect(engine).get_columns("actions")}
    assert "action_facts" not in sa.inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM actions")).scalar() == 4
        assert connection.execute(sa.text("SELECT outcome FROM actions WHERE id = 1")).scalar() is not None
    engine.dispose()


def test_migrated_schema_matches_the_facts_models(bn_context: Context) -> None:
    with bn_context.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in diff if any(name in str(d) for name in FACT_TABLES)] == []


@pytest.mark.postgres
def test_free_text_outcomes_become_other_on_postgresql(postgres_server: ManagedPostgres) -> None:
    url = postgres_server.url
    engine = db.make_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.upgrade(url, "0011")
    _insert_actions(engine)
    db.upgrade(url)
    with engine.connect() as connection:
        kinds: dict[int, str | None] = {
            int(row[0]): row[1] for row in connection.execute(sa.text("SELECT id, outcome_kind FROM actions"))
        }
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert kinds == {1: "other", 2: None, 3: None, 4: None}
    assert [d for d in diff if any(name in str(d) for name in FACT_TABLES)] == []
    # PostgreSQL also refuses a kind outside the list (SQLite leaves that to the service).
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(sa.text("UPDATE actions SET outcome_kind = 'lost' WHERE id = 1"))
    command.downgrade(db.alembic_config(url), "0011")
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM actions")).scalar() == 4
    engine.dispose()

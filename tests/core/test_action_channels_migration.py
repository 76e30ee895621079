"""Migration 0011 on SQLite: actions made before it keep what they had (every channel, the
urgency their type implied), and the downgrade gives the table back without losing a row."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from burgernet import db


def _columns(engine: sa.Engine) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns("actions")}


def test_existing_actions_keep_all_channels_and_their_types_urgency_and_downgrade_loses_nothing(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db.upgrade(url, "0010")
    engine = db.make_engine(url)
    types = ["amber_alert", "missing_child", "missing_person", "vehicle", "suspect", "information"]
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO regions (id, code, name) VALUES (1, 'MN', 'Midden-Nederland')")
        )
        for n, action_type in enumerate(types, start=1):
            connection.execute(
                sa.text(
                    "INSERT INTO actions (id, action_type, title, description, region_id, area_kind,"
                    " postcodes, status, created_at) VALUES (:id, :type, 'Oud', '', 1, 'postcodes',"
                    " '3511', 'draft', '2026-12-01 10:00:00')"
                ),
                {"id": n, "type": action_type},
            )

    db.upgrade(url)
    with engine.connect() as connection:
        rows = {
            str(t): str(u) for t, u in connection.execute(sa.text("SELECT action_type, urgency FROM actions"))
        }
        channels = set(connection.execute(sa.text("SELECT channels FROM actions")).scalars())
    assert rows == {
        "amber_alert": "amber",
        "missing_child": "urgent",
        "missing_person": "urgent",
        "vehicle": "information",
        "suspect": "information",
        "information": "information",
    }
    assert channels == {"voice,sms,email"}

    command.downgrade(db.alembic_config(url), "0010")
    assert {"channels", "urgency"}.isdisjoint(_columns(engine))
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM actions")).scalar() == len(types)
    db.upgrade(url)  # and up again: the columns come back with their defaults
    assert {"channels", "urgency"} <= _columns(engine)
    engine.dispose()

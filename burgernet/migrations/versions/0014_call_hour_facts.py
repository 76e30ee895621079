"""calls per UTC hour for the reports

The reports read the calls table twice (busiest hours and calls per period; the centralists'
answer rates): at a year of national history (~1.4 million calls) that alone took seconds. Two
anonymous summary tables hold the same figures per UTC hour (burgernet/call_hours.py), kept
forever like action_facts; ``call_hour_refreshes`` says how far they are up to date and is the
lock of a refresh. ``ix_calls_ended_at`` lets a refresh find the calls that ended since the
last one without reading the table.

The summary is filled here from the calls already present (the code of burgernet.call_hours,
run once on this migration's connection); from then on the worker's facts refresh, each minute,
and every report keep it current.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 09:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_hour_facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hour_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("region_code", sa.String(8), nullable=True),
        sa.Column("action_type", sa.String(20), nullable=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(12), nullable=True),
        sa.Column("centralist_id", sa.Integer(), nullable=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("answered_within_20s", sa.Integer(), nullable=False),
        sa.Column("wait_seconds_sum", sa.Float(), nullable=False),
        sa.Column("wait_seconds_max", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_hour_facts")),
    )
    op.create_index(op.f("ix_call_hour_facts_hour_start"), "call_hour_facts", ["hour_start"], unique=False)
    op.create_table(
        "call_hour_team_facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hour_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("region_code", sa.String(8), nullable=True),
        sa.Column("action_type", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("centralist_id", sa.Integer(), nullable=False),
        sa.Column("offered", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_hour_team_facts")),
    )
    op.create_index(
        op.f("ix_call_hour_team_facts_hour_start"), "call_hour_team_facts", ["hour_start"], unique=False
    )
    op.create_table(
        "call_hour_refreshes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_call_id", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_hour_refreshes")),
    )
    op.create_index("ix_calls_ended_at", "calls", ["ended_at"], unique=False)

    from burgernet.call_hours import refresh_in  # the same code as every later refresh

    session = Session(bind=op.get_bind())
    refresh_in(session)
    session.flush()


def downgrade() -> None:
    op.drop_index("ix_calls_ended_at", table_name="calls")
    op.drop_table("call_hour_refreshes")
    op.drop_index(op.f("ix_call_hour_team_facts_hour_start"), table_name="call_hour_team_facts")
    op.drop_table("call_hour_team_facts")
    op.drop_index(op.f("ix_call_hour_facts_hour_start"), table_name="call_hour_facts")
    op.drop_table("call_hour_facts")

"""broadcast queue and provider events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), server_default="2", nullable=False))
        batch_op.add_column(sa.Column("total", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint("priority", "priority IN (0, 1, 2)")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "provider_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("event_key", sa.String(length=160), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_events")),
        sa.UniqueConstraint("provider", "event_key", name="uq_provider_events_once"),
    )


def downgrade() -> None:
    op.drop_table("provider_events")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("finished_at")
        batch_op.drop_column("sending_at")
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_constraint("ck_broadcasts_priority", type_="check")
        batch_op.drop_column("started_at")
        batch_op.drop_column("total")
        batch_op.drop_column("priority")

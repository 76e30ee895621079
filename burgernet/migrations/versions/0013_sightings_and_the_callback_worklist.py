"""sightings and the call-back worklist

Sightings recorded by centralists (``sightings``), the call-back worklist with its claims and
results (``callback_items``), and a third kind of call: ``callback``, a centralist's
click-to-call from the worklist.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 08:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_IN_NL = "lat BETWEEN 50.6 AND 53.8 AND lon BETWEEN 3.0 AND 7.5"
_DIRECTIONS = "'N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW'"


def _call_kinds(allowed: str) -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_calls_kind"), type_="check")
        batch_op.create_check_constraint("kind", f"kind IN ({allowed})")


def upgrade() -> None:
    _call_kinds("'inbound', 'transfer', 'callback'")
    op.create_table(
        "sightings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("direction", sa.String(2), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("reliability", sa.String(10), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("statement_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_IN_NL, name=op.f("ck_sightings_in_nl")),
        sa.CheckConstraint(
            "reliability IN ('confirmed', 'probable', 'possible', 'doubtful')",
            name=op.f("ck_sightings_reliability"),
        ),
        sa.CheckConstraint(
            f"direction IS NULL OR direction IN ({_DIRECTIONS})", name=op.f("ck_sightings_direction")
        ),
        sa.ForeignKeyConstraint(
            ["action_id"], ["actions.id"], name=op.f("fk_sightings_action_id_actions"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_sightings_call_id_calls"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["statements.id"],
            name=op.f("fk_sightings_statement_id_statements"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sightings")),
    )
    op.create_index(op.f("ix_sightings_action_id"), "sightings", ["action_id"])

    op.create_table(
        "callback_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(10), nullable=False),
        sa.Column("tip_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("action_id", sa.Integer(), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(80), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("callback_call_id", sa.Integer(), nullable=True),
        sa.Column("result", sa.String(12), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("done_by", sa.String(80), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "reason IN ('tip', 'abandoned', 'unanswered')", name=op.f("ck_callback_items_reason")
        ),
        sa.CheckConstraint(
            "result IS NULL OR result IN ('reached', 'no_answer', 'voicemail', 'wrong_number')",
            name=op.f("ck_callback_items_result"),
        ),
        sa.CheckConstraint(
            "(tip_id IS NOT NULL) OR (call_id IS NOT NULL)", name=op.f("ck_callback_items_has_source")
        ),
        sa.CheckConstraint(
            "(done_at IS NULL) = (result IS NULL)", name=op.f("ck_callback_items_done_has_result")
        ),
        sa.ForeignKeyConstraint(
            ["tip_id"], ["tips.id"], name=op.f("fk_callback_items_tip_id_tips"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_callback_items_call_id_calls"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["actions.id"],
            name=op.f("fk_callback_items_action_id_actions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["callback_call_id"],
            ["calls.id"],
            name=op.f("fk_callback_items_callback_call_id_calls"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_items")),
        sa.UniqueConstraint("tip_id", name=op.f("uq_callback_items_tip_id")),
        sa.UniqueConstraint("call_id", name=op.f("uq_callback_items_call_id")),
    )
    op.create_index(op.f("ix_callback_items_action_id"), "callback_items", ["action_id"])
    op.create_index(op.f("ix_callback_items_done_at"), "callback_items", ["done_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_callback_items_done_at"), table_name="callback_items")
    op.drop_index(op.f("ix_callback_items_action_id"), table_name="callback_items")
    op.drop_table("callback_items")
    op.drop_index(op.f("ix_sightings_action_id"), table_name="sightings")
    op.drop_table("sightings")
    op.execute("DELETE FROM calls WHERE kind = 'callback'")
    _call_kinds("'inbound', 'transfer'")

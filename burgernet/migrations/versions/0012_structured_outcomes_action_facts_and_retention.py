"""structured outcomes, action facts and retention

Closing an action records an outcome kind from a fixed list (``actions.outcome_kind``); the
free-text ``outcome`` becomes the internal note. Every action closed before this migration with
a free-text outcome gets the kind ``other``, its text kept.

Two new tables hold each action's anonymous figures (burgernet/facts.py), kept forever while
retention removes the personal rows they were counted from (burgernet/retention.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 08:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_OUTCOME_KINDS = "'solved_by_tip', 'found_otherwise', 'not_found', 'cancelled', 'other'"


def _counter(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), server_default="0", nullable=False)


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild on SQLite: a batch copy of "actions" would drop and
    # re-create the table that teams, broadcasts, calls and tips refer to).
    op.add_column("actions", sa.Column("outcome_kind", sa.String(20), nullable=True))
    op.execute(
        "UPDATE actions SET outcome_kind = 'other' "
        "WHERE status = 'closed' AND outcome IS NOT NULL AND TRIM(outcome) != ''"
    )
    if op.get_bind().dialect.name == "postgresql":
        # SQLite cannot add a CHECK without copying the table; there the service checks the kind.
        op.create_check_constraint(
            op.f("ck_actions_outcome_kind"),
            "actions",
            f"outcome_kind IS NULL OR outcome_kind IN ({_OUTCOME_KINDS})",
        )

    op.create_table(
        "action_facts",
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("action_type", sa.String(20), nullable=False),
        sa.Column("region_code", sa.String(8), nullable=False),
        sa.Column("urgency", sa.String(12), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome_kind", sa.String(20), nullable=True),
        sa.Column("first_alert_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_call_at", sa.DateTime(timezone=True), nullable=True),
        _counter("calls_total"),
        _counter("calls_connected"),
        _counter("calls_tip_left"),
        _counter("calls_abandoned"),
        _counter("calls_failed"),
        _counter("calls_no_action"),
        _counter("calls_unobserved"),
        _counter("calls_answered_within_20s"),
        sa.Column("longest_wait_s", sa.Float(), nullable=True),
        _counter("tips"),
        _counter("callbacks_done"),
        _counter("sightings"),
        _counter("result_deliveries"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sources_purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            f"outcome_kind IS NULL OR outcome_kind IN ({_OUTCOME_KINDS})",
            name=op.f("ck_action_facts_outcome_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["actions.id"],
            name=op.f("fk_action_facts_action_id_actions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("action_id", name=op.f("pk_action_facts")),
    )
    op.create_index(op.f("ix_action_facts_started_at"), "action_facts", ["started_at"], unique=False)

    op.create_table(
        "action_channel_facts",
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        _counter("recipients"),
        _counter("delivered"),
        _counter("failed"),
        _counter("opted_out"),
        sa.Column("t50_s", sa.Float(), nullable=True),
        sa.Column("t90_s", sa.Float(), nullable=True),
        sa.Column("t100_s", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('alert', 'update', 'result')", name=op.f("ck_action_channel_facts_kind")
        ),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["actions.id"],
            name=op.f("fk_action_channel_facts_action_id_actions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("action_id", "channel", "kind", name=op.f("pk_action_channel_facts")),
    )


def downgrade() -> None:
    op.drop_table("action_channel_facts")
    op.drop_index(op.f("ix_action_facts_started_at"), table_name="action_facts")
    op.drop_table("action_facts")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_actions_outcome_kind"), "actions", type_="check")
    # Plain DROP COLUMN (SQLite 3.35+). The kind is lost; the free-text note stays in "outcome".
    op.drop_column("actions", "outcome_kind")

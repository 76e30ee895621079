"""panel settings and message templates

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ACTION_TYPES = "'missing_person', 'missing_child', 'amber_alert', 'suspect', 'vehicle', 'information'"


def upgrade() -> None:
    # A centralist who leaves is deactivated, never deleted: calls and action teams refer to them.
    with op.batch_alter_table("centralists", schema=None) as batch_op:
        batch_op.add_column(sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False))

    op.create_table(
        "message_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action_type", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=80), nullable=True),
        sa.CheckConstraint(
            f"action_type IN ({_ACTION_TYPES})", name=op.f("ck_message_templates_action_type")
        ),
        sa.CheckConstraint("kind IN ('alert', 'update', 'result')", name=op.f("ck_message_templates_kind")),
        sa.CheckConstraint("channel IN ('voice', 'sms', 'email')", name=op.f("ck_message_templates_channel")),
        sa.CheckConstraint("language IN ('nl', 'en')", name=op.f("ck_message_templates_language")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_templates")),
        sa.UniqueConstraint("action_type", "kind", "channel", "language", name="uq_message_templates_key"),
    )
    # The action page's timeline reads the audit log by entity: an index, not a full scan.
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_entity", ["entity", "entity_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_entity")
    op.drop_table("message_templates")
    with op.batch_alter_table("centralists", schema=None) as batch_op:
        batch_op.drop_column("active")

"""action channels and urgency

An action records the channels its broadcasts use and its urgency (the queue priority), set
from its type's template. Existing actions keep what they had: every channel, and the urgency
their type implied (AMBER Alert amber; missing child or person urgent; the rest information).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 06:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN with a constant server default: no table rebuild on SQLite.
    op.add_column(
        "actions",
        sa.Column("channels", sa.String(20), server_default="voice,sms,email", nullable=False),
    )
    op.add_column(
        "actions",
        sa.Column("urgency", sa.String(12), server_default="information", nullable=False),
    )
    op.execute("UPDATE actions SET urgency = 'amber' WHERE action_type = 'amber_alert'")
    op.execute(
        "UPDATE actions SET urgency = 'urgent' WHERE action_type IN ('missing_child', 'missing_person')"
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+ has it): a batch rebuild of "actions" would drop and
    # re-create the table that the team, broadcasts and calls refer to.
    op.drop_column("actions", "urgency")
    op.drop_column("actions", "channels")

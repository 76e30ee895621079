"""recipient selection index

Replaces the (lat, lon) index with one that also holds every column recipient selection
reads (opt-out, the three channels, id), so the per-strip range scans never visit the table.
Its leading columns are the old index's, so nothing that used the old one loses out.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 03:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COVERING = ["lat", "lon", "opted_out", "channel_voice", "channel_sms", "channel_email", "id"]


def upgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.create_index("ix_participants_recipients", _COVERING, unique=False)
        batch_op.drop_index("ix_participants_lat_lon")


def downgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.create_index("ix_participants_lat_lon", ["lat", "lon"], unique=False)
        batch_op.drop_index("ix_participants_recipients")

"""night rules and estimates

* ``participants.night_alerts``: the participant wants alerts in the quiet hours too (default
  no: a voice alert of a non-urgent action then waits for the morning).
* ``deliveries.not_before``: a delivery held by the night rules goes at this moment, not
  earlier; the worker keeps it in the delayed set until then, also after a restart.
* ``broadcasts.estimate``: the estimated time to 50/90/100 % per channel, made when the
  broadcast was fanned out (JSON, :mod:`burgernet.eta`), shown beside the real times.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("night_alerts", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("estimate", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_column("estimate")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("not_before")
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_column("night_alerts")

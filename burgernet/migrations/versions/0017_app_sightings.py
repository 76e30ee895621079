"""sightings from the participant app

A participant can send a sighting from the app (``callback_api/participant_app``): with or
without a place (sharing it is the participant's choice), with an optional photo and with a
reply channel, the device's push subscription from 0016. So ``sightings`` gets:

* ``lat``/``lon`` nullable; ``in_nl`` still holds every place given (a CHECK passes on NULL),
  ``whole_place`` refuses half a place and ``panel_has_place`` keeps a place required for
  sightings recorded in the panel;
* ``source`` (``panel`` | ``app``; existing rows are the panel's);
* ``photo_path``: the cleaned photo under ``<data_dir>/photos/sightings/``;
* ``push_subscription_id``: the reply channel, SET NULL when the subscription goes.

Downgrade removes the app's sightings (they may have no place, which 0016 cannot hold) and
their photo paths with them; the photo files are left for retention's sweep of the folder.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite changes a column's nullability and adds constraints only by copying.
    with op.batch_alter_table("sightings", schema=None) as batch_op:
        batch_op.alter_column("lat", existing_type=sa.Float(), nullable=True)
        batch_op.alter_column("lon", existing_type=sa.Float(), nullable=True)
        batch_op.add_column(sa.Column("source", sa.String(8), nullable=False, server_default="panel"))
        batch_op.add_column(sa.Column("photo_path", sa.String(500), nullable=True))
        batch_op.add_column(sa.Column("push_subscription_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_sightings_push_subscription_id_push_subscriptions"),
            "push_subscriptions",
            ["push_subscription_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_check_constraint("whole_place", "(lat IS NULL) = (lon IS NULL)")
        batch_op.create_check_constraint("panel_has_place", "source = 'app' OR lat IS NOT NULL")
        batch_op.create_check_constraint("source", "source IN ('panel', 'app')")
        batch_op.create_index(
            batch_op.f("ix_sightings_push_subscription_id"), ["push_subscription_id"], unique=False
        )


def downgrade() -> None:
    # A sighting without a place cannot go back; nor can the app's reply channel or photo.
    op.execute("DELETE FROM sightings WHERE source = 'app'")
    with op.batch_alter_table("sightings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sightings_push_subscription_id"))
        batch_op.drop_constraint(batch_op.f("ck_sightings_source"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_sightings_panel_has_place"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_sightings_whole_place"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_sightings_push_subscription_id_push_subscriptions"), type_="foreignkey"
        )
        batch_op.drop_column("push_subscription_id")
        batch_op.drop_column("photo_path")
        batch_op.drop_column("source")
        batch_op.alter_column("lon", existing_type=sa.Float(), nullable=False)
        batch_op.alter_column("lat", existing_type=sa.Float(), nullable=False)

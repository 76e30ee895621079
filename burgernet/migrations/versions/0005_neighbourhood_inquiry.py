"""neighbourhood inquiry

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # An inquiry's area is stored like an action's (circle, polygon or postcode list).
    with op.batch_alter_table("inquiries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("area_kind", sa.String(length=10), server_default="polygon", nullable=False)
        )
        batch_op.add_column(sa.Column("center_lat", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("center_lon", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("radius_m", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("postcodes", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("created_by", sa.String(length=80), nullable=True))
        batch_op.alter_column("area_geojson", existing_type=sa.Text(), nullable=True)
        batch_op.create_check_constraint(
            op.f("ck_inquiries_area_kind"), "area_kind IN ('circle', 'polygon', 'postcodes')"
        )
        batch_op.create_check_constraint(
            op.f("ck_inquiries_circle_complete"),
            "(area_kind != 'circle') OR (center_lat IS NOT NULL AND center_lon IS NOT NULL AND radius_m > 0)",
        )
        batch_op.create_check_constraint(
            op.f("ck_inquiries_polygon_complete"), "(area_kind != 'polygon') OR (area_geojson IS NOT NULL)"
        )
        batch_op.create_check_constraint(
            op.f("ck_inquiries_postcodes_complete"), "(area_kind != 'postcodes') OR (postcodes IS NOT NULL)"
        )
        batch_op.create_index(batch_op.f("ix_inquiries_action_id"), ["action_id"], unique=False)

    with op.batch_alter_table("inquiry_links", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("delivery", sa.String(length=8), server_default="pending", nullable=False)
        )
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.String(length=300), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_inquiry_links_delivery"), "delivery IN ('pending', 'sent', 'failed')"
        )
        batch_op.create_check_constraint(
            op.f("ck_inquiry_links_sent_has_time"), "(delivery != 'sent') OR (sent_at IS NOT NULL)"
        )

    op.create_table(
        "inquiry_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inquiry_id", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("recipients", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["inquiry_id"],
            ["inquiries.id"],
            name=op.f("fk_inquiry_updates_inquiry_id_inquiries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inquiry_updates")),
    )
    with op.batch_alter_table("inquiry_updates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inquiry_updates_inquiry_id"), ["inquiry_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inquiry_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inquiry_updates_inquiry_id"))
    op.drop_table("inquiry_updates")

    with op.batch_alter_table("inquiry_links", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_inquiry_links_sent_has_time"), type_="check")
        batch_op.drop_constraint(op.f("ck_inquiry_links_delivery"), type_="check")
        batch_op.drop_column("last_error")
        batch_op.drop_column("sent_at")
        batch_op.drop_column("delivery")

    # Before 0005 every inquiry needed GeoJSON: circle and postcode inquiries cannot go back.
    op.execute("DELETE FROM inquiries WHERE area_geojson IS NULL")
    with op.batch_alter_table("inquiries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inquiries_action_id"))
        batch_op.drop_constraint(op.f("ck_inquiries_postcodes_complete"), type_="check")
        batch_op.drop_constraint(op.f("ck_inquiries_polygon_complete"), type_="check")
        batch_op.drop_constraint(op.f("ck_inquiries_circle_complete"), type_="check")
        batch_op.drop_constraint(op.f("ck_inquiries_area_kind"), type_="check")
        batch_op.alter_column("area_geojson", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("created_by")
        batch_op.drop_column("postcodes")
        batch_op.drop_column("radius_m")
        batch_op.drop_column("center_lon")
        batch_op.drop_column("center_lat")
        batch_op.drop_column("area_kind")

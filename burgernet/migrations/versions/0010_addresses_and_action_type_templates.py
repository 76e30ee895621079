"""addresses and action type templates

The operator's first minute: BAG addresses and their names (places, streets, PC4 areas) for
the panel's search box, and what a new action of each type starts with.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 05:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Search keys compare byte by byte on PostgreSQL too (see burgernet.models._SEARCH_KEY).
_SEARCH_KEY = sa.String(80).with_variant(sa.String(80, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("postcode", sa.String(6), nullable=False),
        sa.Column("house_number", sa.Integer(), nullable=False),
        sa.Column("house_letter", sa.String(1), server_default="", nullable=False),
        sa.Column("house_suffix", sa.String(4), server_default="", nullable=False),
        sa.Column("street", sa.String(80), nullable=False),
        sa.Column("place", sa.String(80), nullable=False),
        sa.Column("street_key", _SEARCH_KEY, nullable=False),
        sa.Column("place_key", _SEARCH_KEY, nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.CheckConstraint(
            "lat BETWEEN 50.6 AND 53.8 AND lon BETWEEN 3.0 AND 7.5", name=op.f("ck_addresses_in_nl")
        ),
        sa.CheckConstraint("house_number > 0", name=op.f("ck_addresses_house_number")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addresses")),
        sa.UniqueConstraint(
            "postcode", "house_number", "house_letter", "house_suffix", name="uq_addresses_number"
        ),
    )
    op.create_index("ix_addresses_street", "addresses", ["street_key", "house_number", "place_key"])
    op.create_table(
        "address_names",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(6), nullable=False),
        sa.Column("key", _SEARCH_KEY, nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("place", sa.String(80), server_default="", nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("addresses", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind IN ('place', 'street', 'pc4')", name=op.f("ck_address_names_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address_names")),
    )
    op.create_index(op.f("ix_address_names_key"), "address_names", ["key"])
    op.create_table(
        "action_type_templates",
        sa.Column("action_type", sa.String(20), nullable=False),
        sa.Column("radius_m", sa.Integer(), nullable=False),
        sa.Column("channels", sa.String(20), nullable=False),
        sa.Column("urgency", sa.String(12), nullable=False),
        sa.Column("title_block", sa.String(120), server_default="", nullable=False),
        sa.Column("description_block", sa.Text(), server_default="", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(80), nullable=True),
        sa.CheckConstraint(
            "action_type IN ('missing_person', 'missing_child', 'amber_alert', 'suspect', 'vehicle', 'information')",
            name=op.f("ck_action_type_templates_action_type"),
        ),
        sa.CheckConstraint(
            "radius_m > 0 AND radius_m <= 300000", name=op.f("ck_action_type_templates_radius_m")
        ),
        sa.CheckConstraint(
            "urgency IN ('amber', 'urgent', 'information')", name=op.f("ck_action_type_templates_urgency")
        ),
        sa.PrimaryKeyConstraint("action_type", name=op.f("pk_action_type_templates")),
    )


def downgrade() -> None:
    op.drop_table("action_type_templates")
    op.drop_index(op.f("ix_address_names_key"), table_name="address_names")
    op.drop_table("address_names")
    op.drop_index("ix_addresses_street", table_name="addresses")
    op.drop_table("addresses")

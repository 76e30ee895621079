"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29 00:18:11.921824
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("verb", sa.String(length=40), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=80), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)

    op.create_table(
        "regions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("boundary_geojson", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_regions")),
        sa.UniqueConstraint("code", name=op.f("uq_regions_code")),
        sa.UniqueConstraint("name", name=op.f("uq_regions_name")),
    )
    op.create_table(
        "actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action_type", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("photo_path", sa.String(length=300), nullable=True),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("area_kind", sa.String(length=10), nullable=False),
        sa.Column("center_lat", sa.Float(), nullable=True),
        sa.Column("center_lon", sa.Float(), nullable=True),
        sa.Column("radius_m", sa.Float(), nullable=True),
        sa.Column("area_geojson", sa.Text(), nullable=True),
        sa.Column("postcodes", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=200), nullable=True),
        sa.Column("result_message", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=80), nullable=True),
        sa.CheckConstraint(
            "(area_kind != 'circle') OR (center_lat IS NOT NULL AND center_lon IS NOT NULL AND radius_m > 0)",
            name=op.f("ck_actions_circle_complete"),
        ),
        sa.CheckConstraint(
            "(area_kind != 'polygon') OR (area_geojson IS NOT NULL)", name=op.f("ck_actions_polygon_complete")
        ),
        sa.CheckConstraint(
            "(area_kind != 'postcodes') OR (postcodes IS NOT NULL)",
            name=op.f("ck_actions_postcodes_complete"),
        ),
        sa.CheckConstraint(
            "(status != 'closed') OR (closed_at IS NOT NULL)", name=op.f("ck_actions_closed_has_time")
        ),
        sa.CheckConstraint(
            "(status = 'draft') OR (started_at IS NOT NULL) OR (closed_at IS NOT NULL)",
            name=op.f("ck_actions_started_when_live"),
        ),
        sa.CheckConstraint(
            "action_type IN ('missing_person', 'missing_child', 'amber_alert', 'suspect', 'vehicle', 'information')",
            name=op.f("ck_actions_action_type"),
        ),
        sa.CheckConstraint(
            "area_kind IN ('circle', 'polygon', 'postcodes', 'national')", name=op.f("ck_actions_area_kind")
        ),
        sa.CheckConstraint("status IN ('draft', 'active', 'closed')", name=op.f("ck_actions_status")),
        sa.ForeignKeyConstraint(
            ["region_id"], ["regions.id"], name=op.f("fk_actions_region_id_regions"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actions")),
    )
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_actions_region_id"), ["region_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_actions_status"), ["status"], unique=False)

    op.create_table(
        "centralists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("sip_endpoint", sa.String(length=40), nullable=False),
        sa.Column("sip_password", sa.String(length=80), nullable=True),
        sa.Column("sip_contact", sa.String(length=200), nullable=True),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("on_duty", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["region_id"], ["regions.id"], name=op.f("fk_centralists_region_id_regions"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_centralists")),
        sa.UniqueConstraint("sip_endpoint", name=op.f("uq_centralists_sip_endpoint")),
    )
    with op.batch_alter_table("centralists", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_centralists_region_id"), ["region_id"], unique=False)

    op.create_table(
        "participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("postcode", sa.String(length=6), nullable=False),
        sa.Column("house_number", sa.String(length=10), nullable=True),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("channel_voice", sa.Boolean(), nullable=False),
        sa.Column("channel_sms", sa.Boolean(), nullable=False),
        sa.Column("channel_email", sa.Boolean(), nullable=False),
        sa.Column("inquiry_opt_in", sa.Boolean(), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("language IN ('nl', 'en')", name=op.f("ck_participants_language")),
        sa.CheckConstraint("phone_e164 LIKE '+%'", name=op.f("ck_participants_phone_e164")),
        sa.CheckConstraint(
            "(NOT opted_out) OR (opted_out_at IS NOT NULL)", name=op.f("ck_participants_opted_out_at")
        ),
        sa.CheckConstraint(
            "lat BETWEEN 50.6 AND 53.8 AND lon BETWEEN 3.0 AND 7.5", name=op.f("ck_participants_in_nl")
        ),
        sa.ForeignKeyConstraint(
            ["region_id"], ["regions.id"], name=op.f("fk_participants_region_id_regions"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participants")),
        sa.UniqueConstraint("phone_e164", name=op.f("uq_participants_phone_e164")),
    )
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.create_index("ix_participants_lat_lon", ["lat", "lon"], unique=False)
        batch_op.create_index(batch_op.f("ix_participants_postcode"), ["postcode"], unique=False)
        batch_op.create_index(batch_op.f("ix_participants_region_id"), ["region_id"], unique=False)

    op.create_table(
        "postcode_areas",
        sa.Column("pc4", sa.String(length=4), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("boundary_geojson", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "lat BETWEEN 50.6 AND 53.8 AND lon BETWEEN 3.0 AND 7.5", name=op.f("ck_postcode_areas_in_nl")
        ),
        sa.ForeignKeyConstraint(
            ["region_id"],
            ["regions.id"],
            name=op.f("fk_postcode_areas_region_id_regions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("pc4", name=op.f("pk_postcode_areas")),
    )
    with op.batch_alter_table("postcode_areas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_postcode_areas_region_id"), ["region_id"], unique=False)

    op.create_table(
        "action_centralists",
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("centralist_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["actions.id"],
            name=op.f("fk_action_centralists_action_id_actions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["centralist_id"],
            ["centralists.id"],
            name=op.f("fk_action_centralists_centralist_id_centralists"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("action_id", "centralist_id", name=op.f("pk_action_centralists")),
    )
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('alert', 'update', 'result')", name=op.f("ck_broadcasts_kind")),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'cancelled')", name=op.f("ck_broadcasts_status")
        ),
        sa.ForeignKeyConstraint(
            ["action_id"], ["actions.id"], name=op.f("fk_broadcasts_action_id_actions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_broadcasts_action_id"), ["action_id"], unique=False)

    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unique_id", sa.String(length=64), nullable=False),
        sa.Column("linked_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("caller_number", sa.String(length=32), nullable=True),
        sa.Column("participant_id", sa.Integer(), nullable=True),
        sa.Column("action_id", sa.Integer(), nullable=True),
        sa.Column("centralist_id", sa.Integer(), nullable=True),
        sa.Column("region_code", sa.String(length=8), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=12), nullable=True),
        sa.Column("hangup_cause", sa.Integer(), nullable=True),
        sa.Column("route_reason", sa.String(length=200), nullable=True),
        sa.Column("recording_path", sa.String(length=300), nullable=True),
        sa.CheckConstraint("kind IN ('inbound', 'transfer')", name=op.f("ck_calls_kind")),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('connected', 'overflowed', 'tip_left', 'abandoned', 'failed', 'no_action')",
            name=op.f("ck_calls_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["action_id"], ["actions.id"], name=op.f("fk_calls_action_id_actions"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["centralist_id"],
            ["centralists.id"],
            name=op.f("fk_calls_centralist_id_centralists"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_calls_participant_id_participants"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("unique_id", name=op.f("uq_calls_unique_id")),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_action_id"), ["action_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_linked_id"), ["linked_id"], unique=False)

    op.create_table(
        "inquiries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("area_geojson", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"], ["actions.id"], name=op.f("fk_inquiries_action_id_actions"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inquiries")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.Column("centralist_id", sa.Integer(), nullable=True),
        sa.Column("api_token_hash", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "role IN ('admin', 'operator', 'centralist', 'viewer')", name=op.f("ck_users_role")
        ),
        sa.ForeignKeyConstraint(
            ["centralist_id"],
            ["centralists.id"],
            name=op.f("fk_users_centralist_id_centralists"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("api_token_hash", name=op.f("uq_users_api_token_hash")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("provider_ref", sa.String(length=80), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("channel IN ('voice', 'sms', 'email')", name=op.f("ck_deliveries_channel")),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'delivered', 'answered', 'busy', 'no_answer', 'failed', 'cancelled', 'undelivered')",
            name=op.f("ck_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_deliveries_broadcast_id_broadcasts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_deliveries_participant_id_participants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("broadcast_id", "participant_id", "channel", name="uq_deliveries_once"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_participant_id"), ["participant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_provider_ref"), ["provider_ref"], unique=False)

    op.create_table(
        "inquiry_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inquiry_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inquiry_id"],
            ["inquiries.id"],
            name=op.f("fk_inquiry_links_inquiry_id_inquiries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_inquiry_links_participant_id_participants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inquiry_links")),
        sa.UniqueConstraint("inquiry_id", "participant_id", name="uq_inquiry_links_once"),
        sa.UniqueConstraint("token_hash", name=op.f("uq_inquiry_links_token_hash")),
    )
    with op.batch_alter_table("inquiry_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inquiry_links_inquiry_id"), ["inquiry_id"], unique=False)

    op.create_table(
        "tips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("action_id", sa.Integer(), nullable=True),
        sa.Column("recording_path", sa.String(length=300), nullable=False),
        sa.Column("callback_number", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("callback_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["action_id"], ["actions.id"], name=op.f("fk_tips_action_id_actions"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_tips_call_id_calls"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tips")),
        sa.UniqueConstraint("call_id", name=op.f("uq_tips_call_id")),
    )
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tips_action_id"), ["action_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tips_created_at"), ["created_at"], unique=False)

    op.create_table(
        "statements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inquiry_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("photo_path", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inquiry_id"],
            ["inquiries.id"],
            name=op.f("fk_statements_inquiry_id_inquiries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["inquiry_links.id"],
            name=op.f("fk_statements_link_id_inquiry_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statements")),
        sa.UniqueConstraint("link_id", name=op.f("uq_statements_link_id")),
    )
    with op.batch_alter_table("statements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_statements_inquiry_id"), ["inquiry_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("statements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_statements_inquiry_id"))

    op.drop_table("statements")
    with op.batch_alter_table("tips", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tips_created_at"))
        batch_op.drop_index(batch_op.f("ix_tips_action_id"))

    op.drop_table("tips")
    with op.batch_alter_table("inquiry_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inquiry_links_inquiry_id"))

    op.drop_table("inquiry_links")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_provider_ref"))
        batch_op.drop_index(batch_op.f("ix_deliveries_participant_id"))

    op.drop_table("deliveries")
    op.drop_table("users")
    op.drop_table("inquiries")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_linked_id"))
        batch_op.drop_index(batch_op.f("ix_calls_action_id"))

    op.drop_table("calls")
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcasts_action_id"))

    op.drop_table("broadcasts")
    op.drop_table("action_centralists")
    with op.batch_alter_table("postcode_areas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_postcode_areas_region_id"))

    op.drop_table("postcode_areas")
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_participants_region_id"))
        batch_op.drop_index(batch_op.f("ix_participants_postcode"))
        batch_op.drop_index("ix_participants_lat_lon")

    op.drop_table("participants")
    with op.batch_alter_table("centralists", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_centralists_region_id"))

    op.drop_table("centralists")
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_actions_status"))
        batch_op.drop_index(batch_op.f("ix_actions_region_id"))

    op.drop_table("actions")
    op.drop_table("regions")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))

    op.drop_table("audit_events")

"""push subscriptions and push deliveries

Web Push is a fourth channel (``push``). Its recipients are the participant app's push
subscriptions (new table ``push_subscriptions``: endpoint, keys, language, an optional coarse
cell), not participants: a delivery now targets exactly one of the two
(``deliveries.participant_id`` becomes nullable, ``push_subscription_id`` is new, CHECK
``one_recipient``), once per broadcast (``uq_deliveries_push_once``). A reply push names the
sighting it answers (``deliveries.sighting_id``). Broadcasts get the kind ``reply`` (the
centralist's question back to a device); message templates accept the channel ``push``.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_KINDS = "'alert', 'update', 'result', 'inquiry', 'inquiry_update'"
_ONE_RECIPIENT = (
    "(channel = 'push' AND participant_id IS NULL)"
    " OR (channel != 'push' AND participant_id IS NOT NULL AND push_subscription_id IS NULL)"
)


def upgrade() -> None:
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(1024), nullable=False),
        sa.Column("p256dh", sa.String(100), nullable=False),
        sa.Column("auth", sa.String(40), nullable=False),
        sa.Column("cell", sa.String(4), nullable=True),
        sa.Column("lang", sa.String(2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("lang IN ('nl', 'en')", name=op.f("ck_push_subscriptions_lang")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_subscriptions")),
        sa.UniqueConstraint("endpoint", name=op.f("uq_push_subscriptions_endpoint")),
    )
    op.create_index(op.f("ix_push_subscriptions_cell"), "push_subscriptions", ["cell"], unique=False)

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("push_subscription_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("sighting_id", sa.Integer(), nullable=True))
        batch_op.alter_column("participant_id", existing_type=sa.Integer(), nullable=True)
        batch_op.drop_constraint(op.f("ck_deliveries_channel"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_deliveries_channel"), "channel IN ('voice', 'sms', 'email', 'push')"
        )
        batch_op.create_check_constraint(op.f("ck_deliveries_one_recipient"), _ONE_RECIPIENT)
        batch_op.create_foreign_key(
            op.f("fk_deliveries_push_subscription_id_push_subscriptions"),
            "push_subscriptions",
            ["push_subscription_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            op.f("fk_deliveries_sighting_id_sightings"),
            "sightings",
            ["sighting_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_unique_constraint(
            op.f("uq_deliveries_push_once"), ["broadcast_id", "push_subscription_id"]
        )
        batch_op.create_index(
            batch_op.f("ix_deliveries_push_subscription_id"), ["push_subscription_id"], unique=False
        )

    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_broadcasts_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_broadcasts_kind"), f"kind IN ({_KINDS}, 'reply')")

    with op.batch_alter_table("message_templates", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_message_templates_channel"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_message_templates_channel"), "channel IN ('voice', 'sms', 'email', 'push')"
        )


def downgrade() -> None:
    # Before 0016 there was no push: its deliveries, reply broadcasts and templates go.
    op.execute("DELETE FROM message_templates WHERE channel = 'push'")
    with op.batch_alter_table("message_templates", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_message_templates_channel"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_message_templates_channel"), "channel IN ('voice', 'sms', 'email')"
        )

    op.execute("DELETE FROM broadcasts WHERE kind = 'reply'")
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_broadcasts_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_broadcasts_kind"), f"kind IN ({_KINDS})")

    op.execute("DELETE FROM deliveries WHERE channel = 'push'")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_push_subscription_id"))
        batch_op.drop_constraint(op.f("uq_deliveries_push_once"), type_="unique")
        batch_op.drop_constraint(op.f("fk_deliveries_sighting_id_sightings"), type_="foreignkey")
        batch_op.drop_constraint(
            op.f("fk_deliveries_push_subscription_id_push_subscriptions"), type_="foreignkey"
        )
        batch_op.drop_constraint(op.f("ck_deliveries_one_recipient"), type_="check")
        batch_op.drop_constraint(op.f("ck_deliveries_channel"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_deliveries_channel"), "channel IN ('voice', 'sms', 'email')"
        )
        batch_op.alter_column("participant_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("sighting_id")
        batch_op.drop_column("push_subscription_id")

    op.drop_index(op.f("ix_push_subscriptions_cell"), table_name="push_subscriptions")
    op.drop_table("push_subscriptions")

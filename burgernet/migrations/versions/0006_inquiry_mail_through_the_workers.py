"""inquiry mail through the workers

A broadcast belongs to an action or to a neighbourhood inquiry (exactly one of the two), and
has two more kinds: the inquiry's invitation (each recipient's personal link) and its
follow-up. The follow-up update points at the broadcast that carries it; a personal link keeps
the salt its tokens are derived with. The inquiry's two e-mails get message templates.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ACTION_TYPES = "'missing_person', 'missing_child', 'amber_alert', 'suspect', 'vehicle', 'information'"
_ONE_OWNER = (
    "(action_id IS NOT NULL AND inquiry_id IS NULL) OR (action_id IS NULL AND inquiry_id IS NOT NULL)"
)


def upgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inquiry_id", sa.Integer(), nullable=True))
        batch_op.alter_column("action_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column(
            "kind", existing_type=sa.String(length=10), type_=sa.String(length=16), existing_nullable=False
        )
        batch_op.drop_constraint(op.f("ck_broadcasts_kind"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_broadcasts_kind"), "kind IN ('alert', 'update', 'result', 'inquiry', 'inquiry_update')"
        )
        batch_op.create_check_constraint(op.f("ck_broadcasts_one_owner"), _ONE_OWNER)
        batch_op.create_foreign_key(
            op.f("fk_broadcasts_inquiry_id_inquiries"),
            "inquiries",
            ["inquiry_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(batch_op.f("ix_broadcasts_inquiry_id"), ["inquiry_id"], unique=False)

    with op.batch_alter_table("inquiry_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_salt", sa.String(length=32), nullable=True))

    with op.batch_alter_table("inquiry_updates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("broadcast_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_inquiry_updates_broadcast_id_broadcasts"),
            "broadcasts",
            ["broadcast_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_unique_constraint(op.f("uq_inquiry_updates_broadcast_id"), ["broadcast_id"])

    with op.batch_alter_table("message_templates", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_message_templates_action_type"), type_="check")
        batch_op.drop_constraint(op.f("ck_message_templates_kind"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_message_templates_action_type"), f"action_type IN ({_ACTION_TYPES}, 'inquiry')"
        )
        batch_op.create_check_constraint(
            op.f("ck_message_templates_kind"),
            "kind IN ('alert', 'update', 'result', 'invitation', 'follow_up')",
        )


def downgrade() -> None:
    # Before 0006 neither inquiry broadcasts nor inquiry templates existed: they cannot go back.
    op.execute("DELETE FROM message_templates WHERE action_type = 'inquiry'")
    with op.batch_alter_table("message_templates", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_message_templates_kind"), type_="check")
        batch_op.drop_constraint(op.f("ck_message_templates_action_type"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_message_templates_kind"), "kind IN ('alert', 'update', 'result')"
        )
        batch_op.create_check_constraint(
            op.f("ck_message_templates_action_type"), f"action_type IN ({_ACTION_TYPES})"
        )

    with op.batch_alter_table("inquiry_updates", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_inquiry_updates_broadcast_id"), type_="unique")
        batch_op.drop_constraint(op.f("fk_inquiry_updates_broadcast_id_broadcasts"), type_="foreignkey")
        batch_op.drop_column("broadcast_id")

    with op.batch_alter_table("inquiry_links", schema=None) as batch_op:
        batch_op.drop_column("token_salt")

    op.execute("DELETE FROM broadcasts WHERE inquiry_id IS NOT NULL")
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_broadcasts_inquiry_id"))
        batch_op.drop_constraint(op.f("fk_broadcasts_inquiry_id_inquiries"), type_="foreignkey")
        batch_op.drop_constraint(op.f("ck_broadcasts_one_owner"), type_="check")
        batch_op.drop_constraint(op.f("ck_broadcasts_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_broadcasts_kind"), "kind IN ('alert', 'update', 'result')")
        batch_op.alter_column(
            "kind", existing_type=sa.String(length=16), type_=sa.String(length=10), existing_nullable=False
        )
        batch_op.alter_column("action_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("inquiry_id")

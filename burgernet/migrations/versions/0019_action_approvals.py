"""action approvals (four-eyes start of AMBER Alerts and national actions)

An action that needs approval (an AMBER Alert, a national area, or a type whose template says
so: ``action_type_templates.needs_approval``) is started only once a second person approved it.
``users.approver`` marks who may approve. Each request is a row of ``action_approvals``: who
asked and when, until when it holds, what the alert would reach then (recipients per channel,
the estimated time to reach them), and who decided what (approved, refused, expired) and why.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approver", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("action_type_templates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("needs_approval", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    # An AMBER Alert always needs a second person, also when its template was customised before.
    op.execute("UPDATE action_type_templates SET needs_approval = TRUE WHERE action_type = 'amber_alert'")

    op.create_table(
        "action_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(80), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("eta_seconds", sa.Integer(), nullable=True),
        sa.Column("decision", sa.String(10), nullable=True),
        sa.Column("decided_by", sa.String(80), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "decision IS NULL OR decision IN ('approved', 'refused', 'expired')",
            name=op.f("ck_action_approvals_decision"),
        ),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["actions.id"],
            name=op.f("fk_action_approvals_action_id_actions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_approvals")),
    )
    op.create_index(op.f("ix_action_approvals_action_id"), "action_approvals", ["action_id"], unique=False)
    op.create_index(op.f("ix_action_approvals_decision"), "action_approvals", ["decision"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_action_approvals_decision"), table_name="action_approvals")
    op.drop_index(op.f("ix_action_approvals_action_id"), table_name="action_approvals")
    op.drop_table("action_approvals")
    with op.batch_alter_table("action_type_templates", schema=None) as batch_op:
        batch_op.drop_column("needs_approval")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("approver")

"""alert outcome policies and fallback

Alert calls now tell an answering machine from a person (Asterisk's AMD()): a delivery whose
call a machine took, and that left the short message after the beep, ends as ``machine``.

Each outcome of an alert call has its own retry policy (burgernet.alert_policies): the
settings hold the defaults, ``alert_outcome_policies`` what an admin set in the panel (one row
per outcome; without a row the default applies). A voice alert that did not reach the
participant falls back to SMS: the new delivery names the call it replaces in
``deliveries.fallback_of``.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_BEFORE = (
    "'queued', 'sending', 'sent', 'delivered', 'answered', 'busy', 'no_answer', "
    "'undelivered', 'failed', 'cancelled'"
)
_AFTER = _BEFORE + ", 'machine'"


def _delivery_statuses(allowed: str) -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_deliveries_status"), type_="check")
        batch_op.create_check_constraint("status", f"status IN ({allowed})")


def upgrade() -> None:
    _delivery_statuses(_AFTER)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fallback_of", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_deliveries_fallback_of_deliveries"),
            "deliveries",
            ["fallback_of"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(batch_op.f("ix_deliveries_fallback_of"), ["fallback_of"], unique=False)
    op.create_table(
        "alert_outcome_policies",
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("backoff_seconds", sa.Float(), nullable=False),
        sa.Column("backoff_multiplier", sa.Float(), server_default="1", nullable=False),
        sa.Column("when_exhausted", sa.String(length=10), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=80), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('busy', 'no_answer', 'machine', 'failed')",
            name=op.f("ck_alert_outcome_policies_outcome"),
        ),
        sa.CheckConstraint(
            "attempts >= 1 AND attempts <= 10", name=op.f("ck_alert_outcome_policies_attempts")
        ),
        sa.CheckConstraint(
            "backoff_seconds >= 0 AND backoff_seconds <= 21600",
            name=op.f("ck_alert_outcome_policies_backoff_seconds"),
        ),
        sa.CheckConstraint(
            "backoff_multiplier >= 1 AND backoff_multiplier <= 10",
            name=op.f("ck_alert_outcome_policies_backoff_multiplier"),
        ),
        sa.CheckConstraint(
            "when_exhausted IN ('done', 'fall_back')", name=op.f("ck_alert_outcome_policies_when_exhausted")
        ),
        sa.PrimaryKeyConstraint("outcome", name=op.f("pk_alert_outcome_policies")),
    )


def downgrade() -> None:
    op.drop_table("alert_outcome_policies")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_fallback_of"))
        batch_op.drop_constraint(batch_op.f("fk_deliveries_fallback_of_deliveries"), type_="foreignkey")
        batch_op.drop_column("fallback_of")
    # A message left on a machine reached the participant: the nearest status before 0018.
    op.execute("UPDATE deliveries SET status = 'answered' WHERE status = 'machine'")
    _delivery_statuses(_BEFORE)

"""call outcome unobserved

A call whose Hangup event was sent while the AMI connection was down is closed after the
reconnection from what Asterisk reports (its channel is gone), with the outcome
``unobserved`` when nothing else was seen of it (burgernet/calls.py ``close_unobserved``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 05:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BEFORE = "'connected', 'overflowed', 'tip_left', 'abandoned', 'failed', 'no_action'"
_AFTER = _BEFORE + ", 'unobserved'"


def _outcomes(allowed: str) -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_calls_outcome"), type_="check")
        batch_op.create_check_constraint("outcome", f"outcome IS NULL OR outcome IN ({allowed})")


def upgrade() -> None:
    _outcomes(_AFTER)


def downgrade() -> None:
    op.execute("UPDATE calls SET outcome = 'abandoned' WHERE outcome = 'unobserved'")
    _outcomes(_BEFORE)

"""closing word to callers

When an action closes, its result message also goes to the people who phoned the free number
about it and left a number (the call log, tips, the call-back worklist). Those callers are not
participants, so a delivery may now name its recipient by number: ``deliveries.caller_e164``
(E.164, NULL for every other delivery). CHECK ``one_recipient`` gains the third kind of
recipient (a caller: voice or SMS, no participant, no subscription), and
``uq_deliveries_caller_once`` keeps one delivery per caller per broadcast, whatever the
channel: each caller hears the closing word once. The number goes with the delivery row when
retention removes deliveries (``retention.deliveries_days``).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_ONE_RECIPIENT_BEFORE = (
    "(channel = 'push' AND participant_id IS NULL)"
    " OR (channel != 'push' AND participant_id IS NOT NULL AND push_subscription_id IS NULL)"
)
_ONE_RECIPIENT_AFTER = (
    "(channel = 'push' AND participant_id IS NULL AND caller_e164 IS NULL)"
    " OR (channel != 'push' AND participant_id IS NOT NULL AND push_subscription_id IS NULL"
    " AND caller_e164 IS NULL)"
    " OR (channel IN ('voice', 'sms') AND caller_e164 IS NOT NULL AND participant_id IS NULL"
    " AND push_subscription_id IS NULL)"
)


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("caller_e164", sa.String(16), nullable=True))
        batch_op.drop_constraint(op.f("ck_deliveries_one_recipient"), type_="check")
        batch_op.create_check_constraint(op.f("ck_deliveries_one_recipient"), _ONE_RECIPIENT_AFTER)
        batch_op.create_unique_constraint(op.f("uq_deliveries_caller_once"), ["broadcast_id", "caller_e164"])


def downgrade() -> None:
    # Before 0021 a delivery always had a participant or a subscription: callers' rows go.
    op.execute("DELETE FROM deliveries WHERE caller_e164 IS NOT NULL")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_deliveries_caller_once"), type_="unique")
        batch_op.drop_constraint(op.f("ck_deliveries_one_recipient"), type_="check")
        batch_op.create_check_constraint(op.f("ck_deliveries_one_recipient"), _ONE_RECIPIENT_BEFORE)
        batch_op.drop_column("caller_e164")

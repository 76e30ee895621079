"""action codes on the free number

``actions.action_code``: four digits, no leading zero, that a caller keys on the free number
(or the participant app dials after a pause) to reach that action's team at once. Unique among
actions that are not closed, enforced by a partial unique index (SQLite and PostgreSQL both
have them), so a closed action keeps its code on record while the code may go to a new action.

Actions already active get a code here, drawn the way burgernet.action_codes draws them (a
random free code), so the free number routes by code for them from the first call after the
upgrade. Drafts get theirs when they start; closed actions get none.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 11:40:00
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

INDEX = "uq_actions_open_action_code"
OPEN = "status != 'closed'"


def upgrade() -> None:
    # Batch mode: SQLite cannot ALTER a table much; adding a nullable column is copied-free there.
    with op.batch_alter_table("actions") as batch:
        batch.add_column(sa.Column("action_code", sa.String(4), nullable=True))

    actions = sa.table(
        "actions",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("action_code", sa.String),
    )
    bind = op.get_bind()
    active = bind.execute(
        sa.select(actions.c.id).where(actions.c.status == "active").order_by(actions.c.id)
    ).scalars()
    free = list(range(1000, 10_000))
    draw = secrets.SystemRandom()
    for action_id in list(active):
        code = free.pop(draw.randrange(len(free)))
        bind.execute(sa.update(actions).where(actions.c.id == action_id).values(action_code=str(code)))

    op.create_index(
        INDEX,
        "actions",
        ["action_code"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="actions")
    with op.batch_alter_table("actions") as batch:
        batch.drop_column("action_code")

"""centralist SIP passwords kept as PJSIP digests

A centralist's SIP password is no longer stored: only ``md5(endpoint:realm:password)``, which
PJSIP takes as ``md5_cred`` (``auth_type = md5``). Existing plaintext passwords are hashed here
with the default realm ``burgernet`` (settings ``asterisk.sip_realm``; with another realm,
rotate the passwords: ``burgernet centralist password ENDPOINT``). Rows without a password
(they used the shared default, which is gone) get no digest: they cannot register until a
password is made for them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_REALM = "burgernet"


def upgrade() -> None:
    with op.batch_alter_table("centralists", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sip_md5_cred", sa.String(length=32), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, sip_endpoint, sip_password FROM centralists WHERE sip_password IS NOT NULL")
    ).all()
    for row_id, endpoint, password in rows:
        digest = hashlib.md5(f"{endpoint}:{_REALM}:{password}".encode(), usedforsecurity=False).hexdigest()
        connection.execute(
            sa.text("UPDATE centralists SET sip_md5_cred = :digest WHERE id = :id"),
            {"digest": digest, "id": row_id},
        )
    with op.batch_alter_table("centralists", schema=None) as batch_op:
        batch_op.drop_column("sip_password")


def downgrade() -> None:
    # A digest cannot be turned back into a password: after a downgrade every centralist
    # needs a new one.
    with op.batch_alter_table("centralists", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sip_password", sa.String(length=80), nullable=True))
        batch_op.drop_column("sip_md5_cred")

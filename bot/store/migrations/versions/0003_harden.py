"""Console sessions can be ended on the server, and a locked account can be unlocked.

``session_epoch`` is written into each console session; raising it (logout, password reset,
disabling) ends every session of that account. ``unlocked_at``: login failures before it no
longer count against the account (``admin unlock``).

Revision ID: 0003_harden
Revises: 0002_aibot
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_harden"
down_revision = "0002_aibot"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("admin_users") as table:
        table.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("unlocked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("admin_users") as table:
        table.drop_column("unlocked_at")
        table.drop_column("session_epoch")

"""Outbox rows carry a target's name, never its address: drop deliveries.recipients.

The robot's webhook key (a secret) and the app's users were copied into every row; the channel
now looks them up in the config when it sends, so nothing stored can post to a group.

Revision ID: 0002_house
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002_house"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE on both databases (SQLite ≥ 3.35): the column has no index or constraint.
    op.execute("ALTER TABLE deliveries DROP COLUMN recipients")


def downgrade() -> None:
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    op.add_column("deliveries", sa.Column("recipients", json, nullable=False, server_default="{}"))

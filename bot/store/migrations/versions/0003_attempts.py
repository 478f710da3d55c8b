"""Each attempt to send a delivery: when it started and ended, its outcome, WeCom's errcode and errmsg,
and our explanation (the delivery page lists them; the delivery row keeps only the last).

Revision ID: 0003_attempts
Revises: 0003_harden
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_attempts"
down_revision = "0003_harden"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("errmsg", sa.Text(), nullable=True),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"], ondelete="CASCADE",
                                name="fk_delivery_attempts_delivery_id_deliveries"),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempts"),
        sa.UniqueConstraint("delivery_id", "attempt", name="uq_delivery_attempts_delivery_id_attempt"),
    )


def downgrade() -> None:
    op.drop_table("delivery_attempts")

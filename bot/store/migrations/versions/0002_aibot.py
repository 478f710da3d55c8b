"""The AI bot's learnt conversations and the study cards it pushed to branch groups.

Revision ID: 0002_aibot
Revises: 0002_house
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_aibot"
down_revision = "0002_house"
branch_labels = None
depends_on = None


def instant(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "aibot_chats",
        sa.Column("chatid", sa.String(200), nullable=False),
        sa.Column("chat_type", sa.String(16), nullable=False),
        sa.Column("first_user", sa.String(200), nullable=False),
        instant("first_seen_at"),
        sa.Column("branch", sa.String(200), nullable=True),
        sa.Column("bound_by", sa.String(200), nullable=True),
        instant("bound_at", nullable=True),
        sa.PrimaryKeyConstraint("chatid", name="pk_aibot_chats"),
    )
    op.create_table(
        "aibot_cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chatid", sa.String(200), nullable=False),
        sa.Column("item", sa.String(200), nullable=False),
        sa.Column("task_id", sa.String(128), nullable=False),
        instant("sent_at"),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_aibot_cards"),
        sa.UniqueConstraint("chatid", "item", name="uq_aibot_cards_chatid_item"),
        sa.UniqueConstraint("task_id", name="uq_aibot_cards_task_id"),
    )


def downgrade() -> None:
    op.drop_table("aibot_cards")
    op.drop_table("aibot_chats")

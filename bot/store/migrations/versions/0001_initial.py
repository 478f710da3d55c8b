"""The initial schema: outbox, inbox, confirmations, template versions, audit log, admins, kv.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATUSES = "'pending', 'sending', 'sent', 'retry', 'failed', 'unknown', 'missed', 'cancelled', 'skipped'"


def json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(JSONB(), "postgresql")


def instant(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def text(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Text(), nullable=nullable)


def string(name: str, length: int, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=nullable)


def flag(name: str) -> sa.Column:
    return sa.Column(name, sa.Boolean(), nullable=False)


def upgrade() -> None:
    create_deliveries()
    create_inbox()
    create_confirmations()
    create_template_versions()
    create_audit_log()
    create_admin_users()
    create_kv()


def create_deliveries() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        string("key", 500), string("rule", 200), string("kind", 40), string("occurrence", 300),
        string("item", 200, nullable=True), string("target", 200),
        sa.Column("recipients", json(), nullable=False),
        string("msgtype", 40), string("title", 500), text("text", nullable=False),
        sa.Column("card", json(), nullable=True),
        instant("due_at"), string("status", 16),
        sa.Column("attempts", sa.Integer(), nullable=False),
        instant("next_attempt_at", True), instant("lease_until", True), string("worker", 200, True),
        text("last_error"), sa.Column("errcode", sa.Integer(), nullable=True),
        string("msgid", 200, True), string("response_code", 200, True),
        flag("late"), flag("resent"), flag("provisional"),
        text("reason", nullable=False), sa.Column("meta", json(), nullable=False),
        instant("created_at"), instant("updated_at"), instant("sent_at", True),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.UniqueConstraint("key", name="uq_deliveries_key"),
        sa.CheckConstraint(f"status IN ({STATUSES})", name="ck_deliveries_status"),
    )
    for columns in (("status", "next_attempt_at"), ("status", "due_at"), ("due_at",), ("kind",),
                    ("target",), ("item",), ("sent_at",)):
        op.create_index(f"ix_deliveries_{'_'.join(columns)}", "deliveries", list(columns))


def create_inbox() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        string("dedupe_key", 300), string("from_user", 200), string("msg_type", 40),
        text("content"), string("event_key", 200, True), string("task_id", 200, True),
        string("response_code", 200, True), instant("received_at"), text("raw", nullable=False),
        flag("handled"), text("reply"),
        sa.PrimaryKeyConstraint("id", name="pk_inbox"),
        sa.UniqueConstraint("dedupe_key", name="uq_inbox_dedupe_key"),
    )


def create_confirmations() -> None:
    op.create_table(
        "confirmations",
        sa.Column("id", sa.Integer(), nullable=False),
        string("item", 200), string("branch", 200), string("confirmed_by", 200),
        instant("confirmed_at"), flag("late"), string("source", 16), text("note"),
        string("recorded_by", 200, True),
        sa.PrimaryKeyConstraint("id", name="pk_confirmations"),
        sa.UniqueConstraint("item", "branch", name="uq_confirmations_item_branch"),
        sa.CheckConstraint("source IN ('reply', 'button', 'manual')", name="ck_confirmations_source"),
    )


def create_template_versions() -> None:
    op.create_table(
        "template_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        string("name", 200), text("body"), string("author", 200), instant("created_at"), text("note"),
        sa.PrimaryKeyConstraint("id", name="pk_template_versions"),
    )
    op.create_index("ix_template_versions_name_id", "template_versions", ["name", "id"])


def create_audit_log() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        instant("at"), string("actor", 200), string("action", 100), string("subject", 500),
        text("before"), text("after"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def create_admin_users() -> None:
    op.create_table(
        "admin_users",
        sa.Column("id", sa.Integer(), nullable=False),
        string("name", 100), string("password_hash", 300), string("role", 16), instant("created_at"),
        instant("last_login_at", True), sa.Column("failed_logins", sa.Integer(), nullable=False),
        instant("locked_until", True),
        sa.PrimaryKeyConstraint("id", name="pk_admin_users"),
        sa.UniqueConstraint("name", name="uq_admin_users_name"),
        sa.CheckConstraint("role IN ('admin', 'readonly')", name="ck_admin_users_role"),
    )


def create_kv() -> None:
    op.create_table(
        "kv",
        string("key", 200), sa.Column("value", json(), nullable=True), instant("updated_at"),
        sa.PrimaryKeyConstraint("key", name="pk_kv"),
    )


def downgrade() -> None:
    for table in ("kv", "admin_users", "audit_log", "template_versions", "confirmations", "inbox",
                  "deliveries"):
        op.drop_table(table)

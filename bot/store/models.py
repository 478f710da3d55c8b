"""The tables. Every instant is an aware datetime stored as UTC (``UTCDateTime``).

The schema itself is created by the migrations in ``bot/store/migrations``; a test checks that
these models and the migrations agree.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

STATUSES = ("pending", "sending", "sent", "retry", "failed", "unknown", "missed", "cancelled", "skipped")
CONFIRMATION_SOURCES = ("reply", "button", "manual")
ADMIN_ROLES = ("admin", "readonly")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utc_now() -> datetime:
    """Only for bookkeeping columns (created_at, updated_at) when no ``now`` was passed in."""
    return datetime.now(timezone.utc)


def require_aware(value: datetime, name: str) -> datetime:
    """Refuse a naive datetime: which zone it meant is a guess we do not make."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {value!r}")
    return value


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored as UTC; naive values are refused so SQLite and PostgreSQL agree."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = require_aware(value, "a stored instant").astimezone(timezone.utc)
        # SQLite has no time zones: store the UTC wall time, read it back as UTC.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Delivery(Base):
    """One message to one target: the outbox row whose unique key makes enqueuing idempotent."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(_in("status", STATUSES), name="status"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "status", "due_at"),
        Index(None, "due_at"),
        Index(None, "kind"),
        Index(None, "target"),
        Index(None, "item"),
        Index(None, "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(500), unique=True)
    rule: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    occurrence: Mapped[str] = mapped_column(String(300))
    item: Mapped[str | None] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(200))
    msgtype: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)
    card: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    errcode: Mapped[int | None] = mapped_column(Integer)
    msgid: Mapped[str | None] = mapped_column(String(200))
    response_code: Mapped[str | None] = mapped_column(String(200))
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    resent: Mapped[bool] = mapped_column(Boolean, default=False)
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeliveryAttempt(Base):
    """One attempt to send a delivery and how it ended, as WeCom said it (the delivery keeps only the last).

    ``attempt`` is the delivery's claim counter (a deferral for pacing is a claim but no attempt);
    ``errmsg`` is WeCom's text with any URL's query string removed, ``explanation`` ours in Chinese.
    """

    __tablename__ = "delivery_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    errcode: Mapped[int | None] = mapped_column(Integer)
    errmsg: Mapped[str | None] = mapped_column(Text)
    explanation: Mapped[str | None] = mapped_column(Text)


class InboundMessage(Base):
    """A callback from WeCom, deduplicated by its key so WeCom's retries are harmless."""

    __tablename__ = "inbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    from_user: Mapped[str] = mapped_column(String(200))
    msg_type: Mapped[str] = mapped_column(String(40))
    content: Mapped[str | None] = mapped_column(Text)
    event_key: Mapped[str | None] = mapped_column(String(200))
    task_id: Mapped[str | None] = mapped_column(String(200))
    response_code: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    raw: Mapped[str] = mapped_column(Text, default="")
    handled: Mapped[bool] = mapped_column(Boolean, default=False)
    reply: Mapped[str | None] = mapped_column(Text)


class Confirmation(Base):
    """A branch confirmed a study item (by a reply, a card button, or an administrator)."""

    __tablename__ = "confirmations"
    __table_args__ = (
        UniqueConstraint("item", "branch"),
        CheckConstraint(_in("source", CONFIRMATION_SOURCES), name="source"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item: Mapped[str] = mapped_column(String(200))
    branch: Mapped[str] = mapped_column(String(200))
    confirmed_by: Mapped[str] = mapped_column(String(200))
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str | None] = mapped_column(String(200))


class TemplateVersion(Base):
    """An edit of a message template; ``body`` NULL means "back to the shipped default"."""

    __tablename__ = "template_versions"
    __table_args__ = (Index(None, "name", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    note: Mapped[str | None] = mapped_column(Text)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(500))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)


class AdminUser(Base):
    __tablename__ = "admin_users"
    __table_args__ = (CheckConstraint(_in("role", ADMIN_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(16), default="readonly")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)  # raised to end every session
    unlocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # failures before it do not count


class KeyValue(Base):
    """Small state that must survive a restart: .ics ETags, last-good hashes."""

    __tablename__ = "kv"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class AibotChat(Base):
    """A conversation the AI bot learnt from a callback (WeCom tells a group's chatid no other way)."""

    __tablename__ = "aibot_chats"

    chatid: Mapped[str] = mapped_column(String(200), primary_key=True)
    chat_type: Mapped[str] = mapped_column(String(16))
    first_user: Mapped[str] = mapped_column(String(200))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    branch: Mapped[str | None] = mapped_column(String(200))
    bound_by: Mapped[str | None] = mapped_column(String(200))
    bound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AibotCard(Base):
    """A study card pushed to a branch group through the AI bot: at most one per (chat, item)."""

    __tablename__ = "aibot_cards"
    __table_args__ = (UniqueConstraint("chatid", "item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chatid: Mapped[str] = mapped_column(String(200))
    item: Mapped[str] = mapped_column(String(200))
    task_id: Mapped[str] = mapped_column(String(128), unique=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    errcode: Mapped[int | None] = mapped_column(Integer)

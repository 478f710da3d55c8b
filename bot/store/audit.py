"""The audit log: who changed what, when, with the state before and after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.store.db import Store
from bot.store.models import AuditEntry


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    before: str | None
    after: str | None


def record_change(session: Session, *, actor: str, action: str, subject: str, before: str | None,
                  after: str | None, at: datetime) -> None:
    """Add an entry inside the caller's transaction, so the change and its record commit together."""
    session.add(AuditEntry(at=at, actor=actor, action=action, subject=subject, before=before, after=after))


def audit(store: Store, **entry: object) -> None:
    with store.session() as session:
        record_change(session, **entry)  # type: ignore[arg-type]


def recent(store: Store, limit: int = 50, offset: int = 0) -> list[AuditRecord]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    with store.session(readonly=True) as session:
        return [AuditRecord(e.id, e.at, e.actor, e.action, e.subject, e.before, e.after)
                for e in session.scalars(query)]


def count(store: Store) -> int:
    with store.session(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)) or 0

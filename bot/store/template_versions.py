"""Edited template versions, kept in the database with author and time; the default can be restored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from bot.store.audit import record_change
from bot.store.db import Store
from bot.store.models import TemplateVersion


@dataclass(frozen=True)
class Version:
    id: int
    name: str
    body: str | None  # None: back to the shipped default
    author: str
    created_at: datetime
    note: str | None


def current_edits(store: Store) -> dict[str, str]:
    """The latest edited text of every template whose latest version is not 'back to default'."""
    latest = select(TemplateVersion.name, func.max(TemplateVersion.id).label("id")).group_by(TemplateVersion.name)
    latest_ids = latest.subquery()
    query = select(TemplateVersion).join(latest_ids, TemplateVersion.id == latest_ids.c.id)
    with store.session(readonly=True) as session:
        return {v.name: v.body for v in session.scalars(query) if v.body is not None}


def latest_version_id(store: Store) -> int:
    """Changes whenever a version is saved: a cheap stamp for caches."""
    with store.session(readonly=True) as session:
        return session.scalar(select(func.max(TemplateVersion.id))) or 0


def history(store: Store, name: str) -> list[Version]:
    """Newest first."""
    query = select(TemplateVersion).where(TemplateVersion.name == name).order_by(TemplateVersion.id.desc())
    with store.session(readonly=True) as session:
        return [_version(v) for v in session.scalars(query)]


def get_version(store: Store, version_id: int) -> Version | None:
    with store.session(readonly=True) as session:
        row = session.get(TemplateVersion, version_id)
        return _version(row) if row else None


def save_version(store: Store, name: str, body: str | None, author: str, now: datetime,
                 before: str | None, note: str | None = None) -> int:
    """Store a new version (None restores the default) and write the audit entry in one transaction."""
    with store.session() as session:
        row = TemplateVersion(name=name, body=body, author=author, created_at=now, note=note)
        session.add(row)
        session.flush()
        action = "恢复默认模板" if body is None else "保存模板"
        record_change(session, actor=author, action=action, subject=f"模板 {name}", before=before,
                      after=body if body is not None else "（默认模板）", at=now)
        return row.id


def _version(row: TemplateVersion) -> Version:
    return Version(id=row.id, name=row.name, body=row.body, author=row.author,
                   created_at=row.created_at, note=row.note)

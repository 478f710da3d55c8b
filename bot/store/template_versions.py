"""Edited template versions, kept in the database with author and time; the default can be restored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.store.audit import record_change
from bot.store.db import Store
from bot.store.models import TemplateVersion


@dataclass(frozen=True)
class Version:
    id: int           # the row (unique across templates; in URLs)
    name: str
    body: str | None  # None: back to the shipped default
    author: str
    created_at: datetime
    note: str | None
    number: int = 0   # per template: its first edit is version 1 (what people read)


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
    """Newest first, numbered per template from 1."""
    query = select(TemplateVersion).where(TemplateVersion.name == name).order_by(TemplateVersion.id)
    with store.session(readonly=True) as session:
        rows = [_version(v, number) for number, v in enumerate(session.scalars(query), start=1)]
    return rows[::-1]


def get_version(store: Store, version_id: int) -> Version | None:
    with store.session(readonly=True) as session:
        row = session.get(TemplateVersion, version_id)
        return _version(row, _number(session, row)) if row else None


def _number(session: Session, row: TemplateVersion) -> int:
    return session.scalar(select(func.count()).select_from(TemplateVersion)
                          .where(TemplateVersion.name == row.name, TemplateVersion.id <= row.id)) or 0


def save_version(store: Store, name: str, body: str | None, author: str, now: datetime,
                 before: str | None, note: str | None = None, action: str | None = None) -> int:
    """Store a new version (None restores the default) and write the audit entry in one transaction;
    returns the template's version number. ``action`` names a restore ("恢复到第 3 版")."""
    with store.session() as session:
        row = TemplateVersion(name=name, body=body, author=author, created_at=now, note=note)
        session.add(row)
        session.flush()
        number = _number(session, row)
        action = action or ("恢复默认模板" if body is None else f"保存模板（第 {number} 版）")
        record_change(session, actor=author, action=action, subject=f"模板 {name}", before=before,
                      after=body if body is not None else "（默认模板）", at=now)
        return number


def _version(row: TemplateVersion, number: int) -> Version:
    return Version(id=row.id, name=row.name, body=row.body, author=row.author,
                   created_at=row.created_at, note=row.note, number=number)

"""The callback's rows: the inbox (one row per callback, unique by dedupe key) and small values the
responder keeps between two replies (kv). All inside the caller's transaction (the writer's batch)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from bot.store.models import InboundMessage, KeyValue

INBOX = InboundMessage.__table__
_INSERT = insert(INBOX)
_STORED = select(INBOX.c.dedupe_key, INBOX.c.reply).where(INBOX.c.dedupe_key.in_(bindparam("keys", expanding=True)))


def insert_inbox(session: Session, rows: Sequence[dict[str, object]]) -> None:
    """One INSERT for these rows; a dedupe key already stored raises IntegrityError."""
    session.connection().execute(_INSERT, list(rows))


def stored_replies(session: Session, keys: Iterable[str]) -> dict[str, str | None]:
    """The recorded reply of each of these dedupe keys that is in the inbox."""
    wanted = sorted(keys)
    if not wanted:
        return {}
    return {key: reply for key, reply in session.connection().execute(_STORED, {"keys": wanted})}


def get_value(session: Session, key: str) -> Any:
    row = session.get(KeyValue, key)
    return None if row is None else row.value


def put_value(session: Session, key: str, value: Any, now: datetime) -> None:
    row = session.get(KeyValue, key)
    if row is None:
        session.add(KeyValue(key=key, value=value, updated_at=now))
    else:
        row.value, row.updated_at = value, now

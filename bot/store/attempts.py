"""Each attempt to send a delivery (``delivery_attempts``): written by ``outbox.record_outcomes`` in the
transaction that records the outcome, so only the current claim's attempt is ever added; read by the
console's delivery page.

WeCom's errmsg never carries a secret, but a text may quote a URL, and a URL's query string is where a
webhook key or an access_token would be: every stored text has its query strings removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from bot.store.db import Store
from bot.store.models import DeliveryAttempt

_QUERY = re.compile(r"(https?://[^\s?#\"'<>]*)\?[^\s#\"'<>]*", re.I)
TABLE = DeliveryAttempt.__table__


@dataclass(frozen=True)
class Attempt:
    """One row of the delivery page's table of attempts."""

    attempt: int
    started_at: datetime
    finished_at: datetime
    outcome: str
    errcode: int | None
    errmsg: str | None
    explanation: str | None


def without_queries(text: str | None) -> str | None:
    """``text`` with every URL's query string removed ("…/query?e=60020" → "…/query")."""
    return None if text is None else _QUERY.sub(r"\1", text)


def add_attempts(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert attempts (keys as ``Attempt``'s fields, plus ``delivery_id``), their texts cleaned."""
    if rows:
        clean = [{**row, "errmsg": without_queries(row["errmsg"]),
                  "explanation": without_queries(row["explanation"])} for row in rows]
        session.execute(insert(TABLE), clean)


def attempts_of(store: Store, delivery_id: int) -> list[Attempt]:
    """A delivery's attempts, first first."""
    columns = [TABLE.c[name] for name in Attempt.__dataclass_fields__]
    query = select(*columns).where(TABLE.c.delivery_id == delivery_id).order_by(TABLE.c.attempt)
    with store.session(readonly=True) as session:
        return [Attempt(*row) for row in session.execute(query)]

"""Reading the outbox: the row snapshot (``DeliveryRow``) and the console's queries.

Each function reads in its own read-only transaction and returns snapshots, never ORM entities.
Writing rows (plan sync, claims, outcomes, recovery, an administrator's skip or retry) is
``bot.store.outbox``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, case, func, or_, select

from bot.store.db import Store
from bot.store.models import STATUSES, Delivery, require_aware


@dataclass(frozen=True)
class DeliveryRow:
    """A snapshot of one outbox row; instants are aware UTC."""

    id: int
    key: str
    rule: str
    kind: str
    occurrence: str
    item: str | None
    target: str
    msgtype: str
    title: str
    text: str
    card: dict[str, Any] | None
    due_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime | None
    lease_until: datetime | None
    worker: str | None
    last_error: str | None
    errcode: int | None
    msgid: str | None
    response_code: str | None
    late: bool
    resent: bool
    provisional: bool
    reason: str
    meta: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryRow:
        return cls(**{f.name: getattr(delivery, f.name) for f in fields(cls)})


def get_delivery(store: Store, delivery_id: int) -> DeliveryRow | None:
    with store.session(readonly=True) as session:
        delivery = session.get(Delivery, delivery_id)
        return DeliveryRow.of(delivery) if delivery is not None else None


def _filters(status: str | Sequence[str] | None = None, kind: str | None = None,
             target: str | None = None, since: datetime | None = None, until: datetime | None = None,
             item: str | None = None) -> list[ColumnElement[bool]]:
    """Filters for the console; ``since``/``until`` bound the due time, [since, until)."""
    where = []
    if status is not None:
        where.append(Delivery.status.in_([status] if isinstance(status, str) else list(status)))
    for column, value in ((Delivery.kind, kind), (Delivery.target, target), (Delivery.item, item)):
        if value is not None:
            where.append(column == value)
    if since is not None:
        where.append(Delivery.due_at >= require_aware(since, "since"))
    if until is not None:
        where.append(Delivery.due_at < require_aware(until, "until"))
    return where


def list_deliveries(store: Store, *, status: str | Sequence[str] | None = None, kind: str | None = None,
                    target: str | None = None, since: datetime | None = None,
                    until: datetime | None = None, item: str | None = None, limit: int = 50,
                    offset: int = 0, order: str = "desc") -> list[DeliveryRow]:
    """A page of rows ordered by due time (then id), newest first unless ``order='asc'``."""
    if order not in ("asc", "desc"):
        raise ValueError(f"order must be 'asc' or 'desc', not {order!r}")
    keys = (Delivery.due_at, Delivery.id) if order == "asc" else (Delivery.due_at.desc(), Delivery.id.desc())
    statement = (select(Delivery).where(*_filters(status, kind, target, since, until, item))
                 .order_by(*keys).limit(limit).offset(offset))
    with store.session(readonly=True) as session:
        return [DeliveryRow.of(d) for d in session.scalars(statement)]


LOG_COLUMNS = (Delivery.due_at, Delivery.sent_at, Delivery.kind, Delivery.target, Delivery.title, Delivery.status,
               Delivery.attempts, Delivery.late, Delivery.resent, Delivery.last_error, Delivery.errcode, Delivery.msgid)


def iter_delivery_log(store: Store, *, status: str | Sequence[str] | None = None, kind: str | None = None,
                      target: str | None = None, since: datetime | None = None, until: datetime | None = None,
                      item: str | None = None, chunk: int = 1000) -> Iterator[Row[Any]]:
    """The LOG_COLUMNS of every row the filters select, oldest first, fetched a chunk at a time, so
    that exporting years of deliveries never holds them all in memory."""
    statement = (select(*LOG_COLUMNS).where(*_filters(status, kind, target, since, until, item))
                 .order_by(Delivery.due_at, Delivery.id).execution_options(yield_per=chunk))
    with store.session(readonly=True) as session:
        yield from session.execute(statement)


def count_deliveries(store: Store, *, status: str | Sequence[str] | None = None, kind: str | None = None,
                     target: str | None = None, since: datetime | None = None,
                     until: datetime | None = None, item: str | None = None) -> int:
    statement = (select(func.count()).select_from(Delivery)
                 .where(*_filters(status, kind, target, since, until, item)))
    with store.session(readonly=True) as session:
        return session.execute(statement).scalar_one()


def unheard_alerts(store: Store, kind: str, since: datetime) -> int:
    """Alerts due since ``since`` that failed at every admin target they tried: none of their rows
    (one per target, same occurrence) was sent."""
    heard = select(Delivery.occurrence).where(Delivery.kind == kind, Delivery.status == "sent")
    statement = (select(func.count(func.distinct(Delivery.occurrence)))
                 .where(*_filters(("failed", "unknown", "missed"), kind, since=since),
                        Delivery.occurrence.not_in(heard)))
    with store.session(readonly=True) as session:
        return session.execute(statement).scalar_one()


def open_cards(store: Store, item: str, target: str, since: datetime) -> list[DeliveryRow]:
    """Rows of study ``item`` sent to ``target`` since ``since`` that still hold the response_code of
    their send: cards whose button can still be greyed out."""
    statement = select(Delivery).where(Delivery.item == item, Delivery.target == target, Delivery.status == "sent",
                                       Delivery.response_code.is_not(None),
                                       Delivery.sent_at >= require_aware(since, "since"))
    with store.session(readonly=True) as session:
        return [DeliveryRow.of(d) for d in session.scalars(statement)]


def status_counts(store: Store) -> dict[str, int]:
    """Rows per status, every status present (zero when none)."""
    statement = select(Delivery.status, func.count()).group_by(Delivery.status)
    with store.session(readonly=True) as session:
        found: dict[str, int] = {status: count for status, count in session.execute(statement)}
    return {status: found.get(status, 0) for status in STATUSES}


def recorded_sends(store: Store, since: datetime, not_by: str | None = None) -> list[tuple[str, datetime]]:
    """(target, sent_at) of the rows sent since ``since`` (not by worker ``not_by``, when given)."""
    statement = select(Delivery.target, Delivery.sent_at).where(Delivery.status == "sent", Delivery.sent_at >= since)
    if not_by is not None:
        statement = statement.where(or_(Delivery.worker.is_(None), Delivery.worker != not_by))
    with store.session(readonly=True) as session:
        return [(target, sent_at) for target, sent_at in session.execute(statement)]


def next_claimable_at(store: Store) -> datetime | None:
    """When the next row becomes claimable (due, retry time, or an abandoned lease)."""
    d = Delivery
    queries = [
        # A claimed row (leased, not yet 'sending') is claimable again when its lease ends.
        select(func.min(_later(d.due_at, d.lease_until))).where(d.status == "pending"),
        select(func.min(_later(func.coalesce(d.next_attempt_at, d.due_at), d.lease_until))).where(d.status == "retry"),
        select(func.min(d.lease_until)).where(d.status == "sending"),
    ]
    with store.session(readonly=True) as session:
        found = [_aware(session.execute(q).scalar()) for q in queries]
    candidates = [at for at in found if at is not None]
    return min(candidates) if candidates else None


def _later(at: Any, lease: Any) -> Any:
    return case((and_(lease.is_not(None), lease > at), lease), else_=at)


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)  # SQLite's aggregates come back as naive UTC text


def rows_by_keys(store: Store, keys: Sequence[str]) -> list[DeliveryRow]:
    """The rows with these keys, in the order of ``keys`` (missing keys left out)."""
    with store.session(readonly=True) as session:
        found = {d.key: DeliveryRow.of(d) for d in session.scalars(select(Delivery).where(Delivery.key.in_(keys)))}
    return [found[key] for key in keys if key in found]


def statuses_by_key(store: Store, keys: list[str]) -> dict[str, tuple[int, str]]:
    """key → (row id, status) for the keys already in the outbox."""
    found: dict[str, tuple[int, str]] = {}
    with store.session(readonly=True) as session:
        for start in range(0, len(keys), 500):
            query = select(Delivery.key, Delivery.id, Delivery.status).where(Delivery.key.in_(keys[start:start + 500]))
            found.update({key: (id_, status) for key, id_, status in session.execute(query)})
    return found


def sent_meta(store: Store, kinds: Sequence[str], due_since: datetime) -> list[tuple[str, str, dict[str, Any]]]:
    """(target, rule, meta) of the rows of these kinds sent and due since ``due_since``, oldest send first:
    what sent messages told people, for re-planning to compare with."""
    query = (select(Delivery.target, Delivery.rule, Delivery.meta)
             .where(Delivery.kind.in_(kinds), Delivery.status == "sent", Delivery.due_at >= due_since)
             .order_by(Delivery.sent_at))
    with store.session(readonly=True) as session:
        return [(target, rule, meta or {}) for target, rule, meta in session.execute(query)]

"""The outbox: the database's record of every message that is due, and of what became of it.

A row moves pending → sending → sent | retry | failed | unknown; pending → missed | cancelled |
skipped. A worker claims a batch of rows under a lease (``claim_due``: attempt + 1, the status
stays 'pending' or 'retry'), marks each one 'sending' immediately before ITS HTTP call
(``begin_send``) and records the outcome with the attempt number it claimed (``record_outcomes``,
many rows in one transaction, with the alerts about them), so a stale worker whose lease expired
cannot overwrite a newer attempt. After a crash only a row left ``sending`` may have reached
WeCom: it is claimed again and marked ``resent``; a row claimed but never started is simply
claimed again when its lease ends (at once at start-up, ``end_sending_leases``).

This module writes rows; the row snapshot (``DeliveryRow``) and the console's reads are
``bot.store.queries``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot.occurrence import PlannedMessage
from bot.store.attempts import add_attempts
from bot.store.claims import CLAIMABLE, LEASED
from bot.store.db import Store
from bot.store.models import Delivery, require_aware, utc_now
from bot.store.queries import DeliveryRow

log = logging.getLogger(__name__)

T = TypeVar("T")
FollowUp = Callable[[list[bool]], Sequence[PlannedMessage]]
TABLE = Delivery.__table__
BATCH = 1000
# Tries to record outcomes while the database is busy (each waits SQLite's busy_timeout, 5 s): well
# within the lease, after which a row sent and not recorded would be sent again.
RECORD_TRIES = 6
OUTCOMES = ("sent", "retry", "failed", "unknown")
ADMIN_FROM = ("pending", "retry", "failed", "missed")
RETRYABLE = ("failed", "missed", "unknown")
# What re-planning may change in a row that is still pending.
CONTENT = ("msgtype", "title", "text", "card", "reason", "meta", "provisional")
# What a planned message puts in its row (the rest is the row's history).
ROW_FIELDS = ("key", "rule", "kind", "occurrence", "item", "target", "due_at", *CONTENT)

CANCELLED_BY_PLAN = "计划已变更，不再发送"
MISSED_WHILE_DOWN = "服务停止期间已超过补发时限，未发送"
# Its last attempt ended without an answer: WeCom may have delivered it, and a re-send by hand would
# then be a second copy.
MISSED_MAYBE_DELIVERED = "服务停止期间已超过补发时限，未再发送；此前一次请求超时，企业微信可能已收到，请先到群聊核实"
ADMIN_REASONS = {"skipped": "管理员已跳过", "cancelled": "管理员已取消"}


@dataclass(frozen=True)
class SyncResult:
    inserted: int
    updated: int
    cancelled: int


@dataclass(frozen=True)
class RecoveryResult:
    late: int
    missed: list[DeliveryRow]


def sync_plan(store: Store, planned: Sequence[PlannedMessage], window_start: datetime, window_end: datetime,
              now: datetime) -> SyncResult:
    """Make the pending rows match the plan for [window_start, window_end); idempotent."""
    for value, name in ((window_start, "window_start"), (window_end, "window_end"), (now, "now")):
        require_aware(value, name)
    wanted = _by_key(planned)
    with store.session() as session:
        inserted, updated = _write(session, store.dialect, wanted, now)
        cancelled = _cancel_vanished(session, wanted, window_start, window_end, now)
    result = SyncResult(inserted, updated, cancelled)
    log.debug("plan synced: %s", result)
    return result


def enqueue(store: Store, messages: Sequence[PlannedMessage], now: datetime) -> int:
    """The door for one-off messages (sent by hand, the console's send-now, alerts, late callback
    answers): insert them (a row still pending with the same key is updated), cancel nothing;
    the number inserted, so the same message twice is queued once."""
    require_aware(now, "now")
    with store.session() as session:
        inserted, _ = _write(session, store.dialect, _by_key(messages), now)
    return inserted


def _write(session: Session, dialect: str, wanted: dict[str, PlannedMessage], now: datetime) -> tuple[int, int]:
    """(inserted, updated): new keys inserted, pending rows with a wanted key brought up to date."""
    existing = _existing_rows(session, list(wanted))
    updated = _update_pending(session, existing, wanted, now)
    inserted = _insert_new(session, dialect, [m for k, m in wanted.items() if k not in existing], now)
    return inserted, updated


def _by_key(planned: Iterable[PlannedMessage]) -> dict[str, PlannedMessage]:
    wanted: dict[str, PlannedMessage] = {}
    for delivery in planned:
        if delivery.key in wanted:
            raise ValueError(f"the plan has two deliveries with key {delivery.key!r}")
        wanted[delivery.key] = delivery
    return wanted


def _chunks(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _existing_rows(session: Session, keys: list[str]) -> dict[str, Any]:
    columns = [TABLE.c.id, TABLE.c.key, TABLE.c.status, TABLE.c.due_at, *(TABLE.c[c] for c in CONTENT)]
    found = {}
    for batch in _chunks(keys):
        for row in session.execute(select(*columns).where(TABLE.c.key.in_(batch))).all():
            found[row.key] = row
    return found


def _plain(value: Any) -> Any:
    """The value as it comes back from a JSON column (tuples become lists, and so on)."""
    return json.loads(json.dumps(value))


def _changes(row: Any, wanted: PlannedMessage, now: datetime) -> dict[str, Any] | None:
    new = {c: getattr(wanted, c) for c in CONTENT} | {"meta": dict(wanted.meta)}
    changed = any(new[c] != getattr(row, c) and _plain(new[c]) != getattr(row, c) for c in ("card", "meta"))
    changed |= any(new[c] != getattr(row, c) for c in ("msgtype", "title", "text", "reason", "provisional"))
    # A row whose due time has passed is about to be sent: keep its time, refresh its content.
    due_at = wanted.due_at if row.due_at > now else row.due_at
    changed |= due_at != row.due_at
    if not changed:
        return None
    return {**{f"b_{c}": v for c, v in new.items()}, "b_id": row.id, "b_due_at": due_at, "b_updated_at": now}


def _update_pending(session: Session, existing: dict[str, Any], wanted: dict[str, PlannedMessage],
                    now: datetime) -> int:
    params = [p for k, row in existing.items() if row.status == "pending"
              if (p := _changes(row, wanted[k], now)) is not None]
    if not params:
        return 0
    names = (*CONTENT, "due_at", "updated_at")
    statement = (
        update(TABLE)
        .where(TABLE.c.id == bindparam("b_id"), TABLE.c.status == "pending")
        .values({c: bindparam(f"b_{c}", type_=TABLE.c[c].type) for c in names})
    )
    return sum(session.execute(statement, batch).rowcount for batch in _chunks(params))


def _insert_new(session: Session, dialect: str, deliveries: list[PlannedMessage], now: datetime) -> int:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # A concurrent planner may insert the same keys: the unique key makes that a no-op, and the
    # summed rowcount of a plain executemany counts only the rows really inserted.
    statement = (insert(TABLE).on_conflict_do_nothing(index_elements=["key"])
                 .execution_options(preserve_rowcount=True))
    rows = [_new_row(d, now) for d in deliveries]
    return sum(session.execute(statement, batch).rowcount for batch in _chunks(rows))


def _new_row(message: PlannedMessage, now: datetime) -> dict[str, Any]:
    return {
        **{name: getattr(message, name) for name in ROW_FIELDS}, "meta": dict(message.meta),
        "status": "pending", "attempts": 0, "late": False, "resent": False,
        "created_at": now, "updated_at": now,
    }


UNPLANNED_RULES = ("manual", "alert", "reply")


def _cancel_vanished(session: Session, wanted: dict[str, PlannedMessage], window_start: datetime,
                     window_end: datetime, now: datetime) -> int:
    # Messages sent by hand and alerts were never part of the plan: a re-plan leaves them alone.
    # So are rows a newer plan wrote: a replica whose re-plan read the clock before another's (a slow
    # plan across midnight) must not cancel what the other's later horizon added.
    in_window = select(TABLE.c.id, TABLE.c.key).where(
        TABLE.c.status == "pending", TABLE.c.due_at >= window_start, TABLE.c.due_at < window_end,
        TABLE.c.rule.not_in(UNPLANNED_RULES), TABLE.c.kind != "alert", TABLE.c.created_at <= now)
    ids = [row.id for row in session.execute(in_window).all() if row.key not in wanted]
    cancelled = 0
    for batch in _chunks(ids):
        statement = (update(TABLE).where(TABLE.c.id.in_(batch), TABLE.c.status == "pending")
                     .values(status="cancelled", last_error=CANCELLED_BY_PLAN, updated_at=now))
        cancelled += session.execute(statement).rowcount
    return cancelled


@dataclass(frozen=True)
class AttemptOutcome:
    """How attempt ``attempt`` of row ``delivery_id`` ended: what ``record_outcomes`` writes."""

    delivery_id: int
    attempt: int
    status: str
    error: str | None = None
    errcode: int | None = None
    msgid: str | None = None
    response_code: str | None = None
    next_attempt_at: datetime | None = None
    errmsg: str | None = None   # WeCom's words, for the row of attempts
    attempted: bool = True      # False for a deferral (pacing): a claim, but nothing was tried

    def __post_init__(self) -> None:
        if self.status not in OUTCOMES:
            raise ValueError(f"not an outcome: {self.status!r}; expected one of {OUTCOMES}")


def _typed(name: str) -> Any:
    return bindparam(f"b_{name}", type_=TABLE.c[name].type)


# Guarded like a single record: only the attempt that is current and still leased is written
# (claimed, or 'sending'); recording ends the lease, so an attempt is recorded once.
_RECORD = (
    update(TABLE)
    .where(TABLE.c.id == bindparam("b_id"), TABLE.c.attempts == bindparam("b_attempt"),
           or_(*(TABLE.c.status == status for status in LEASED)), TABLE.c.lease_until.is_not(None))
    .values({**{c: _typed(c) for c in ("status", "last_error", "errcode", "msgid", "response_code",
                                       "next_attempt_at", "updated_at")},
             "lease_until": None, "sent_at": func.coalesce(_typed("sent_at"), TABLE.c.sent_at)})
)


def record_outcome(store: Store, delivery_id: int, attempt: int, *, status: str, now: datetime,
                   **details: Any) -> bool:
    """Record how attempt ``attempt`` ended (``details``: AttemptOutcome's); False if it is no longer current."""
    return record_outcomes(store, [AttemptOutcome(delivery_id, attempt, status, **details)], now)[0]


def record_outcomes(store: Store, outcomes: Sequence[AttemptOutcome], now: datetime) -> list[bool]:
    """Record many outcomes in one transaction; for each, False if its attempt is no longer current."""
    return record_outcomes_and_queue(store, outcomes, now, lambda _: [])[0]


def record_outcomes_and_queue(store: Store, outcomes: Sequence[AttemptOutcome], now: datetime,
                              follow_up: FollowUp) -> tuple[list[bool], int]:
    """``record_outcomes``, queueing in the same transaction what ``follow_up`` makes of that list (the
    alerts about these outcomes: never one without the other); and the number of messages inserted.

    A busy database is waited out: these sends happened. A year under load saw SQLite's lock held past
    its timeout, the outcomes dropped, and each row sent again when its lease ran out.
    """
    require_aware(now, "now")
    for attempt in range(1, RECORD_TRIES):
        try:
            return _record_and_queue(store, outcomes, now, follow_up)
        except OperationalError as exc:
            log.warning("发送结果暂未能写入数据库（%s），第 %d 次重试", exc.orig, attempt)
    return _record_and_queue(store, outcomes, now, follow_up)


def _record_and_queue(store: Store, outcomes: Sequence[AttemptOutcome], now: datetime,
                      follow_up: FollowUp) -> tuple[list[bool], int]:
    if not outcomes:
        return [], 0
    with store.session() as session:
        current = _current_attempts(session, [o.delivery_id for o in outcomes])
        started = [_started_at(current, outcome) for outcome in outcomes]
        params = [_record_params(o, now) for o, at in zip(outcomes, started, strict=True) if at]
        if params:
            session.execute(_RECORD, params)
        add_attempts(session, [_attempt_row(o, at, now) for o, at in zip(outcomes, started, strict=True)
                               if at and o.attempted])
        messages = follow_up([at is not None for at in started])
        inserted = _write(session, store.dialect, _by_key(messages), now)[0] if messages else 0
    return [at is not None for at in started], inserted


def _started_at(current: dict[int, tuple[int, datetime]], outcome: AttemptOutcome) -> datetime | None:
    """When the attempt began, if it is the current one; the first outcome of an attempt wins, as it
    would one transaction at a time."""
    attempt, began_at = current.get(outcome.delivery_id, (None, None))
    if attempt != outcome.attempt:
        return None
    del current[outcome.delivery_id]
    return began_at


def _attempt_row(outcome: AttemptOutcome, started_at: datetime, now: datetime) -> dict[str, Any]:
    return {"delivery_id": outcome.delivery_id, "attempt": outcome.attempt, "started_at": started_at,
            "finished_at": now, "outcome": outcome.status, "errcode": outcome.errcode, "errmsg": outcome.errmsg,
            "explanation": outcome.error}


def _current_attempts(session: Session, ids: list[int]) -> dict[int, tuple[int, datetime]]:
    """Row id → (attempt, when it was claimed or began sending), for the rows still leased, locked
    until the transaction ends.

    SQLite's write transaction (BEGIN IMMEDIATE) already excludes every other writer; on
    PostgreSQL ``FOR UPDATE`` (in id order, so two recorders cannot deadlock) keeps these rows
    as read until the guarded UPDATE below writes them.
    """
    found: dict[int, tuple[int, datetime]] = {}
    for batch in _chunks(sorted(set(ids))):
        statement = (select(TABLE.c.id, TABLE.c.attempts, TABLE.c.updated_at)
                     .where(TABLE.c.id.in_(batch), TABLE.c.status.in_(LEASED), TABLE.c.lease_until.is_not(None))
                     .order_by(TABLE.c.id).with_for_update())
        found.update((row.id, (row.attempts, row.updated_at)) for row in session.execute(statement))
    return found


def _record_params(outcome: AttemptOutcome, now: datetime) -> dict[str, Any]:
    return {"b_id": outcome.delivery_id, "b_attempt": outcome.attempt, "b_status": outcome.status,
            "b_last_error": outcome.error, "b_errcode": outcome.errcode, "b_msgid": outcome.msgid,
            "b_response_code": outcome.response_code, "b_next_attempt_at": outcome.next_attempt_at,
            "b_updated_at": now, "b_sent_at": now if outcome.status == "sent" else None}


def recover_overdue(store: Store, now: datetime, grace: timedelta,
                    unanswered: Collection[str] = ()) -> RecoveryResult:
    """At start: rows older than the grace window are missed; younger overdue ones go out late.
    A missed row whose last error is one of ``unanswered`` (a send that got no answer) says that
    WeCom may have it."""
    cutoff = require_aware(now, "now") - grace
    reason = case((Delivery.last_error.in_(list(unanswered)), MISSED_MAYBE_DELIVERED),
                  else_=MISSED_WHILE_DOWN) if unanswered else MISSED_WHILE_DOWN
    with store.session() as session:
        missed = session.scalars(
            update(Delivery).where(Delivery.status.in_(CLAIMABLE), Delivery.due_at < cutoff)
            .values(status="missed", last_error=reason, next_attempt_at=None, updated_at=now)
            .returning(Delivery).execution_options(synchronize_session=False)
        ).all()
        late = session.execute(
            update(TABLE).where(TABLE.c.status == "pending", TABLE.c.due_at >= cutoff,
                                TABLE.c.due_at < now, TABLE.c.late.is_(False))
            .values(late=True, updated_at=now)
        ).rowcount
        rows = sorted((DeliveryRow.of(d) for d in missed), key=lambda r: (r.due_at, r.id))
    if rows:
        log.warning("服务停止期间有 %d 条消息错过发送时间", len(rows))
    return RecoveryResult(late=late, missed=rows)


def set_status(store: Store, delivery_id: int, status: str, *, error: str | None = None) -> bool:
    """An administrator skips or cancels a row that is not being sent; False if it was not allowed."""
    if status not in ADMIN_REASONS:
        raise ValueError(f"an administrator may set {tuple(ADMIN_REASONS)}, not {status!r}")
    statement = (
        update(TABLE).where(TABLE.c.id == delivery_id, TABLE.c.status.in_(ADMIN_FROM))
        .values(status=status, last_error=error or ADMIN_REASONS[status], next_attempt_at=None,
                updated_at=utc_now())
    )
    with store.session() as session:
        return session.execute(statement).rowcount == 1


def retry_now(store: Store, delivery_id: int, now: datetime) -> bool:
    """Send a failed, missed or unknown row again at the next claim; False if it is in another state."""
    require_aware(now, "now")
    statement = (
        update(TABLE).where(TABLE.c.id == delivery_id, TABLE.c.status.in_(RETRYABLE))
        .values(status="retry", next_attempt_at=now, lease_until=None, updated_at=now,
                # WeCom may have accepted an 'unknown' send: sending it again is a re-send.
                resent=case((TABLE.c.status == "unknown", True), else_=TABLE.c.resent))
    )
    with store.session() as session:
        return session.execute(statement).rowcount == 1


def take_response_code(store: Store, delivery_id: int, code: str) -> bool:
    """A sent card's response_code is single-use: take it (clear it in the row); False if already taken."""
    statement = (update(TABLE).where(TABLE.c.id == delivery_id, TABLE.c.response_code == code)
                 .values(response_code=None))
    with store.session() as session:
        return session.execute(statement).rowcount == 1


def bring_forward(store: Store, delivery_id: int, status: str, now: datetime) -> bool:
    """The console's 立即发送 of a row in ``status``: claimable now; False if it changed meanwhile."""
    if status in RETRYABLE:
        return retry_now(store, delivery_id, now)
    values = {"pending": {"due_at": now, "next_attempt_at": None}, "retry": {"next_attempt_at": now}}.get(status)
    if values is None:
        return False
    statement = (update(Delivery).where(Delivery.id == delivery_id, Delivery.status == status)
                 .values(**values, updated_at=now))
    with store.session() as session:
        return session.execute(statement).rowcount == 1

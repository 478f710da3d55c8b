"""Skip a planned message, or send it now: make sure its outbox row exists, then change that row."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import select, update

from bot.occurrence import PlannedMessage
from bot.runtime import Runtime
from bot.store.models import Delivery
from bot.store.outbox import RETRYABLE, enqueue, retry_now, set_status

CHUNK = 500


def statuses_by_key(rt: Runtime, keys: list[str]) -> dict[str, tuple[int, str]]:
    """key → (row id, status) for the keys already in the outbox."""
    found: dict[str, tuple[int, str]] = {}
    with rt.store.session(readonly=True) as session:
        for start in range(0, len(keys), CHUNK):
            query = select(Delivery.key, Delivery.id, Delivery.status).where(Delivery.key.in_(keys[start:start + CHUNK]))
            found.update({key: (id_, status) for key, id_, status in session.execute(query)})
    return found


def _row(rt: Runtime, key: str) -> tuple[int, str] | None:
    return statuses_by_key(rt, [key]).get(key)


def ensure_row(rt: Runtime, message: PlannedMessage, now: datetime) -> tuple[int, str]:
    """The message's outbox row, created if needed (by a re-plan when it is within the horizon)."""
    found = _row(rt, message.key)
    if found is None and message.due_at < now + rt.settings().delivery.horizon:
        rt.replan()
        found = _row(rt, message.key)
    if found is None:
        enqueue(rt.store, [message], now)
        found = _row(rt, message.key)
    assert found is not None
    return found


def skip(rt: Runtime, message: PlannedMessage, now: datetime, by: str) -> tuple[bool, str]:
    """(done, status before)."""
    row_id, status = ensure_row(rt, message, now)
    return set_status(rt.store, row_id, "skipped", error=f"管理员 {by} 已跳过"), status


def send_now(rt: Runtime, message: PlannedMessage, now: datetime) -> tuple[bool, str]:
    """(done, status before): the row becomes due now and the dispatcher is woken."""
    found = _row(rt, message.key)
    if found is None:
        enqueue(rt.store, [replace(message, due_at=now)], now)
        done, status = True, "（尚未写入发件箱）"
    else:
        row_id, status = found
        done = _bring_forward(rt, row_id, status, now)
    if done:
        rt.request_replan()
    return done, status


def _bring_forward(rt: Runtime, row_id: int, status: str, now: datetime) -> bool:
    if status in RETRYABLE:
        return retry_now(rt.store, row_id, now)
    values = {"pending": {"due_at": now, "next_attempt_at": None}, "retry": {"next_attempt_at": now}}.get(status)
    if values is None:
        return False
    statement = (update(Delivery).where(Delivery.id == row_id, Delivery.status == status)
                 .values(**values, updated_at=now))
    with rt.store.session() as session:
        return session.execute(statement).rowcount == 1

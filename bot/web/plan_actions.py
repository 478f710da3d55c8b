"""Skip a planned message, or send it now: make sure its outbox row exists, then change that row."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bot.occurrence import PlannedMessage
from bot.runtime import Runtime
from bot.store.outbox import bring_forward, enqueue, set_status
from bot.store.queries import statuses_by_key


def _row(rt: Runtime, key: str) -> tuple[int, str] | None:
    return statuses_by_key(rt.store, [key]).get(key)


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
        done = bring_forward(rt.store, row_id, status, now)
    if done:
        rt.request_replan()
    return done, status

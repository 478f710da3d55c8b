"""`wecom-reminder send` without --at: deliver these rows now, through the same outbox and dispatcher.

While another process (the running service) is dispatching, its pass sends them; this waits and
reports either way.
"""

from __future__ import annotations

import time
from datetime import datetime

from bot.clock import Clock
from bot.config import Settings
from bot.delivery.dispatcher import FINAL, Dispatcher
from bot.store.db import Store
from bot.store.queries import DeliveryRow, rows_by_keys


def deliver_now(store: Store, settings: Settings, clock: Clock, keys: list[str],
                timeout: float = 30.0) -> list[DeliveryRow]:
    """Dispatch until these rows are final or ``timeout`` seconds pass.

    Transient failures are retried with a short backoff (1 s, doubling to 4 s); a row still
    waiting at the timeout is left to the running service.
    """
    deadline = time.monotonic() + timeout
    dispatcher = Dispatcher(store, settings, clock, backoff=(1.0, 4.0))
    try:
        while True:
            dispatcher.dispatch_due()
            rows = rows_by_keys(store, keys)
            remaining = deadline - time.monotonic()
            if all(row.status in FINAL for row in rows) or remaining <= 0:
                return rows
            time.sleep(min(remaining, _until_next(rows, clock.now())))
    finally:
        dispatcher.close()


def _until_next(rows: list[DeliveryRow], now: datetime) -> float:
    waits = [(row.next_attempt_at - now).total_seconds() for row in rows
             if row.status == "retry" and row.next_attempt_at is not None]
    return min(max(0.05, min(waits, default=0.2)), 5.0)

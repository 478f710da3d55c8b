"""Time for the runtime. Pure code takes ``now`` as an argument; only the runtime asks a clock."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, aware, in Beijing time."""
        ...


class SystemClock:
    def __init__(self, tz: ZoneInfo = BEIJING) -> None:
        self.tz = tz

    def now(self) -> datetime:
        return datetime.now(self.tz)


class FakeClock:
    """A clock that tests move by hand (after twisted's task.Clock)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(BEIJING)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> None:
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        with self._lock:
            self._now += step

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment.astimezone(BEIJING)


def beijing_today(clock: Clock) -> date:
    """Beijing's today: a server in UTC at 07:00 Beijing time is still on yesterday."""
    return clock.now().astimezone(BEIJING).date()

"""Time for the runtime. Pure code takes ``now`` as an argument; only the runtime asks a clock."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")
# Benchmarks and tests of the whole process only: `run` reads "now" from this file (see FileClock).
TEST_CLOCK_ENV = "WECOM_REMINDER_TEST_CLOCK_FILE"

log = logging.getLogger(__name__)


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


class FileClock:
    """A clock another process moves, for benchmarks that drive a real `run` through a year.

    The file holds ``<ISO instant> <Unix seconds>``: the instant it named at that wall-clock second.
    Time flows at the normal rate from there (a retry a minute later comes a minute later), and
    jumps when the file is replaced. Never for production: only `run` with the environment
    variable TEST_CLOCK_ENV set uses it, and only against a WeCom on this machine (the simulator).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._base = datetime.now(BEIJING)
        self._since = time.time()
        self._refresh()

    def now(self) -> datetime:
        self._refresh()
        with self._lock:
            return self._base + timedelta(seconds=time.time() - self._since)

    def monotonic(self) -> float:
        """Seconds on this clock, for pacing: it only moves forward (the benchmark never turns it back)."""
        return self.now().timestamp()

    def _refresh(self) -> bool:
        """Read the file again if it was replaced; true when it was."""
        status = os.stat(self.path)
        stamp = (status.st_mtime_ns, status.st_ino, status.st_size)
        if stamp == self._stamp:
            return False
        instant, since = self.path.read_text(encoding="utf-8").split()
        with self._lock:
            self._stamp, self._since = stamp, float(since)
            self._base = datetime.fromisoformat(instant).astimezone(BEIJING)
        return True

    def watch(self, on_change: Callable[[], None], interval: float = 0.02) -> None:
        """Call ``on_change`` (in a daemon thread) each time the file is replaced."""
        def loop() -> None:
            while True:
                time.sleep(interval)
                try:
                    if self._refresh():
                        on_change()
                except Exception:  # noqa: BLE001 - a half-written file is read again next time
                    log.exception("test clock: could not read %s", self.path)

        threading.Thread(target=loop, name="test-clock", daemon=True).start()

    @staticmethod
    def write(path: str | Path, instant: datetime) -> None:
        """Move the clock in ``path`` to ``instant`` (atomically: readers never see half a file)."""
        target = Path(path)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(f"{instant.isoformat()} {time.time():.6f}", encoding="utf-8")
        os.replace(temporary, target)


def clock_from_environment() -> Clock:
    """The system clock; a FileClock only where TEST_CLOCK_ENV names its file (benchmarks, tests)."""
    path = os.environ.get(TEST_CLOCK_ENV)
    if not path:
        return SystemClock()
    log.warning("使用测试时钟（%s=%s）：时间由该文件决定，仅用于测试和基准", TEST_CLOCK_ENV, path)
    return FileClock(path)


def beijing_today(clock: Clock) -> date:
    """Beijing's today: a server in UTC at 07:00 Beijing time is still on yesterday."""
    return clock.now().astimezone(BEIJING).date()

"""Pacing: per robot, at most ``limit`` sends in any sliding window of ``window`` seconds.

WeCom allows 20 messages a minute per robot and answers 45009 beyond it; whether its window
slides is unconfirmed, so we pace as if it does (wecom.md §2). A send counts from the moment its
answer came back, which is never earlier than WeCom received it: so our own sends cannot make a
45009. Over the limit messages wait; none is dropped. The clock and the sleep are injected, so
tests move a fake clock instead of sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from bot.config import AppTarget, RobotTarget
from bot.store.db import Store
from bot.store.queries import recorded_sends


class SlidingWindowLimiter:
    def __init__(self, limit: int, window: float = 60.0, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be ≥ 1 and window > 0")
        self.limit = limit
        self.window = window
        self.now = now
        self.sleep = sleep
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._blocked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def seed(self, key: str, times: Iterable[float]) -> None:
        """Sends made before we started (by an earlier process), so a restart does not burst."""
        with self._lock:
            self._events[key] = deque(sorted([*self._events[key], *times]))

    def record(self, key: str, at: float | None = None) -> None:
        """One send to ``key`` finished (successfully or not: WeCom may count it either way)."""
        with self._lock:
            self._events[key].append(self.now() if at is None else at)

    def block(self, key: str, seconds: float) -> None:
        """WeCom said 45009 anyway (someone else uses this robot too): nothing more for a while."""
        with self._lock:
            self._blocked_until[key] = max(self._blocked_until.get(key, 0.0), self.now() + seconds)

    def schedule(self, key: str, count: int, duration: float = 0.0) -> list[float]:
        """When the next ``count`` sends to ``key`` may start, one after another, if each one takes
        ``duration`` seconds until its answer (from which it counts in the window)."""
        with self._lock:
            now = self.now()
            events = list(self._trimmed(key, now))
            earliest = max(now, self._blocked_until.get(key, 0.0))
        starts = []
        for _ in range(count):
            at = earliest
            if len(events) >= self.limit:
                at = max(at, events[-self.limit] + self.window)
            starts.append(at)
            events.append(at + duration)
            earliest = at + duration
        return starts

    def wait_time(self, key: str) -> float:
        return max(0.0, self.schedule(key, 1)[0] - self.now())

    def acquire(self, key: str, at_most: float = math.inf) -> float | None:
        """Block until a send to ``key`` is allowed; the seconds waited. The caller ``record``s the send.

        None when that would take more than ``at_most`` seconds in all: then it returns at once.
        """
        waited = 0.0
        while (wait := self.wait_time(key)) > 0:
            if waited + wait > at_most:
                return None
            self.sleep(wait)
            waited += wait
        return waited

    def _trimmed(self, key: str, now: float) -> deque[float]:
        events = self._events[key]
        while events and events[0] <= now - self.window:
            events.popleft()
        return events


class MemberQuota:
    """WeCom's quotas per member on app messages: 30 a minute and 1,000 an hour (wecom.md §4).

    Over them WeCom answers errcode 0 and drops the message: nothing tells us, so we must never go
    over. A send is reserved for each of its members before it starts and counted from the latest
    moment it can reach WeCom (its start plus the request timeout), so sends to one member running
    side by side cannot overrun together. Members reached through a department or a tag, and
    ``@all``, are not known here and not paced.
    """

    def __init__(self, window: float = 60.0, now: Callable[[], float] = time.monotonic,
                 per_minute: int = 30, per_hour: int = 1000) -> None:
        self.minute = SlidingWindowLimiter(per_minute, window, now)
        self.hour = SlidingWindowLimiter(per_hour, window * 60, now)
        self._lock = threading.Lock()

    def reserve(self, members: Iterable[str], in_flight: float) -> float:
        """0.0 when a send to all of ``members`` may start now (it is then counted for each of them);
        else the seconds until it may, and nothing is counted."""
        members = list(members)
        with self._lock:
            wait = max((limiter.wait_time(member) for member in members for limiter in (self.minute, self.hour)),
                       default=0.0)
            if wait > 0:
                return wait
            at = self.minute.now() + in_flight
            for member in members:
                self.minute.record(member, at)
                self.hour.record(member, at)
            return 0.0

    @property
    def windows(self) -> list[Window]:
        """Both windows, to seed from the outbox (``seed_windows``)."""
        return [(self.minute, app_members), (self.hour, app_members)]


def robot_keys(target: object) -> list[str]:
    """The robot a configured target posts through (its webhook key), if it is a robot."""
    return [target.key.get_secret_value()] if isinstance(target, RobotTarget) else []


def app_members(target: object) -> list[str]:
    """The members an app target names one by one (none for ``@all``, parties or tags)."""
    if not isinstance(target, AppTarget) or "@all" in target.users:
        return []
    return list(target.users)


KeysOf = Callable[[object], list[str]]
Window = tuple[SlidingWindowLimiter, KeysOf]  # a limiter and what it is keyed by in a row's target


def seed_windows(store: Store, wall_now: datetime, windows: Sequence[Window], targets: Mapping[str, object],
                 after: datetime | None = None, not_by: str | None = None) -> int:
    """Add to each limiter the outbox's sends within its window, read in one query (only those
    recorded since ``after`` and not by worker ``not_by``, when given); the number of sends added.
    A row names its target; ``targets`` (the config's) says which robot or members that is.

    From ``after`` inclusive: a send at that very instant may be counted twice, never missed.
    """
    widest = wall_now - timedelta(seconds=max(limiter.window for limiter, _ in windows))
    sends = recorded_sends(store, max(widest, after) if after else widest, not_by)
    found = 0
    for limiter, keys_of in windows:
        start, mono_now = wall_now - timedelta(seconds=limiter.window), limiter.now()
        times: dict[str, list[float]] = defaultdict(list)
        for name, sent_at in sends:
            if sent_at >= start and name in targets:
                for key in keys_of(targets[name]):
                    times[key].append(mono_now - (wall_now - sent_at).total_seconds())
        for key, moments in times.items():
            limiter.seed(key, moments)
            found += len(moments)
    return found

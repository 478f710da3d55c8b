"""Pacing for one dispatcher: which claimed rows may go now, and when the others may.

Sends to one robot run in order, in one lane, paced by ``SlidingWindowLimiter``; an app message
waits while one of the members it names has had 30 in the last minute or 1,000 in the last hour
(``MemberQuota``): WeCom drops those silently. Both windows start from the outbox's recorded sends
(``seed_windows``), and before each pass take in what other processes sent since.

A robot's lane sends the rows its window allows one after another, waiting in place before a send
when the gap is short (at most ``wait_horizon``). Where a longer wait comes, the rest of the lane
is put back with ``next_attempt_at`` a little before its slot (``lead``), in runs: the rows the
lane will then send back to back share one time, so one claim picks a whole window up. The pacer
remembers the rows it put back (``_queued``); a claimed row with one of them still waiting ahead
of it waits behind it, so a robot's rows go out in due order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.config import Settings
from bot.delivery.ratelimit import MemberQuota, SlidingWindowLimiter, app_members, robot_keys, seed_windows
from bot.store.db import Store
from bot.store.queries import DeliveryRow

DEFERRED = "按群机器人发送频率限制排队等待发送"
MEMBER_DEFERRED = "按企业微信对每位成员每分钟30条、每小时1000条的限制排队等待发送"
LEASE_RAN_OUT = "租约将到期，留待下一轮发送"

Run = tuple[float, list[DeliveryRow]]  # the limiter time its first row may start, and the rows
Waiting = tuple[DeliveryRow, datetime]  # a row put back, and when it is claimable again


class Pacer:
    def __init__(self, store: Store, settings: Settings, clock: Clock, *, window_seconds: float = 60.0,
                 monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.clock = clock
        self.targets = settings.all_targets()
        self.enabled = settings.wecom is not None  # the console needs no pacing
        self.limiter = SlidingWindowLimiter(settings.delivery.robot_per_minute, window_seconds, monotonic, sleep)
        self.members = MemberQuota(window_seconds, monotonic)
        self._windows = [(self.limiter, robot_keys), *self.members.windows]
        self._seen_until = clock.now()
        seed_windows(store, self._seen_until, self._windows, self.targets)
        self.wait_horizon = window_seconds / 30
        # Rows put back are claimed this much before their slot, to cover the pass's own start.
        self.lead = min(self.wait_horizon / 2, 0.25)
        self._send_seconds = 0.0  # a robot send's usual duration until its answer, to project slots
        # robot key → the rows put back to wait: id → ((due_at, id), next_attempt_at)
        self._queued: dict[str, dict[int, tuple[tuple[datetime, int], datetime]]] = {}
        self._queue_lock = threading.Lock()

    def learn_sends_elsewhere(self, store: Store, worker: str) -> None:
        """Sends other processes recorded since our last pass go into our windows."""
        after, self._seen_until = self._seen_until, self.clock.now()
        seed_windows(store, self._seen_until, self._windows, self.targets, after=after, not_by=worker)

    def robot_key(self, row: DeliveryRow) -> str | None:
        """The robot's key when ``row`` goes to a group robot (paced), else None."""
        keys = robot_keys(self.targets.get(row.target)) if self.enabled else []
        return keys[0] if keys else None

    def lanes(self, rows: list[DeliveryRow]) -> list[list[DeliveryRow]]:
        """One lane per robot (its rows in due order), one lane per other delivery."""
        robots: dict[str, list[DeliveryRow]] = {}
        lanes: list[list[DeliveryRow]] = []
        for row in rows:
            key = self.robot_key(row)
            if key is None:
                lanes.append([row])
            elif key in robots:
                robots[key].append(row)
            else:
                robots[key] = [row]
                lanes.append(robots[key])
        return lanes

    def split(self, lane: list[DeliveryRow]) -> tuple[list[DeliveryRow], list[Waiting]]:
        """The run of a lane it can send now (waiting in place for short gaps), and the rest put
        back, each run to just before its slot."""
        key = self.robot_key(lane[0])
        if key is None:
            return lane, []
        runs = self.runs(key, lane)
        start, first = runs[0]
        free = [row for row in first if self.waiting_ahead(key, row) is None]
        if free != first or start > self.limiter.now() + self.wait_horizon:
            return [], self.defer(key, runs)
        return first, self.defer(key, runs[1:])

    def runs(self, key: str, rows: list[DeliveryRow]) -> list[Run]:
        """``rows`` in runs a lane sends back to back; a new run begins where the projected wait
        before a send exceeds ``wait_horizon``."""
        duration = self._send_seconds
        starts = self.limiter.schedule(key, len(rows), duration)
        runs: list[Run] = []
        for index, (row, at) in enumerate(zip(rows, starts, strict=True)):
            if index and at - (starts[index - 1] + duration) <= self.wait_horizon:
                runs[-1][1].append(row)
            else:
                runs.append((at, [row]))
        return runs

    def defer(self, key: str, runs: list[Run]) -> list[Waiting]:
        """These runs put back: each ``lead`` before its slot, behind the rows waiting ahead."""
        if not runs:
            return []
        now_mono, now = self.limiter.now(), self.clock.now()
        waiting: list[Waiting] = []
        at = now
        for start, rows in runs:
            at = max(at, now + timedelta(seconds=start - self.lead - now_mono))
            for row in rows:
                at = max(at, self.waiting_ahead(key, row) or at)
                waiting.append((row, at))
        self.queue(key, waiting)
        return waiting

    def queue(self, key: str, waiting: list[Waiting]) -> None:
        """Remember these rows as put back until their time."""
        with self._queue_lock:
            queued = self._queued.setdefault(key, {})
            for row, at in waiting:
                queued[row.id] = ((row.due_at, row.id), at)

    def waiting_ahead(self, key: str, row: DeliveryRow) -> datetime | None:
        """The latest time a row of this robot waiting ahead of ``row`` is claimed again, if any."""
        order = (row.due_at, row.id)
        with self._queue_lock:
            ahead = [at for before, at in self._queued.get(key, {}).values() if before < order]
        return max(ahead, default=None)

    def forget_claimable(self, rows: list[DeliveryRow], claimed_at: datetime) -> None:
        """Rows claimed now, or claimable at this claim and not taken, wait for nothing: a claim takes
        the lowest claimable rows first, so none is passed by a row behind it (one not taken was
        cancelled, or re-queued by an administrator, or the batch was full)."""
        claimed = {row.id for row in rows}
        with self._queue_lock:
            for key, queued in list(self._queued.items()):
                for row_id in [i for i, (_, at) in queued.items() if i in claimed or at <= claimed_at]:
                    del queued[row_id]
                if not queued:
                    del self._queued[key]

    def wait_for_slot(self, row: DeliveryRow, key: str, send_margin: timedelta) -> str | None:
        """Wait in place until the robot's window allows a send, if that is a short wait; else why not."""
        wait = self.limiter.wait_time(key)
        if wait > self.wait_horizon:
            return DEFERRED
        if row.lease_until is not None and row.lease_until - self.clock.now() - timedelta(seconds=wait) < send_margin:
            return LEASE_RAN_OUT
        if wait and self.limiter.acquire(key, at_most=self.wait_horizon) is None:
            return DEFERRED
        return None

    def reserve_members(self, row: DeliveryRow, in_flight: float) -> float:
        """0.0 when an app message may go to its members now (counted for each); else the wait."""
        members = app_members(self.targets.get(row.target)) if self.enabled else []
        return self.members.reserve(members, in_flight) if members else 0.0

    def record_robot_send(self, key: str, seconds: float, blocked_for: float | None) -> None:
        self.limiter.record(key)
        # A moving average of a send's duration; the lead before each slot absorbs its error.
        self._send_seconds += (seconds - self._send_seconds) / 8
        if blocked_for:
            self.limiter.block(key, blocked_for)

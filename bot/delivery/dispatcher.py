"""The dispatcher: claims due outbox rows, sends them, records each outcome with its attempt.

Sends to different robots and app recipients run concurrently in a thread pool; the pacer
(``bot.delivery.pacing``) says which claimed rows may go now and puts the others back. Transient
failures are retried with exponential backoff and jitter up to ``delivery.max_attempts``; final
failures, ambiguous robot sends and missed rows raise an alert to the first working of ``admins.targets``.

Leases: a pass claims rows with a lease long enough for the worst case of one send, and a row
put back waits with ``next_attempt_at`` (status 'retry'). We chose that over extending leases
because a pass then never blocks for a whole window on one busy robot (the scheduler runs one pass
at a time), and the outbox needs no extra operation. Such a deferral is not a failed attempt: it
is not counted against ``max_attempts``.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests

from bot.clock import Clock
from bot.config import Settings
from bot.delivery import alerts
from bot.delivery.channels import RobotChannel, channel_for
from bot.delivery.pacing import DEFERRED, LEASE_RAN_OUT, MEMBER_DEFERRED, Pacer
from bot.errors import DeliveryError
from bot.formatting import STATUS_LABELS, target_title
from bot.occurrence import KIND_LABELS, PlannedMessage
from bot.store.claims import begin_send, claim_due
from bot.store.db import Store, try_leader_lock
from bot.store.outbox import AttemptOutcome, FollowUp, record_outcomes_and_queue
from bot.store.queries import DeliveryRow, next_claimable_at
from bot.wecom.http import pooled_session
from bot.wecom.outcomes import Outcome, max_attempts_for

log = logging.getLogger(__name__)

DISPATCH_LOCK = "wecom-reminder:dispatch"
FINAL = ("sent", "failed", "unknown", "cancelled", "skipped", "missed")
MAX_ROUNDS = 10_000  # claims per pass; only a runaway loop gets near it
RECORD_BATCH = 200  # outcomes per transaction, at most
# Both 'unknown' reasons end with this; a row claimed again after one was re-queued by an administrator.
NOT_RESENT = "按配置不再重发"
AMBIGUOUS = "上次发送时服务中断，消息可能已送达，" + NOT_RESENT


@dataclass(frozen=True)
class DispatchReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    deferred: int = 0
    stale: int = 0
    alerts: int = 0
    failed_keys: tuple[str, ...] = ()
    unknown_keys: tuple[str, ...] = ()
    busy_elsewhere: bool = False  # another process was dispatching: nothing was done


@dataclass
class _Tally:
    counts: Counter[str] = field(default_factory=Counter)
    keys: dict[str, list[str]] = field(default_factory=lambda: {"failed": [], "unknown": []})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: str, key: str) -> None:
        with self.lock:
            self.counts[status] += 1
            if status in self.keys:
                self.keys[status].append(key)

    def report(self) -> DispatchReport:
        c = self.counts
        return DispatchReport(c["sent"], c["retry"], c["failed"], c["unknown"], c["deferred"],
                              c["stale"], c["alerts"], tuple(self.keys["failed"]), tuple(self.keys["unknown"]))


@dataclass(frozen=True)
class _Result:
    """What to record for one claimed row; without an outcome it is a deferral, not an attempt."""

    row: DeliveryRow
    status: str
    error: str | None
    next_at: datetime | None = None
    outcome: Outcome | None = None

    @property
    def deferral(self) -> bool:
        return self.outcome is None


class Dispatcher:
    def __init__(self, store: Store, settings: Settings, clock: Clock, *, session: requests.Session | None = None,
                 max_workers: int = 32, worker_id: str | None = None, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic, window_seconds: float = 60.0,
                 rng: random.Random | None = None, backoff: tuple[float, float] = (30.0, 1800.0)) -> None:
        self.store, self.settings, self.clock = store, settings, clock
        self.worker = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.window = window_seconds
        self.rng = rng or random.Random()
        self.backoff = backoff
        self._own_session = session is None
        self._targets = settings.all_targets()
        self.session = pooled_session(session, settings, max_workers)
        self.pacer = Pacer(store, settings, clock, window_seconds=window_seconds, monotonic=monotonic, sleep=sleep)
        self.pool = ThreadPoolExecutor(max_workers, thread_name_prefix="wecom-send")
        self.batch = 2 * max_workers
        timeout = self.request_timeout = settings.delivery.request_timeout.total_seconds()
        # The worst case of one send: an app call, a token refresh and the call again (plus gettoken).
        self.send_margin = timedelta(seconds=4 * timeout)
        self.lease_seconds = int(4 * timeout + 60)
        self._deferrals: Counter[int] = Counter()
        self._deferrals_lock = threading.Lock()

    # ---- the pass ---------------------------------------------------------------------------

    def dispatch_due(self) -> DispatchReport:
        """Send everything due now, batch after batch, until nothing due is left.

        One process at a time dispatches from a database (another replica, or `send` beside `run`,
        waits for its next pass): so each begins with every send the others recorded, and the
        robots' and members' windows hold across processes.
        """
        with try_leader_lock(self.store, DISPATCH_LOCK) as alone:
            if not alone:
                log.debug("another process is dispatching; pass skipped")
                return DispatchReport(busy_elsewhere=True)
            self.pacer.learn_sends_elsewhere(self.store, self.worker)
            return self._dispatch_pass()

    def _dispatch_pass(self) -> DispatchReport:
        tally = _Tally()
        for _ in range(MAX_ROUNDS):
            now = self.clock.now()
            rows = claim_due(self.store, now, self.worker, limit=self.batch,
                             lease_seconds=self.lease_seconds)
            if not rows:
                break
            log.debug("claimed %d deliveries", len(rows))
            self._send_batch(rows, now, tally)
        report = tally.report()
        if report != DispatchReport():
            log.debug("dispatch pass: %s", report)
        return report

    def _send_batch(self, rows: list[DeliveryRow], claimed_at: datetime, tally: _Tally) -> None:
        """Lanes send in the pool; this thread records their results (SQLite has one writer).

        It records whatever is ready in one transaction, then waits for the next: under load the
        batches grow by themselves, and an outcome is never held longer than one commit (a sent
        row not yet recorded is a duplicate after a crash). The alerts about failed and unknown
        outcomes are queued in the transaction that records them.
        """
        results: queue.SimpleQueue[_Result | None] = queue.SimpleQueue()
        self.pacer.forget_claimable(rows, claimed_at)
        paced = [self.pacer.split(lane) for lane in self.pacer.lanes(rows)]
        lanes = [keep for keep, _ in paced if keep]
        for lane in lanes:
            self.pool.submit(self._run_lane, lane, results)
        deferred = [_Result(row, "retry", DEFERRED, at) for _, waiting in paced for row, at in waiting]
        self._record(deferred, tally)  # while the lanes send
        open_lanes = len(lanes)
        while open_lanes:
            ready, open_lanes = _take_ready(results, open_lanes)
            self._record(ready, tally)

    def _run_lane(self, lane: list[DeliveryRow], results: queue.SimpleQueue[_Result | None]) -> None:
        key = self.pacer.robot_key(lane[0])
        try:
            for index, row in enumerate(lane):
                held = None if key is None or self._reports_ambiguity(row) else self.pacer.wait_for_slot(
                    row, key, self.send_margin)
                if held is not None:
                    assert key is not None
                    for later, at in self.pacer.defer(key, self.pacer.runs(key, lane[index:])):
                        results.put(_Result(later, "retry", held, at))
                    break
                result = self._deliver(row)
                if result.status == "retry" and not result.deferral:
                    # The robot is unwell: the rest of its queue waits too, and keeps its order.
                    waiting = [result] + [_Result(later, "retry", DEFERRED, result.next_at)
                                          for later in lane[index + 1:]]
                    if key is not None:
                        self.pacer.queue(key, [(item.row, item.next_at) for item in waiting if item.next_at])
                    for item in waiting:
                        results.put(item)
                    break
                results.put(result)
        except Exception:  # noqa: BLE001 - the rows stay leased and are claimed again later
            log.exception("发送线程出错")
        finally:
            results.put(None)

    # ---- one delivery -----------------------------------------------------------------------

    def _deliver(self, row: DeliveryRow) -> _Result:
        now = self.clock.now()
        if row.lease_until is not None and row.lease_until - now < self.send_margin:
            return _Result(row, "retry", LEASE_RAN_OUT, now)
        if (wait := self.pacer.reserve_members(row, self.request_timeout)) > 0:
            return _Result(row, "retry", MEMBER_DEFERRED, now + timedelta(seconds=wait))
        outcome = self._attempt(row)
        if outcome is None:
            return _Result(row, "retry", LEASE_RAN_OUT, now)
        status, error, next_at = self._decide(row, outcome, self.clock.now())
        return _Result(row, status, error, next_at, outcome)

    def _attempt(self, row: DeliveryRow) -> Outcome | None:
        """The outcome of sending ``row``; None when its claim was lost before the send began."""
        target = self._targets.get(row.target)
        if target is None:
            return Outcome("failed", f"推送对象 {row.target} 已不在配置中")
        try:
            channel = channel_for(target, self.settings, self.session)
        except DeliveryError as exc:
            return Outcome("failed", str(exc))
        if self._reports_ambiguity(row) and isinstance(channel, RobotChannel):
            return Outcome("unknown", AMBIGUOUS)
        # 'sending' only now, just before this row's HTTP call: after a crash, only the rows
        # marked so may have reached WeCom; the rest of the claimed batch is sent after the restart.
        if not begin_send(self.store, row, self.worker, self.clock.now(), self.lease_seconds):
            return None
        if not isinstance(channel, RobotChannel):
            return channel.send(row)
        started = self.pacer.limiter.now()
        outcome = channel.send(row)
        blocked_for = self._scaled(outcome.retry_after) if outcome.retry_after else None
        self.pacer.record_robot_send(channel.recipients["webhook_key"], self.pacer.limiter.now() - started, blocked_for)
        return outcome

    def _reports_ambiguity(self, row: DeliveryRow) -> bool:
        """A robot row claimed again after a crash mid-send, where the config says not to re-send.

        The outbox marks such a claim ``resent``; the flag stays set, so a row an administrator
        re-queued after an 'unknown' (its last error is ours) is sent.
        """
        return (self.settings.delivery.ambiguous_robot_send == "report" and row.resent
                and not (row.last_error or "").endswith(NOT_RESENT))

    def _record(self, results: list[_Result], tally: _Tally) -> list[str]:
        """Record these results in one transaction; the status each one ended in ('stale' if not written)."""
        if not results:
            return []
        outcomes = [_attempt_outcome(result) for result in results]
        written, queued = record_outcomes_and_queue(self.store, outcomes, self.clock.now(), self._alerts_for(results))
        with tally.lock:
            tally.counts["alerts"] += queued
        return [self._account(result, ok, tally) for result, ok in zip(results, written, strict=True)]

    def _account(self, result: _Result, recorded: bool, tally: _Tally) -> str:
        row = result.row
        if not recorded:
            log.warning("发送结果未记录：%s 的第 %d 次尝试已被更新的尝试取代", row.key, row.attempts)
            tally.add("stale", row.key)
            return "stale"
        with self._deferrals_lock:
            if result.deferral:
                self._deferrals[row.id] += 1
            elif result.status != "retry":
                self._deferrals.pop(row.id, None)
        if result.deferral:
            log.debug("%s deferred to %s: %s", row.key, result.next_at, result.error)
            tally.add("deferred", row.key)
            return "deferred"
        self._log_send(row, result.status, result.error)
        tally.add(result.status, row.key)
        return result.status

    def _decide(self, row: DeliveryRow, outcome: Outcome, now: datetime) -> tuple[str, str | None, datetime | None]:
        if outcome.status == "sent":
            return "sent", "；".join(outcome.warnings) or None, None
        if outcome.status != "retry":
            return outcome.status, outcome.error, None
        if row.kind in alerts.ADMIN_KINDS and alerts.next_admin(self.settings, row.target):
            return "failed", outcome.error, None  # it does not wait: the next admin target gets it now
        attempts = self._real_attempts(row)
        if attempts >= max_attempts_for(outcome.errcode, self.settings.delivery.max_attempts):
            return "failed", f"{outcome.error}（已尝试 {attempts} 次）", None
        delay = self._backoff(attempts, outcome.retry_after)
        log.debug("%s: retry in %.1f s after %s", row.key, delay, outcome.error)
        return "retry", outcome.error, now + timedelta(seconds=delay)

    def _real_attempts(self, row: DeliveryRow) -> int:
        with self._deferrals_lock:
            return max(1, row.attempts - self._deferrals[row.id])

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        base, cap = self.backoff
        delay = min(cap, base * 2 ** (attempt - 1))
        jittered = delay / 2 + self.rng.uniform(0, delay / 2)
        return max(jittered, self._scaled(retry_after) if retry_after else 0.0)

    def _scaled(self, seconds: float) -> float:
        # WeCom's waits are in real minutes; benchmarks shrink the window and these with it.
        return seconds * self.window / 60.0

    def _log_send(self, row: DeliveryRow, status: str, error: str | None) -> None:
        what = f"{KIND_LABELS.get(row.kind, row.kind)}“{row.title}” → {target_title(row.target, self._targets)}"
        if status == "sent" and error:
            log.warning("已发送 %s（第 %d 次），但：%s", what, row.attempts, error)
        elif status == "sent":
            log.info("已发送 %s（第 %d 次）", what, row.attempts)
        else:
            log.info("未发送 %s（第 %d 次）：%s，%s", what, row.attempts, STATUS_LABELS.get(status, status), error)

    # ---- alerts ------------------------------------------------------------------------------

    def _alerts_for(self, results: Sequence[_Result]) -> FollowUp:
        """The alerts about these results' failed and unknown outcomes, for the recording transaction.

        Rendered before it (a render must not hold the write lock); again only if some outcome
        turned out stale.
        """
        chosen = [i for i, r in enumerate(results) if r.status in ("failed", "unknown") and not r.deferral]
        problems = [(results[i].row, results[i].status, results[i].error, results[i].outcome) for i in chosen]
        now = self.clock.now()
        ready = alerts.outcome_alerts(self.settings, now, problems)

        def follow_up(written: list[bool]) -> list[PlannedMessage]:
            kept = [p for p, i in zip(problems, chosen, strict=True) if written[i]]
            return ready if len(kept) == len(problems) else alerts.outcome_alerts(self.settings, now, kept)
        return follow_up

    def alert_missed(self, rows: Sequence[DeliveryRow]) -> int:
        """Tell the administrators about rows recovery marked missed; the number of alerts queued."""
        rows = [row for row in rows if row.kind != alerts.ALERT_KIND]
        if not rows:
            return 0
        lines = [alerts.problem_line(row, row.last_error, self.settings) for row in rows]
        return alerts.raise_alert(self.store, self.settings, self.clock.now(), f"{len(rows)} 条消息错过发送时间",
                                  lines, alerts.MISSED_ADVICE, rows)

    # ---- for the scheduler ------------------------------------------------------------------

    def next_due_at(self) -> datetime | None:
        """When the next row becomes claimable (due, retry time, or an abandoned lease)."""
        return next_claimable_at(self.store)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        if self._own_session:
            self.session.close()


def _attempt_outcome(result: _Result) -> AttemptOutcome:
    row, outcome = result.row, result.outcome or Outcome("retry")
    return AttemptOutcome(row.id, row.attempts, result.status, result.error, outcome.errcode, outcome.msgid,
                          outcome.response_code, result.next_at, outcome.errmsg, attempted=not result.deferral)


def _take_ready(results: queue.SimpleQueue[_Result | None], open_lanes: int) -> tuple[list[_Result], int]:
    """Wait for one result, then take what else is queued (up to RECORD_BATCH); and the lanes still open.

    A lane puts None after its last result.
    """
    ready: list[_Result] = []
    item = results.get()
    while True:
        if item is None:
            open_lanes -= 1
        else:
            ready.append(item)
        if not open_lanes or len(ready) >= RECORD_BATCH:
            return ready, open_lanes
        try:
            item = results.get_nowait()
        except queue.Empty:
            return ready, open_lanes

"""The dispatcher: claims due outbox rows, sends them, records each outcome with its attempt.

Sends to different robots and app recipients run concurrently in a thread pool; sends to one
robot run in order, in one lane, paced by ``SlidingWindowLimiter``. An app message waits (a
deferral, like a robot's) while one of the members it names has had 30 in the last minute or 1,000
in the last hour (``MemberQuota``): WeCom drops those silently. Transient failures are retried
with exponential backoff and jitter up to ``delivery.max_attempts``; final failures, ambiguous
robot sends and missed rows raise an alert to ``admins.target``.

Leases: a pass claims rows with a lease long enough for the worst case of one send. A robot's
lane sends the rows its window allows one after another, waiting in place before a send when
the gap is short (at most ``wait_horizon``, and never so long that the row's lease would run
out before the send's worst case). Where a longer wait comes (the window is full until its
oldest send's answer leaves it), the rest of the lane is recorded 'retry' with
``next_attempt_at`` a little before its slot (``lead``), in runs: the rows the lane will then
send back to back share one time, so one claim picks a whole window up, and the lane waits in
place for the exact slot. We chose that over extending leases because a pass then never blocks
for a whole window on one busy robot (the scheduler runs one pass at a time), and the outbox
needs no extra operation. Such a deferral is not a failed attempt: it is not counted against
``max_attempts``.

Order: a robot's rows go out in due order. A claim takes the lowest claimable rows, so a row
is never sent past one that was claimable at that claim. The dispatcher remembers the rows it
put back to wait (``_queued``); a claimed row with one of them still waiting ahead of it is
deferred behind it, and deferred rows get times in order behind the ones waiting ahead.
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
from datetime import datetime, timedelta, timezone

import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import func, select

from bot.clock import Clock
from bot.config import Settings
from bot.delivery import alerts
from bot.delivery.channels import RobotChannel, channel_for
from bot.delivery.ratelimit import MemberQuota, SlidingWindowLimiter, app_members, robot_keys, seed_windows
from bot.errors import DeliveryError
from bot.formatting import STATUS_LABELS, target_title
from bot.inbox.ledger import confirmed_pairs
from bot.occurrence import KIND_LABELS
from bot.store.db import Store, try_leader_lock
from bot.store.models import Delivery
from bot.store.outbox import AttemptOutcome, claim_due, record_outcomes, set_status
from bot.store.queries import DeliveryRow, list_deliveries
from bot.wecom.api import Outcome, max_attempts_for

log = logging.getLogger(__name__)

DISPATCH_LOCK = "wecom-reminder:dispatch"
FINAL = ("sent", "failed", "unknown", "cancelled", "skipped", "missed")
MAX_ROUNDS = 10_000  # claims per pass; only a runaway loop gets near it
RECORD_BATCH = 200  # outcomes per transaction, at most
DEFERRED = "按群机器人发送频率限制排队等待发送"
MEMBER_DEFERRED = "按企业微信对每位成员每分钟30条、每小时1000条的限制排队等待发送"
LEASE_RAN_OUT = "租约将到期，留待下一轮发送"
NUDGE_CONFIRMED = "该支部已确认完成学习，不再催办"
# Both 'unknown' reasons end with this; a row claimed again after one was re-queued by an administrator.
NOT_RESENT = "按配置不再重发"
AMBIGUOUS = "上次发送时服务中断，消息可能已送达，" + NOT_RESENT


@dataclass(frozen=True)
class DispatchReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0
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
        return DispatchReport(c["sent"], c["retry"], c["failed"], c["unknown"], c["cancelled"], c["deferred"],
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


@dataclass(frozen=True)
class _Problem:
    row: DeliveryRow
    status: str
    reason: str | None


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
        self.session = _pooled(session, settings, max_workers)
        self.limiter = SlidingWindowLimiter(settings.delivery.robot_per_minute, window_seconds, monotonic, sleep)
        self.members = MemberQuota(window_seconds, monotonic)
        self._seen_until = clock.now()
        self._windows = [(self.limiter, robot_keys), *self.members.windows]
        seed_windows(store, self._seen_until, self._windows, self._targets)
        self.pool = ThreadPoolExecutor(max_workers, thread_name_prefix="wecom-send")
        self.batch = 2 * max_workers
        timeout = self.request_timeout = settings.delivery.request_timeout.total_seconds()
        # The worst case of one send: an app call, a token refresh and the call again (plus gettoken).
        self.send_margin = timedelta(seconds=4 * timeout)
        self.lease_seconds = int(4 * timeout + 60)
        self.wait_horizon = window_seconds / 30
        # Deferred rows are claimed this much before their slot, to cover the pass's own start.
        self.lead = min(self.wait_horizon / 2, 0.25)
        self._send_seconds = 0.0  # a robot send's usual duration until its answer, to project slots
        # robot key → the rows this dispatcher put back to wait: id → ((due_at, id), next_attempt_at)
        self._queued: dict[str, dict[int, tuple[tuple[datetime, int], datetime]]] = {}
        self._queue_lock = threading.Lock()
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
            self._learn_sends_elsewhere()
            return self._dispatch_pass()

    def _learn_sends_elsewhere(self) -> None:
        """Sends other processes recorded since our last pass go into our windows."""
        after, self._seen_until = self._seen_until, self.clock.now()
        seed_windows(self.store, self._seen_until, self._windows, self._targets, after=after, not_by=self.worker)

    def _dispatch_pass(self) -> DispatchReport:
        tally = _Tally()
        self._cancel_confirmed_nudges(tally)
        for _ in range(MAX_ROUNDS):
            now = self.clock.now()
            rows = claim_due(self.store, now, self.worker, limit=self.batch,
                             lease_seconds=self.lease_seconds)
            if not rows:
                break
            log.debug("claimed %d deliveries", len(rows))
            problems = self._send_batch(rows, now, tally)
            tally.counts["alerts"] += self._alert_problems(problems)
        report = tally.report()
        if report != DispatchReport():
            log.debug("dispatch pass: %s", report)
        return report

    def _send_batch(self, rows: list[DeliveryRow], claimed_at: datetime, tally: _Tally) -> list[_Problem]:
        """Lanes send in the pool; this thread records their results (SQLite has one writer).

        It records whatever is ready in one transaction, then waits for the next: under load the
        batches grow by themselves, and an outcome is never held longer than one commit (a sent
        row not yet recorded is a duplicate after a crash).
        """
        results: queue.SimpleQueue[_Result | None] = queue.SimpleQueue()
        self._forget_claimable(rows, claimed_at)
        paced = [self._paced(lane) for lane in _lanes(rows, self._robot_key)]
        lanes = [keep for keep, _ in paced if keep]
        for lane in lanes:
            self.pool.submit(self._run_lane, lane, results)
        self._record([result for _, deferred in paced for result in deferred], tally)  # while the lanes send
        problems: list[_Problem] = []
        open_lanes = len(lanes)
        while open_lanes:
            ready, open_lanes = _take_ready(results, open_lanes)
            for result, status in zip(ready, self._record(ready, tally), strict=True):
                if status in ("failed", "unknown"):
                    problems.append(_Problem(result.row, result.status, result.error))
        return problems

    def _paced(self, lane: list[DeliveryRow]) -> tuple[list[DeliveryRow], list[_Result]]:
        """The run of a robot's lane it can send now (waiting in place for short gaps), and the
        rest deferred, each run to just before its slot."""
        key = self._robot_key(lane[0])
        if key is None:
            return lane, []
        runs = self._runs(key, lane)
        start, first = runs[0]
        free = [row for row in first if self._waiting_ahead(key, row) is None]
        if free != first or start > self.limiter.now() + self.wait_horizon:
            return [], self._defer(key, runs)
        return first, self._defer(key, runs[1:])

    def _runs(self, key: str, rows: list[DeliveryRow]) -> list[tuple[float, list[DeliveryRow]]]:
        """``rows`` in runs a lane sends back to back, each with the limiter time its first may start.

        A new run begins where the projected wait before a send exceeds ``wait_horizon``.
        """
        duration = self._send_seconds
        starts = self.limiter.schedule(key, len(rows), duration)
        runs: list[tuple[float, list[DeliveryRow]]] = []
        for index, (row, at) in enumerate(zip(rows, starts, strict=True)):
            if index and at - (starts[index - 1] + duration) <= self.wait_horizon:
                runs[-1][1].append(row)
            else:
                runs.append((at, [row]))
        return runs

    def _defer(self, key: str, runs: list[tuple[float, list[DeliveryRow]]], reason: str = DEFERRED) -> list[_Result]:
        """Deferrals for these runs: each run ``lead`` before its slot, behind the rows waiting ahead."""
        if not runs:
            return []
        now_mono, now = self.limiter.now(), self.clock.now()
        deferred: list[_Result] = []
        at = now
        for start, rows in runs:
            at = max(at, now + timedelta(seconds=start - self.lead - now_mono))
            for row in rows:
                at = max(at, self._waiting_ahead(key, row) or at)
                deferred.append(_Result(row, "retry", reason, at))
        self._queue(key, deferred)
        return deferred

    def _queue(self, key: str, results: list[_Result]) -> None:
        """Remember these rows as put back to wait until their ``next_at``."""
        with self._queue_lock:
            queued = self._queued.setdefault(key, {})
            for result in results:
                if result.next_at is not None:
                    queued[result.row.id] = ((result.row.due_at, result.row.id), result.next_at)

    def _waiting_ahead(self, key: str, row: DeliveryRow) -> datetime | None:
        """The latest time a row of this robot waiting ahead of ``row`` is claimed again, if any."""
        order = (row.due_at, row.id)
        with self._queue_lock:
            ahead = [at for before, at in self._queued.get(key, {}).values() if before < order]
        return max(ahead, default=None)

    def _forget_claimable(self, rows: list[DeliveryRow], claimed_at: datetime) -> None:
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

    def _robot_key(self, row: DeliveryRow) -> str | None:
        """The robot's key when ``row`` goes to a group robot (paced), else None."""
        if self.settings.wecom is None:
            return None
        keys = robot_keys(self._targets.get(row.target))
        return keys[0] if keys else None

    def _run_lane(self, lane: list[DeliveryRow], results: queue.SimpleQueue[_Result | None]) -> None:
        key = self._robot_key(lane[0])
        try:
            for index, row in enumerate(lane):
                held = None if key is None else self._wait_for_slot(row, key)
                if held is not None:
                    assert key is not None
                    for result in self._defer(key, self._runs(key, lane[index:]), held):
                        results.put(result)
                    break
                result = self._deliver(row)
                if result.status == "retry" and not result.deferral:
                    # The robot is unwell: the rest of its queue waits too, and keeps its order.
                    waiting = [result] + [_Result(later, "retry", DEFERRED, result.next_at)
                                          for later in lane[index + 1:]]
                    if key is not None:
                        self._queue(key, waiting)
                    for item in waiting:
                        results.put(item)
                    break
                results.put(result)
        except Exception:  # noqa: BLE001 - the rows stay leased and are claimed again later
            log.exception("发送线程出错")
        finally:
            results.put(None)

    def _wait_for_slot(self, row: DeliveryRow, key: str) -> str | None:
        """Wait in place until the robot's window allows a send, if that is a short wait; else why not."""
        if self._reports_ambiguity(row):
            return None  # nothing will be sent
        wait = self.limiter.wait_time(key)
        if wait > self.wait_horizon:
            return DEFERRED
        if row.lease_until is not None and row.lease_until - self.clock.now() - timedelta(seconds=wait) < self.send_margin:
            return LEASE_RAN_OUT
        if wait and self.limiter.acquire(key, at_most=self.wait_horizon) is None:
            return DEFERRED
        return None

    # ---- one delivery -----------------------------------------------------------------------

    def _deliver(self, row: DeliveryRow) -> _Result:
        now = self.clock.now()
        if row.lease_until is not None and row.lease_until - now < self.send_margin:
            return _Result(row, "retry", LEASE_RAN_OUT, now)
        members = app_members(self._targets.get(row.target)) if self.settings.wecom is not None else []
        if members and (wait := self.members.reserve(members, self.request_timeout)) > 0:
            return _Result(row, "retry", MEMBER_DEFERRED, now + timedelta(seconds=wait))
        outcome = self._attempt(row)
        status, error, next_at = self._decide(row, outcome, self.clock.now())
        return _Result(row, status, error, next_at, outcome)

    def _attempt(self, row: DeliveryRow) -> Outcome:
        target = self._targets.get(row.target)
        if target is None:
            return Outcome("failed", f"推送对象 {row.target} 已不在配置中")
        try:
            channel = channel_for(target, self.settings, self.session)
        except DeliveryError as exc:
            return Outcome("failed", str(exc))
        if not isinstance(channel, RobotChannel):
            return channel.send(row)
        if self._reports_ambiguity(row):
            return Outcome("unknown", AMBIGUOUS)
        key = channel.recipients["webhook_key"]
        started = self.limiter.now()
        outcome = channel.send(row)
        self.limiter.record(key)
        self._learn_send_seconds(self.limiter.now() - started)
        if outcome.retry_after:
            self.limiter.block(key, self._scaled(outcome.retry_after))
        return outcome

    def _learn_send_seconds(self, seconds: float) -> None:
        # A moving average; the lead before each slot absorbs its error.
        self._send_seconds += (seconds - self._send_seconds) / 8

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
        written = record_outcomes(self.store, outcomes, self.clock.now())
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

    # ---- alerts and cancellations -----------------------------------------------------------

    def _alert_problems(self, problems: Sequence[_Problem]) -> int:
        problems = [p for p in problems if not self._is_alert(p.row)]
        queued = 0
        for status, title, advice in (("failed", "条消息发送失败", alerts.FAILED_ADVICE),
                                      ("unknown", "条消息发送结果不明", alerts.UNKNOWN_ADVICE)):
            chosen = [p for p in problems if p.status == status]
            if chosen:
                lines = [alerts.problem_line(p.row, p.reason, self.settings) for p in chosen]
                queued += alerts.raise_alert(self.store, self.settings, self.clock.now(), f"{len(chosen)} {title}",
                                             lines, advice, [p.row for p in chosen])
        return queued

    def _is_alert(self, row: DeliveryRow) -> bool:
        if row.kind == alerts.ALERT_KIND:
            log.error("告警消息未能送达管理员（%s）：%s", row.target, row.last_error)
            return True
        return False

    def alert_missed(self, rows: Sequence[DeliveryRow]) -> int:
        """Tell the administrators about rows recovery marked missed; the number of alerts queued."""
        rows = [row for row in rows if row.kind != alerts.ALERT_KIND]
        if not rows:
            return 0
        lines = [alerts.problem_line(row, row.last_error, self.settings) for row in rows]
        return alerts.raise_alert(self.store, self.settings, self.clock.now(), f"{len(rows)} 条消息错过发送时间",
                                  lines, alerts.MISSED_ADVICE, rows)

    def _cancel_confirmed_nudges(self, tally: _Tally) -> None:
        """A nudge to a branch that has confirmed since it was planned is cancelled, not sent."""
        now = self.clock.now()
        nudges = list_deliveries(self.store, status=("pending", "retry"), kind="study_nudge",
                                 until=now + timedelta(seconds=1), limit=10_000, order="asc")
        if not nudges:
            return
        with self.store.session(readonly=True) as session:
            confirmed = confirmed_pairs(session, {row.item for row in nudges if row.item})
        for row in nudges:
            if (row.item, (row.meta or {}).get("branch")) in confirmed:
                if set_status(self.store, row.id, "cancelled", error=NUDGE_CONFIRMED):
                    log.info("已取消 %s → %s：%s", row.kind, row.target, NUDGE_CONFIRMED)
                    tally.add("cancelled", row.key)

    # ---- for the scheduler ------------------------------------------------------------------

    def next_due_at(self) -> datetime | None:
        """When the next row becomes claimable (due, retry time, or an abandoned lease)."""
        d = Delivery
        queries = [
            select(func.min(d.due_at)).where(d.status == "pending"),
            select(func.min(func.coalesce(d.next_attempt_at, d.due_at))).where(d.status == "retry"),
            select(func.min(d.lease_until)).where(d.status == "sending"),
        ]
        with self.store.session(readonly=True) as session:
            found = [_aware(session.execute(q).scalar()) for q in queries]
        candidates = [at for at in found if at is not None]
        return min(candidates) if candidates else None

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        if self._own_session:
            self.session.close()


def _attempt_outcome(result: _Result) -> AttemptOutcome:
    row, outcome = result.row, result.outcome or Outcome("retry")
    return AttemptOutcome(row.id, row.attempts, result.status, result.error, outcome.errcode, outcome.msgid,
                          outcome.response_code, result.next_at)


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


def _lanes(rows: list[DeliveryRow], robot_key: Callable[[DeliveryRow], str | None]) -> list[list[DeliveryRow]]:
    """One lane per robot (its rows in due order), one lane per other delivery."""
    robots: dict[str, list[DeliveryRow]] = {}
    lanes: list[list[DeliveryRow]] = []
    for row in rows:
        key = robot_key(row)
        if key is None:
            lanes.append([row])
        elif key in robots:
            robots[key].append(row)
        else:
            robots[key] = [row]
            lanes.append(robots[key])
    return lanes


def _pooled(session: requests.Session | None, settings: Settings, size: int) -> requests.Session:
    """A session whose pool to WeCom holds a connection per worker (urllib3 keeps 10 by default)."""
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=size)
    if session is None:
        session = requests.Session()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        if settings.wecom is not None:
            _read_environment_once(session, settings.wecom.api_base)
    elif settings.wecom is not None:
        session.mount(settings.wecom.api_base, adapter)
    return session


def _read_environment_once(session: requests.Session, api_base: str) -> None:
    """Take the proxy and CA bundle for WeCom from the environment now, as requests would on each call.

    requests reads them (and ~/.netrc) on every request: about a third of a send's CPU time.
    """
    session.proxies.update(requests.utils.get_environ_proxies(api_base))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    # Only for https: with a bundle path, requests stats it on every request (os.path.isdir),
    # whatever the scheme; over plain http (the simulator) there is nothing to verify.
    if bundle and api_base.lower().startswith("https://"):
        session.verify = bundle
    session.trust_env = False


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)  # SQLite's aggregates come back as naive UTC text

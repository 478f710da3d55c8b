"""Group commit for WeCom's callbacks: request threads wait, one thread writes.

Request threads verify, decrypt and parse in parallel, then hand the message to the writer and
wait for its answer. The writer takes whatever is queued (up to ``MAX_BATCH``), answers each
message in its own savepoint inside one transaction and commits once: one fsync for the batch
under ``synchronous=FULL``. No answer leaves before that commit, so an answered callback is a
recorded one.

The inbox's unique key makes WeCom's retries harmless: against the rows already stored (read once
per batch), inside the batch (deliveries of one MsgId share the first one's answer), and against
another replica's insert on PostgreSQL (the unique violation rolls back that message's savepoint
and the stored answer is given instead).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.inbox.responder import Outcome
from bot.store import Store
from bot.store.inbox import insert_inbox, stored_replies

log = logging.getLogger(__name__)

MAX_BATCH = 200
MAX_QUEUE = 4000      # a few seconds of work: beyond it, a request waits for room within its time
ANSWER_WITHIN = 3.0   # seconds a request waits for its batch; WeCom gives up after 5


@dataclass(frozen=True)
class Inbound:
    """A decrypted callback's fields (wecom.md §9)."""

    fields: dict[str, str]
    raw: str
    key: str = ""  # the AI bot's own dedupe key; app callbacks derive theirs from the fields

    def get(self, name: str) -> str:
        return self.fields.get(name, "")

    @property
    def user(self) -> str:
        return self.get("FromUserName")

    @property
    def is_card_click(self) -> bool:
        return self.get("MsgType") == "event" and self.get("Event") in ("template_card_event",
                                                                        "template_card_menu_event")

    @property
    def dedupe_key(self) -> str:
        if self.key:
            return self.key
        if self.get("MsgId"):
            return f"msg:{self.get('MsgId')}"
        parts = (self.user, self.get("CreateTime"), self.get("Event"), self.get("TaskId"), self.get("EventKey"))
        return "event:" + ":".join(parts)


@dataclass(frozen=True)
class Recorded:
    """The answer to one callback; ``outcome`` only when this delivery was the first (``fresh``)."""

    reply: str | None
    fresh: bool
    outcome: Outcome | None = None


class NotRecorded(Exception):
    """The callback was not recorded (writer closed or overloaded, or its transaction failed)."""


class NotYetAnswered(NotRecorded):
    """Still queued or being written when the answer was due: ``future`` settles later."""

    def __init__(self, message: str, future: Future[Recorded]) -> None:
        super().__init__(message)
        self.future = future


Answer = Callable[[Inbound, datetime], "Outcome | None"]
# Called once per batch, inside its transaction, with the batch's messages; returns the answerer.
PrepareAnswer = Callable[[Session, Sequence[Inbound]], Answer]


@dataclass(frozen=True)
class _Job:
    inbound: Inbound
    now: datetime
    future: Future[Recorded]


class InboxWriter:
    """One thread owning the callback's write transactions; ``close()`` answers what is queued."""

    def __init__(self, store: Store, prepare: PrepareAnswer, *, max_batch: int = MAX_BATCH,
                 max_queue: int = MAX_QUEUE) -> None:
        self.store = store
        self._prepare = prepare
        self._max_batch = max_batch
        self._queue: queue.Queue[_Job | None] = queue.Queue(max_queue)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def record(self, inbound: Inbound, now: datetime, timeout: float = ANSWER_WITHIN) -> Recorded:
        """Record one callback (or find its earlier delivery) and return the answer, within ``timeout``
        seconds in all: waiting for room in a full queue counts too."""
        deadline = time.monotonic() + timeout
        future = self.submit(inbound, now, wait=timeout)
        try:
            return future.result(max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            raise NotYetAnswered(f"not answered within {timeout} s", future) from None

    def submit(self, inbound: Inbound, now: datetime, wait: float = 0.0) -> Future[Recorded]:
        """Queue one callback; where the queue is full, wait up to ``wait`` seconds for room."""
        job = _Job(inbound, now, Future())
        with self._lock:
            if self._closed:
                raise NotRecorded("the inbox writer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
                self._thread.start()
            try:
                self._queue.put_nowait(job)
                return job.future
            except queue.Full:
                pass
        # A burst: wait for room outside the lock (close() must not wait behind us). A job put after
        # close() is never answered: its request times out into a 503, as any callback after closing.
        try:
            self._queue.put(job, timeout=wait) if wait > 0 else self._queue.put_nowait(job)
        except queue.Full:
            raise NotRecorded("the inbox writer is overloaded") from None
        return job.future

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop accepting callbacks and answer every one already queued."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(None)  # after every job; submit() can no longer add one
        if thread is not None:
            thread.join(timeout)

    # ---- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            jobs, stop = self._take()
            if jobs:
                self._write(jobs)
            if stop:
                return

    def _take(self) -> tuple[list[_Job], bool]:
        """Wait for one job, then take whatever else is queued, up to a batch."""
        first = self._queue.get()
        if first is None:
            return [], True
        jobs = [first]
        while len(jobs) < self._max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _write(self, jobs: list[_Job]) -> None:
        groups: dict[str, list[_Job]] = {}
        for job in jobs:
            groups.setdefault(job.inbound.dedupe_key, []).append(job)
        try:
            results = self._transaction(groups, careful=False)
        except Exception:  # noqa: BLE001 - rare: find the culprit, keep the rest
            log.warning("一批 %d 条回调写入失败，改为逐条记录", len(jobs), exc_info=True)
            try:
                results = self._transaction(groups, careful=True)
            except Exception:  # noqa: BLE001 - nothing of this batch is recorded; every request hears so
                log.exception("%d 条回调未能记录", len(jobs))
                results = {key: NotRecorded("the batch's transaction failed") for key in groups}
        for key, group in groups.items():
            result = results[key]
            _settle(group[0].future, result)
            for retry in group[1:]:
                _settle(retry.future, result if isinstance(result, BaseException) else
                        Recorded(result.reply, fresh=False))

    def _transaction(self, groups: dict[str, list[_Job]], *, careful: bool) -> dict[str, Recorded | Exception]:
        """Answer and record a batch in one transaction. Quickly: no savepoints, one insert for the
        batch, and any failure fails it all. Carefully: a savepoint per message, so that one that
        fails (or that another replica recorded meanwhile) leaves the others recorded."""
        with self.store.session() as session:
            stored = stored_replies(session, groups)
            new = [group[0] for key, group in groups.items() if key not in stored]
            answer = self._prepare(session, [job.inbound for job in new])
            results: dict[str, Recorded | Exception] = {key: Recorded(reply, False) for key, reply in stored.items()}
            if not careful:
                results.update(_record_all(session, answer, new))
                return results
            for job in new:
                try:
                    results[job.inbound.dedupe_key] = _record_one(session, answer, job)
                except Exception as exc:  # noqa: BLE001 - one bad message must not lose the others
                    log.exception("回调 %s 未能记录", job.inbound.dedupe_key)
                    results[job.inbound.dedupe_key] = NotRecorded(f"failed: {exc.__class__.__name__}")
                    # Its savepoint was rolled back: the answerer may remember what no longer exists.
                    answer = self._prepare(session, [])
            return results


def _record_all(session: Session, answer: Answer, jobs: Sequence[_Job]) -> dict[str, Recorded]:
    results, rows = {}, []
    for job in jobs:
        outcome = answer(job.inbound, job.now)
        rows.append(inbox_row(job.inbound, job.now, outcome))
        results[job.inbound.dedupe_key] = Recorded(outcome.reply if outcome else None, True, outcome)
    if rows:
        insert_inbox(session, rows)
    return results


def _record_one(session: Session, answer: Answer, job: _Job) -> Recorded:
    key = job.inbound.dedupe_key
    try:
        with session.begin_nested():
            outcome = answer(job.inbound, job.now)
            insert_inbox(session, [inbox_row(job.inbound, job.now, outcome)])
    except IntegrityError:
        stored = stored_replies(session, [key])
        if key not in stored:
            raise
        return Recorded(stored[key], fresh=False)  # another replica recorded it a moment ago
    return Recorded(outcome.reply if outcome else None, fresh=True, outcome=outcome)


def inbox_row(inbound: Inbound, now: datetime, outcome: Outcome | None) -> dict[str, object]:
    return {
        "dedupe_key": inbound.dedupe_key, "from_user": inbound.user, "msg_type": inbound.get("MsgType"),
        "content": inbound.get("Content") or None, "event_key": inbound.get("EventKey") or None,
        "task_id": inbound.get("TaskId") or None, "response_code": inbound.get("ResponseCode") or None,
        "received_at": now, "raw": inbound.raw, "handled": True, "reply": outcome.reply if outcome else None}


def _settle(future: Future[Recorded], result: Recorded | BaseException) -> None:
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)

"""Claiming due rows under a lease, recording outcomes by attempt, recovering after downtime."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.clock import BEIJING
from bot.store.claims import begin_send, claim_due
from bot.store.db import Store
from bot.store.models import Delivery
from bot.store.outbox import record_outcome, recover_overdue, sync_plan
from bot.store.queries import get_delivery, list_deliveries

T0 = datetime(2025, 1, 27, 9, 30, tzinfo=BEIJING)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def plan(any_store: Store, make, *dues: datetime) -> None:
    sync_plan(any_store, [make(f"n{i}", due) for i, due in enumerate(dues)], T0 - 30 * DAY, T0 + 30 * DAY, T0 - 30 * DAY)


def test_claim_respects_the_due_time(any_store: Store, make) -> None:
    plan(any_store, make, T0, T0 + SECOND)
    assert claim_due(any_store, T0 - SECOND, "w1") == []
    [first] = claim_due(any_store, T0, "w1")
    assert (first.occurrence, first.status, first.attempts, first.worker) == ("n0", "pending", 1, "w1")
    assert first.lease_until == T0 + timedelta(seconds=60)
    assert [r.occurrence for r in claim_due(any_store, T0 + SECOND, "w1")] == ["n1"]


def test_claim_respects_next_attempt_at(any_store: Store, make) -> None:
    plan(any_store, make, T0)
    [row] = claim_due(any_store, T0, "w1")
    retry_at = T0 + timedelta(minutes=5)
    assert record_outcome(any_store, row.id, 1, status="retry", now=T0, error="企业微信繁忙", errcode=-1,
                          next_attempt_at=retry_at)
    assert claim_due(any_store, retry_at - SECOND, "w1") == []
    [again] = claim_due(any_store, retry_at, "w1")
    assert (again.id, again.attempts, again.resent) == (row.id, 2, False)


def test_claim_orders_by_due_time_and_honours_the_limit(any_store: Store, make) -> None:
    plan(any_store, make, T0 - 3 * SECOND, T0 - 1 * SECOND, T0 - 2 * SECOND)
    assert [r.occurrence for r in claim_due(any_store, T0, "w1", limit=2)] == ["n0", "n2"]
    assert [r.occurrence for r in claim_due(any_store, T0, "w1", limit=2)] == ["n1"]


def test_concurrent_claimers_never_share_a_row(any_store: Store, make) -> None:
    sync_plan(any_store, [make(f"n{i}", T0 - i * SECOND) for i in range(120)], T0 - DAY, T0 + DAY, T0 - DAY)
    start = threading.Barrier(3)
    claimed: dict[str, list[int]] = {"w1": [], "w2": [], "w3": []}

    def work(worker: str) -> None:
        start.wait()
        while rows := claim_due(any_store, T0, worker, limit=7):
            claimed[worker].extend(r.id for r in rows)

    threads = [threading.Thread(target=work, args=(w,)) for w in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    ids = [i for worker_ids in claimed.values() for i in worker_ids]
    assert len(ids) == len(set(ids)) == 120


def test_postgresql_claims_skip_rows_locked_by_another_claimer(pg_schema_url: str, make) -> None:
    from bot.store.db import open_store

    with open_store(pg_schema_url) as any_store:
        plan(any_store, make, T0 - 2 * SECOND, T0 - SECOND, T0)
        with any_store.session() as holder:  # another replica, mid-claim, holding the oldest row
            holder.execute(select(Delivery).where(Delivery.occurrence == "n0").with_for_update())
            result: list = []
            thread = threading.Thread(target=lambda: result.extend(claim_due(any_store, T0, "w2")))
            thread.start()
            thread.join(timeout=10)
            assert not thread.is_alive(), "claim_due waited for a locked row instead of skipping it"
        assert [r.occurrence for r in result] == ["n1", "n2"]


def test_expired_lease_is_claimed_again_and_marked_resent_if_its_send_began(any_store: Store, make) -> None:
    plan(any_store, make, T0, T0)
    first, other = claim_due(any_store, T0, "w1", lease_seconds=60)
    assert begin_send(any_store, first, "w1", T0, lease_seconds=60)
    assert claim_due(any_store, T0 + timedelta(seconds=59), "w2") == []
    again = {r.id: r for r in claim_due(any_store, T0 + timedelta(seconds=60), "w2")}
    assert (again[first.id].attempts, again[first.id].worker, again[first.id].resent) == (2, "w2", True)
    assert (again[other.id].attempts, again[other.id].status, again[other.id].resent) == (2, "pending", False)


def test_stale_attempt_cannot_overwrite_a_newer_one(any_store: Store, make) -> None:
    plan(any_store, make, T0)
    [first] = claim_due(any_store, T0, "w1", lease_seconds=60)
    [second] = claim_due(any_store, T0 + timedelta(minutes=2), "w2")
    late = T0 + timedelta(minutes=3)
    assert not record_outcome(any_store, first.id, first.attempts, status="failed", now=late, error="超时")
    assert record_outcome(any_store, second.id, second.attempts, status="sent", now=late, msgid="msg-2",
                          response_code="rc")
    row = get_delivery(any_store, first.id)
    assert (row.status, row.msgid, row.sent_at, row.lease_until, row.last_error) == (
        "sent", "msg-2", late, None, None)
    # Once recorded, the same attempt cannot be recorded twice either.
    assert not record_outcome(any_store, second.id, second.attempts, status="failed", now=late)


def test_record_outcome_refuses_statuses_that_are_not_outcomes(any_store: Store, make) -> None:
    plan(any_store, make, T0)
    [row] = claim_due(any_store, T0, "w1")
    with pytest.raises(ValueError):
        record_outcome(any_store, row.id, 1, status="pending", now=T0)


def test_recover_overdue_on_both_sides_of_the_grace_threshold(any_store: Store, make) -> None:
    now, grace = T0 + DAY, timedelta(hours=2)
    cutoff = now - grace
    plan(any_store, make, cutoff - SECOND, cutoff, now - SECOND, now)
    result = recover_overdue(any_store, now, grace)
    assert [r.occurrence for r in result.missed] == ["n0"]
    assert result.late == 2
    rows = {r.occurrence: r for r in list_deliveries(any_store)}
    assert (rows["n0"].status, rows["n0"].last_error) == ("missed", "服务停止期间已超过补发时限，未发送")
    assert [(rows[n].status, rows[n].late) for n in ("n1", "n2", "n3")] == [
        ("pending", True), ("pending", True), ("pending", False)]
    assert recover_overdue(any_store, now, grace).late == 0


def test_recover_overdue_marks_old_retries_missed(any_store: Store, make) -> None:
    plan(any_store, make, T0)
    [row] = claim_due(any_store, T0, "w1")
    record_outcome(any_store, row.id, 1, status="retry", now=T0, next_attempt_at=T0 + timedelta(minutes=1))
    result = recover_overdue(any_store, T0 + DAY, timedelta(hours=2))
    assert [r.id for r in result.missed] == [row.id]
    assert claim_due(any_store, T0 + DAY, "w1") == []


def test_a_missed_row_whose_last_send_got_no_answer_says_wecom_may_have_it(any_store: Store, make) -> None:
    """A send that timed out may have been delivered: "未发送" would invite a second copy by hand."""
    from bot.wecom.outcomes import TIMED_OUT
    plan(any_store, make, T0, T0 + SECOND)
    timed_out, refused = claim_due(any_store, T0 + SECOND, "w1")
    later = T0 + timedelta(minutes=1)
    record_outcome(any_store, timed_out.id, 1, status="retry", now=T0, error=TIMED_OUT, next_attempt_at=later)
    record_outcome(any_store, refused.id, 1, status="retry", now=T0, error="企业微信系统繁忙（-1）", next_attempt_at=later)
    result = recover_overdue(any_store, T0 + DAY, timedelta(hours=2), unanswered=(TIMED_OUT,))
    reasons = {row.id: row.last_error for row in result.missed}
    assert reasons == {timed_out.id: "服务停止期间已超过补发时限，未再发送；此前一次请求超时，企业微信可能已收到，请先到群聊核实",
                       refused.id: "服务停止期间已超过补发时限，未发送"}

"""A claimed row is 'sending' only from just before its own HTTP call; what a crash leaves behind.

After a crash, only rows marked 'sending' may have reached WeCom; the rest of a claimed batch is
claimed again, not re-sent-marked. An outcome and the alert about it commit together.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.clock import BEIJING
from bot.store.claims import begin_send, claim_due, end_sending_leases
from bot.store.db import Store
from bot.store.outbox import AttemptOutcome, record_outcomes_and_queue, set_status, sync_plan
from bot.store.queries import get_delivery, list_deliveries, next_claimable_at

T0 = datetime(2025, 1, 27, 9, 30, tzinfo=BEIJING)
DAY = timedelta(days=1)
LEASE = timedelta(seconds=60)


def claim_three(any_store: Store, make) -> list:  # type: ignore[no-untyped-def]
    sync_plan(any_store, [make(f"n{i}", T0) for i in range(3)], T0 - DAY, T0 + DAY, T0 - DAY)
    return claim_due(any_store, T0, "w1", lease_seconds=60)


def test_a_claimed_row_keeps_its_status_until_its_own_send_begins(any_store: Store, make) -> None:
    rows = claim_three(any_store, make)
    assert [(r.status, r.attempts, r.lease_until) for r in rows] == [("pending", 1, T0 + LEASE)] * 3
    assert begin_send(any_store, rows[0], "w1", T0 + timedelta(seconds=5), lease_seconds=60)
    statuses = [get_delivery(any_store, r.id).status for r in rows]
    assert statuses == ["sending", "pending", "pending"]
    assert get_delivery(any_store, rows[0].id).lease_until == T0 + timedelta(seconds=65)
    assert not begin_send(any_store, rows[0], "w1", T0, lease_seconds=60), "a send begins once"


def test_a_lost_claim_cannot_begin_a_send(any_store: Store, make) -> None:
    first, second, third = claim_three(any_store, make)
    assert not begin_send(any_store, first, "w2", T0, lease_seconds=60), "another worker's claim"
    assert not begin_send(any_store, second, "w1", T0 + LEASE, lease_seconds=60), "the lease ran out"
    assert set_status(any_store, third.id, "cancelled")
    assert not begin_send(any_store, third, "w1", T0, lease_seconds=60), "cancelled while claimed"
    [again, *_] = claim_due(any_store, T0 + LEASE, "w2")
    assert not begin_send(any_store, second, "w1", T0 + LEASE, lease_seconds=60)
    assert again.attempts == 2


def test_after_a_crash_only_rows_whose_send_began_are_resent(any_store: Store, make) -> None:
    rows = claim_three(any_store, make)
    begin_send(any_store, rows[1], "w1", T0, lease_seconds=60)
    # The process dies here. At start-up, holding the dispatch lock, every lease ends at once.
    restart = T0 + timedelta(seconds=10)
    assert next_claimable_at(any_store) == T0 + LEASE, "a claimed row waits for its lease"
    assert end_sending_leases(any_store, restart) == 3
    assert next_claimable_at(any_store) == restart
    again = {r.id: r for r in claim_due(any_store, restart, "w2")}
    assert [(again[r.id].status, again[r.id].attempts, again[r.id].resent) for r in rows] == [
        ("pending", 2, False), ("retry", 2, True), ("pending", 2, False)]


def test_a_deferred_claimed_row_is_recorded_without_a_send(any_store: Store, make) -> None:
    first, *_ = claim_three(any_store, make)
    later = T0 + timedelta(minutes=1)
    outcome = AttemptOutcome(first.id, first.attempts, "retry", "群机器人每分钟限发 20 条", next_attempt_at=later)
    assert record_outcomes_and_queue(any_store, [outcome], T0, lambda _: []) == ([True], 0)
    row = get_delivery(any_store, first.id)
    assert (row.status, row.lease_until, row.next_attempt_at) == ("retry", None, later)
    assert record_outcomes_and_queue(any_store, [outcome], T0, lambda _: []) == ([False], 0), "recorded once"


def test_an_outcome_and_its_alert_commit_together(any_store: Store, make) -> None:
    first, second, _ = claim_three(any_store, make)
    begin_send(any_store, first, "w1", T0, lease_seconds=60)
    outcomes = [AttemptOutcome(first.id, 1, "unknown", "结果不明"), AttemptOutcome(second.id, 7, "failed", "旧的尝试")]
    seen: list[list[bool]] = []

    def alert(written: list[bool]) -> list:  # type: ignore[type-arg]
        seen.append(written)
        return [make("alert-1", T0)]
    assert record_outcomes_and_queue(any_store, outcomes, T0, alert) == ([True, False], 1)
    assert seen == [[True, False]]
    assert [r.occurrence for r in list_deliveries(any_store) if r.occurrence == "alert-1"] == ["alert-1"]
    assert record_outcomes_and_queue(any_store, outcomes, T0, alert) == ([False, False], 0), "idempotent"

    def broken(written: list[bool]) -> list:  # type: ignore[type-arg]
        raise RuntimeError("crash between the outcome and its alert")
    with pytest.raises(RuntimeError):
        record_outcomes_and_queue(any_store, [AttemptOutcome(second.id, 1, "failed", "失败")], T0, broken)
    assert get_delivery(any_store, second.id).status == "pending", "no outcome without its alert"

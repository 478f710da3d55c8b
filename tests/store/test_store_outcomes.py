"""Recording many outcomes in one transaction: each still guarded by its attempt and 'sending'."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.clock import BEIJING
from bot.store.attempts import attempts_of
from bot.store.claims import claim_due
from bot.store.db import Store
from bot.store.outbox import AttemptOutcome, record_outcomes, sync_plan
from bot.store.queries import get_delivery

T0 = datetime(2025, 1, 27, 9, 30, tzinfo=BEIJING)
DAY = timedelta(days=1)


def claimed(any_store: Store, make, count: int, at: datetime = T0) -> list:  # type: ignore[no-untyped-def]
    sync_plan(any_store, [make(f"n{i}", T0) for i in range(count)], T0 - DAY, T0 + DAY, T0 - DAY)
    return claim_due(any_store, at, "w1", limit=count)


def test_one_transaction_records_each_kind_of_outcome(any_store: Store, make) -> None:
    sent, retry, failed, unknown = claimed(any_store, make, 4)
    later = T0 + timedelta(seconds=5)
    written = record_outcomes(any_store, [
        AttemptOutcome(sent.id, 1, "sent", errcode=0, msgid="m1", response_code="rc1"),
        AttemptOutcome(retry.id, 1, "retry", "企业微信系统繁忙（-1）", -1, next_attempt_at=later + DAY),
        AttemptOutcome(failed.id, 1, "failed", "群机器人已被停用（93004）", 93004),
        AttemptOutcome(unknown.id, 1, "unknown", "请求企业微信超时"),
    ], later)
    assert written == [True, True, True, True]
    rows = {row.id: get_delivery(any_store, row.id) for row in (sent, retry, failed, unknown)}
    assert (rows[sent.id].status, rows[sent.id].msgid, rows[sent.id].response_code, rows[sent.id].sent_at) == (
        "sent", "m1", "rc1", later)
    assert (rows[retry.id].status, rows[retry.id].errcode, rows[retry.id].next_attempt_at) == ("retry", -1, later + DAY)
    assert (rows[failed.id].status, rows[failed.id].last_error) == ("failed", "群机器人已被停用（93004）")
    assert rows[unknown.id].status == "unknown"
    assert all(row.lease_until is None and row.updated_at == later for row in rows.values())
    assert all(rows[i].sent_at is None for i in (retry.id, failed.id, unknown.id))


def test_a_stale_attempt_in_a_batch_is_refused_and_the_rest_written(any_store: Store, make) -> None:
    first, other = claimed(any_store, make, 2)
    [again] = claim_due(any_store, T0 + timedelta(minutes=2), "w2", limit=1)  # first's lease ran out: attempt 2
    assert again.id == first.id
    late = T0 + timedelta(minutes=3)
    written = record_outcomes(any_store, [AttemptOutcome(first.id, 1, "failed", "超时"),
                                      AttemptOutcome(other.id, 1, "sent")], late)
    assert written == [False, True]
    assert (get_delivery(any_store, first.id).status, get_delivery(any_store, first.id).attempts) == ("pending", 2)
    assert get_delivery(any_store, other.id).status == "sent"
    # Recorded once, an attempt cannot be recorded again, in a batch or on its own.
    assert record_outcomes(any_store, [AttemptOutcome(other.id, 1, "failed"), AttemptOutcome(first.id, 2, "sent"),
                                   AttemptOutcome(first.id, 2, "failed")], late) == [False, True, False]
    assert get_delivery(any_store, first.id).status == "sent"


def test_only_a_sent_outcome_sets_sent_at_and_nothing_is_a_no_op(any_store: Store, make) -> None:
    [row] = claimed(any_store, make, 1)
    assert record_outcomes(any_store, [AttemptOutcome(row.id, 1, "unknown")], T0) == [True]
    assert get_delivery(any_store, row.id).sent_at is None
    assert record_outcomes(any_store, [], T0) == []


def test_many_rows_in_one_call(any_store: Store, make) -> None:
    rows = claimed(any_store, make, 1200)  # more than one IN (...) chunk
    written = record_outcomes(any_store, [AttemptOutcome(r.id, r.attempts, "sent") for r in rows], T0)
    assert written == [True] * 1200
    assert {get_delivery(any_store, r.id).status for r in rows[::97]} == {"sent"}


def test_an_outcome_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError):
        AttemptOutcome(1, 1, "pending")


def test_each_attempt_is_kept_with_wecoms_words_and_a_stale_one_adds_nothing(any_store: Store, make) -> None:
    [row] = claimed(any_store, make, 1)
    first_end = T0 + timedelta(seconds=3)
    errmsg = "not allow to access from your ip, hint: [1733], from ip: 1.2.3.4, more info at " \
             "https://open.work.weixin.qq.com/devtool/query?e=60020&access_token=abc"
    assert record_outcomes(any_store, [AttemptOutcome(row.id, 1, "retry", "企业微信系统繁忙（-1）", -1,
                                                      next_attempt_at=T0, errmsg=errmsg)], first_end) == [True]
    [again] = claim_due(any_store, T0 + timedelta(minutes=1), "w1", limit=1)
    [third] = claim_due(any_store, T0 + timedelta(minutes=3), "w2", limit=1)  # the lease ran out: attempt 3
    end = T0 + timedelta(minutes=3, seconds=1)
    assert record_outcomes(any_store, [AttemptOutcome(again.id, 2, "failed", "超时")], end) == [False]
    assert record_outcomes(any_store, [AttemptOutcome(third.id, 3, "sent", errcode=0, errmsg="ok")], end) == [True]
    attempts = attempts_of(any_store, row.id)
    assert [(a.attempt, a.started_at, a.finished_at, a.outcome, a.errcode) for a in attempts] == [
        (1, T0, first_end, "retry", -1), (3, T0 + timedelta(minutes=3), end, "sent", 0)]
    assert attempts[0].errmsg == errmsg.split("?")[0] and attempts[0].explanation == "企业微信系统繁忙（-1）"
    assert (attempts[1].errmsg, attempts[1].explanation) == ("ok", None)


def test_a_deferral_is_recorded_but_is_no_attempt(any_store: Store, make) -> None:
    [row] = claimed(any_store, make, 1)
    deferral = AttemptOutcome(row.id, 1, "retry", "等待群机器人限速窗口", next_attempt_at=T0, attempted=False)
    assert record_outcomes(any_store, [deferral], T0) == [True]
    assert get_delivery(any_store, row.id).status == "retry" and attempts_of(any_store, row.id) == []

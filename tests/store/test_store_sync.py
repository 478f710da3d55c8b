"""sync_plan: the outbox follows the plan without ever duplicating or moving what was sent."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from bot.clock import BEIJING
from bot.store.claims import claim_due
from bot.store.db import Store
from bot.store.outbox import SyncResult, record_outcome, sync_plan
from bot.store.queries import count_deliveries, get_delivery, list_deliveries

T0 = datetime(2025, 1, 27, 9, 30, tzinfo=BEIJING)
WEEK = timedelta(days=7)


def only_row(any_store: Store):
    [row] = list_deliveries(any_store)
    return row


def test_sync_twice_inserts_once(any_store: Store, make) -> None:
    plan = [make("spring", T0 + timedelta(hours=1)), make("spring", T0, target="group-b")]
    assert sync_plan(any_store, plan, T0, T0 + WEEK, T0) == SyncResult(inserted=2, updated=0, cancelled=0)
    assert sync_plan(any_store, plan, T0, T0 + WEEK, T0) == SyncResult(inserted=0, updated=0, cancelled=0)
    assert count_deliveries(any_store) == 2


def test_pending_row_moves_when_the_plan_moves(any_store: Store, make) -> None:
    sync_plan(any_store, [make("meeting", T0 + timedelta(hours=2), target=t) for t in ("a", "b")], T0, T0 + WEEK, T0)
    moved = [make("meeting", T0 + timedelta(hours=5), target=t, text="会议改到下午", meta={"start": "15:00"})
             for t in ("a", "b")]
    assert sync_plan(any_store, moved, T0, T0 + WEEK, T0 + timedelta(hours=1)).updated == 2
    for row in list_deliveries(any_store):
        assert (row.due_at, row.text, row.meta, row.status) == (
            moved[0].due_at, "会议改到下午", {"start": "15:00"}, "pending")


def test_overdue_pending_row_keeps_its_time_but_takes_new_text(any_store: Store, make) -> None:
    due = T0 + timedelta(hours=1)
    sync_plan(any_store, [make("spring", due)], T0, T0 + WEEK, T0)
    later = make("spring", due + timedelta(hours=3), text="新的正文")
    assert sync_plan(any_store, [later], T0, T0 + WEEK, due).updated == 1  # stored due_at == now: not future
    row = only_row(any_store)
    assert (row.due_at, row.text) == (due, "新的正文")


def test_future_pending_row_moves_one_second_before_due(any_store: Store, make) -> None:
    due = T0 + timedelta(hours=1)
    sync_plan(any_store, [make("spring", due)], T0, T0 + WEEK, T0)
    sync_plan(any_store, [make("spring", due + timedelta(hours=3))], T0, T0 + WEEK, due - timedelta(seconds=1))
    assert only_row(any_store).due_at == due + timedelta(hours=3)


def test_sent_row_is_never_moved_or_rewritten(any_store: Store, make) -> None:
    sync_plan(any_store, [make("spring", T0)], T0, T0 + WEEK, T0)
    [claimed] = claim_due(any_store, T0, "w1")
    assert record_outcome(any_store, claimed.id, claimed.attempts, status="sent", now=T0, msgid="m1")
    moved = make("spring", T0 + timedelta(days=1), text="改过的正文")
    assert sync_plan(any_store, [moved], T0, T0 + WEEK, T0 - timedelta(hours=1)) == SyncResult(0, 0, 0)
    row = get_delivery(any_store, claimed.id)
    assert (row.status, row.due_at, row.text) == ("sent", T0, claimed.text)


def test_vanished_pending_row_is_cancelled_only_inside_the_window(any_store: Store, make) -> None:
    inside, before, after = T0 + timedelta(days=1), T0 - timedelta(days=1), T0 + WEEK
    plan = [make("kept", inside), make("dropped", inside), make("before", before), make("after", after)]
    sync_plan(any_store, plan, before, after + timedelta(days=1), before - timedelta(days=1))
    result = sync_plan(any_store, [make("kept", inside)], T0, T0 + WEEK, T0)  # [T0, T0 + WEEK)
    assert result == SyncResult(inserted=0, updated=0, cancelled=1)
    statuses = {row.occurrence: (row.status, row.last_error) for row in list_deliveries(any_store)}
    assert statuses == {
        "kept": ("pending", None), "dropped": ("cancelled", "计划已变更，不再发送"),
        "before": ("pending", None), "after": ("pending", None),
    }


def test_a_plan_older_than_a_row_does_not_cancel_it(any_store: Store, make) -> None:
    """Two replicas: one re-plans at 00:00:01 and adds a reminder its new horizon reaches; the other's
    re-plan, which read the clock at 23:59:58 and commits later, does not know it and must leave it
    (the year benchmark on PostgreSQL saw 134 meeting reminders cancelled this way)."""
    due = T0 + timedelta(days=6)
    sync_plan(any_store, [make("reminder", due)], T0, T0 + WEEK, T0)
    stale = T0 - timedelta(seconds=3)
    assert sync_plan(any_store, [], stale, stale + WEEK, stale).cancelled == 0
    assert only_row(any_store).status == "pending"
    assert sync_plan(any_store, [], T0, T0 + WEEK, T0).cancelled == 1  # a plan as new as the row decides


def test_vanished_rows_that_were_sent_stay_sent(any_store: Store, make) -> None:
    sync_plan(any_store, [make("spring", T0)], T0, T0 + WEEK, T0)
    [claimed] = claim_due(any_store, T0, "w1")
    record_outcome(any_store, claimed.id, 1, status="sent", now=T0)
    assert sync_plan(any_store, [], T0 - WEEK, T0 + WEEK, T0).cancelled == 0
    assert get_delivery(any_store, claimed.id).status == "sent"


def test_fifty_thousand_rows_sync_quickly(any_store: Store, make) -> None:
    plan = [make(f"study-{n}", T0 + timedelta(minutes=n % 5000), target=f"branch-{n % 97}")
            for n in range(50_000)]
    started = time.perf_counter()
    assert sync_plan(any_store, plan, T0, T0 + WEEK, T0).inserted == 50_000
    first = time.perf_counter() - started
    assert sync_plan(any_store, plan, T0, T0 + WEEK, T0) == SyncResult(0, 0, 0)
    second = time.perf_counter() - started - first
    print(f"\n{any_store.dialect}: 50k first sync {first:.1f}s, re-sync {second:.1f}s")
    assert first < 60 and second < 60

"""What the console does with the outbox: skip, cancel, retry, list, count."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.clock import BEIJING
from bot.store.claims import begin_send, claim_due
from bot.store.db import Store
from bot.store.outbox import (
    record_outcome,
    recover_overdue,
    retry_now,
    set_status,
    sync_plan,
    take_response_code,
)
from bot.store.queries import (
    count_deliveries,
    get_delivery,
    iter_delivery_log,
    list_deliveries,
    open_cards,
    status_counts,
)

T0 = datetime(2025, 1, 27, 9, 30, tzinfo=BEIJING)
HOUR = timedelta(hours=1)


def one(any_store: Store, make, status: str) -> int:
    """A row brought into ``status`` the way the service would."""
    sync_plan(any_store, [make(status, T0)], T0 - HOUR, T0 + HOUR, T0 - HOUR)
    [row] = list_deliveries(any_store, status="pending")
    if status in ("sending", "sent", "failed", "unknown", "retry"):
        [claimed] = claim_due(any_store, T0, "w1")
        begin_send(any_store, claimed, "w1", T0, lease_seconds=60)
    if status in ("sent", "failed", "unknown", "retry"):
        record_outcome(any_store, row.id, 1, status=status, now=T0, error="企业微信返回错误")
    if status == "missed":
        recover_overdue(any_store, T0 + 10 * HOUR, HOUR)
    assert get_delivery(any_store, row.id).status == status
    return row.id


@pytest.mark.parametrize(("status", "allowed"), [
    ("pending", True), ("retry", True), ("failed", True), ("missed", True),
    ("sending", False), ("sent", False), ("unknown", False),
])
def test_administrator_skips_only_rows_not_in_flight(any_store: Store, make, status: str, allowed: bool) -> None:
    delivery_id = one(any_store, make, status)
    assert set_status(any_store, delivery_id, "skipped") is allowed
    row = get_delivery(any_store, delivery_id)
    if allowed:
        assert (row.status, row.last_error) == ("skipped", "管理员已跳过")
    else:
        assert row.status == status


def test_administrator_cancels_with_a_reason(any_store: Store, make) -> None:
    delivery_id = one(any_store, make, "pending")
    assert set_status(any_store, delivery_id, "cancelled", error="会议取消")
    assert get_delivery(any_store, delivery_id).last_error == "会议取消"
    with pytest.raises(ValueError):
        set_status(any_store, delivery_id, "sent")


@pytest.mark.parametrize(("status", "allowed"), [
    ("failed", True), ("missed", True), ("unknown", True), ("pending", False), ("sent", False),
])
def test_retry_now(any_store: Store, make, status: str, allowed: bool) -> None:
    delivery_id = one(any_store, make, status)
    now = T0 + 11 * HOUR
    assert retry_now(any_store, delivery_id, now) is allowed
    if allowed:
        [claimed] = claim_due(any_store, now, "w2")
        assert claimed.id == delivery_id
        # Sending an 'unknown' row again is a re-send: WeCom may have the first one.
        assert claimed.resent is (status == "unknown")


def test_get_missing_delivery(any_store: Store) -> None:
    assert get_delivery(any_store, 12345) is None


def test_listing_with_filters_and_pages(any_store: Store, make) -> None:
    plan = [make(f"n{i}", T0 + i * HOUR, target=f"group-{i % 2}", kind="study_prompt" if i % 3 else "holiday_notice",
                 item=f"item-{i % 3}") for i in range(10)]
    sync_plan(any_store, plan, T0, T0 + 24 * HOUR, T0)
    newest_first = [r.occurrence for r in list_deliveries(any_store, limit=4)]
    assert newest_first == ["n9", "n8", "n7", "n6"]
    assert [r.occurrence for r in list_deliveries(any_store, limit=4, offset=8)] == ["n1", "n0"]
    assert [r.occurrence for r in list_deliveries(any_store, order="asc", limit=2, offset=1)] == ["n1", "n2"]
    group0 = {"target": "group-0", "kind": "study_prompt"}
    assert [r.occurrence for r in list_deliveries(any_store, **group0)] == ["n8", "n4", "n2"]
    window = {"since": T0 + 2 * HOUR, "until": T0 + 5 * HOUR}
    assert [r.occurrence for r in list_deliveries(any_store, **window)] == ["n4", "n3", "n2"]
    assert [r.occurrence for r in list_deliveries(any_store, item="item-0")] == ["n9", "n6", "n3", "n0"]
    assert count_deliveries(any_store) == 10
    assert count_deliveries(any_store, **group0) == 3
    assert count_deliveries(any_store, **window) == 3
    assert count_deliveries(any_store, status=["pending", "sent"], item="item-1") == 3
    assert count_deliveries(any_store, status="sent") == 0


def test_status_counts(any_store: Store, make) -> None:
    meeting = {"kind": "meeting_reminder", "rule": "meeting", "meta": {"uid": "m-1", "start": "2025-01-27T10:00"}}
    sync_plan(any_store, [make("weekly", T0, **meeting), make("later", T0 + HOUR, **meeting), make("spring", T0)],
              T0, T0 + 2 * HOUR, T0)
    claimed = claim_due(any_store, T0, "w1")
    for row in claimed:
        record_outcome(any_store, row.id, 1, status="sent", now=T0)
    counts = status_counts(any_store)
    assert (counts["sent"], counts["pending"], counts["missed"]) == (2, 1, 0)
    assert sum(counts.values()) == 3


def test_the_delivery_log_streams_in_due_order_a_chunk_at_a_time(any_store: Store, make) -> None:
    rows = [make(f"m{n}", T0 + n * HOUR, target=f"group-{n % 2}") for n in range(7)]
    sync_plan(any_store, rows, T0 - HOUR, T0 + 10 * HOUR, T0 - HOUR)
    log = list(iter_delivery_log(any_store, chunk=2))
    assert [r.title for r in log] == ["节前廉洁提醒"] * 7
    assert [r.due_at for r in log] == [T0 + n * HOUR for n in range(7)]  # aware, oldest first
    assert [r.target for r in iter_delivery_log(any_store, target="group-1", chunk=2)] == ["group-1"] * 3
    assert list(iter_delivery_log(any_store, status="sent")) == []


def test_open_cards_and_taking_a_response_code_once(any_store: Store, make) -> None:
    sync_plan(any_store, [make("card", T0, item="jsjy-1", target="b1_secretary")], T0 - HOUR, T0 + HOUR, T0 - HOUR)
    [claimed] = claim_due(any_store, T0, "w1")
    record_outcome(any_store, claimed.id, 1, status="sent", now=T0, response_code="RC-1")
    [card] = open_cards(any_store, "jsjy-1", "b1_secretary", T0 - HOUR)
    assert card.response_code == "RC-1"
    assert open_cards(any_store, "jsjy-1", "b1_secretary", T0 + HOUR) == []  # sent before the window
    assert take_response_code(any_store, card.id, "RC-1") and not take_response_code(any_store, card.id, "RC-1")
    assert open_cards(any_store, "jsjy-1", "b1_secretary", T0 - HOUR) == []

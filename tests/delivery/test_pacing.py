"""Per-robot pacing (fake time) and concurrency across robots (real time, measured by the simulator)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import requests
from fakes import (
    APP_SEND,
    ROBOT_SEND,
    FakeMonotonic,
    delivery,
    enqueue,
    make_settings,
    robot_key,
    run_until_settled,
)

from bot.clock import FakeClock
from bot.delivery.dispatcher import DISPATCH_LOCK
from bot.delivery.pacing import LEASE_RAN_OUT, MEMBER_DEFERRED
from bot.delivery.ratelimit import MemberQuota, SlidingWindowLimiter, robot_keys, seed_windows
from bot.simulator import Simulator
from bot.store.db import Store, try_leader_lock
from bot.store.queries import list_deliveries

MakeDispatcher = Callable[..., Any]


def limiter(mono: FakeMonotonic, limit: int = 20, window: float = 60.0) -> SlidingWindowLimiter:
    return SlidingWindowLimiter(limit, window, mono, mono.sleep)


def test_the_twenty_first_send_waits_until_the_first_leaves_the_window(mono: FakeMonotonic) -> None:
    pacer = limiter(mono)
    start = mono()
    for _ in range(20):
        assert pacer.acquire("k") == 0
        pacer.record("k")
        mono.sleep(1)
    assert pacer.wait_time("k") == pytest.approx(40)  # 20 s passed; the first send leaves at 60 s
    mono.sleep(39.999)
    assert pacer.wait_time("k") > 0
    mono.sleep(0.001)
    assert pacer.wait_time("k") == 0
    assert mono() - start == pytest.approx(60)
    assert pacer.wait_time("other") == 0


def test_schedule_projects_the_queue_a_window_at_a_time(mono: FakeMonotonic) -> None:
    starts = limiter(mono, limit=2, window=10).schedule("k", 5)
    assert [s - mono() for s in starts] == pytest.approx([0, 0, 10, 10, 20])


def test_schedule_counts_each_send_from_its_projected_answer(mono: FakeMonotonic) -> None:
    starts = limiter(mono, limit=2, window=10).schedule("k", 5, duration=1)
    assert [s - mono() for s in starts] == pytest.approx([0, 1, 11, 12, 22])


def test_acquire_waits_only_as_long_as_allowed(mono: FakeMonotonic) -> None:
    pacer = limiter(mono, limit=1, window=5)
    pacer.record("k")
    start = mono()
    assert pacer.acquire("k", at_most=4) is None
    assert mono() == start  # it did not sleep at all
    assert pacer.acquire("k", at_most=5) == pytest.approx(5)


def test_acquire_sleeps_and_block_holds_a_robot_back(mono: FakeMonotonic) -> None:
    pacer = limiter(mono, limit=1, window=5)
    pacer.record("k")
    assert pacer.acquire("k") == pytest.approx(5)
    pacer.block("k", 30)
    assert pacer.wait_time("k") == pytest.approx(30)


def test_a_restart_is_seeded_from_the_outbox(store: Store, sim: Simulator, clock: FakeClock, mono: FakeMonotonic,
                                             make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    start = clock.now()
    enqueue(store, [delivery("g1", settings, start, name=f"m{i}") for i in range(20)], start)
    assert make_dispatcher(settings).dispatch_due().sent == 20
    clock.advance(10)
    fresh = limiter(mono)
    assert seed_windows(store, clock.now(), [(fresh, robot_keys)], settings.all_targets()) == 20
    assert fresh.wait_time(robot_key(1)) == pytest.approx(50)
    enqueue(store, [delivery("g1", settings, clock.now(), name=f"late{i}") for i in range(5)], clock.now())
    run_until_settled(make_dispatcher(settings), clock)  # a new dispatcher: a restarted process
    answers = [r.answer["errcode"] for r in sim.requests(ROBOT_SEND)]
    assert answers == [0] * 25
    assert sim.requests(ROBOT_SEND)[20].at - start.timestamp() >= 60


@pytest.mark.parametrize("count", [21, 45], ids=["just-over", "over-two-windows"])
def test_many_messages_to_one_robot_are_paced_in_order_without_45009(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher, count: int) -> None:
    settings = make_settings(sim.url, max_attempts=1)  # deferral is not a failed attempt
    now = clock.now()
    enqueue(store, [delivery("g4", settings, now, name=f"m{i:02d}") for i in range(count)], now)
    run_until_settled(make_dispatcher(settings), clock)
    recorded = sim.requests(ROBOT_SEND)
    assert [r.answer["errcode"] for r in recorded] == [0] * count
    times = [r.at for r in recorded]
    assert all(later - earlier >= 60 for earlier, later in zip(times, times[20:], strict=False))
    assert times[-1] - times[0] < 60 * ((count - 1) // 20) + 5  # and no slower than the limit needs
    contents = [m["text"]["content"] for m in sim.group_messages(robot_key(4))]
    assert contents == [f"m{i:02d}：廉洁过节，严守纪律" for i in range(count)]
    statuses = {row.status for row in list_deliveries(store, limit=1000)}
    assert statuses == {"sent"}


def test_sends_to_different_robots_overlap(store: Store, start_sim: Callable[..., Simulator], clock: FakeClock,
                                           make_dispatcher: MakeDispatcher) -> None:
    import time
    latency = 0.05
    sim = start_sim(robots=50, latency=latency)  # real time: the simulator sleeps for real
    settings = make_settings(sim.url, robots=50)
    enqueue(store, [delivery(f"g{i}", settings, clock.now()) for i in range(50)], clock.now())
    dispatcher = make_dispatcher(settings, sleep=time.sleep, monotonic=time.monotonic, max_workers=32)
    assert dispatcher.dispatch_due().sent == 50
    # Each request ends at `at` and took at least `latency`: count the ones in flight together.
    ends = sorted(r.at for r in sim.requests(ROBOT_SEND))
    most_in_flight = max(sum(1 for other in ends if end - latency < other <= end) for end in ends)
    assert most_in_flight >= 8  # one at a time would never exceed 1


def slow_answers(mono: FakeMonotonic, seconds: float) -> requests.Session:
    """A session whose answers come ``seconds`` of fake time after the simulator counted the send."""
    session = requests.Session()
    session.hooks["response"].append(lambda response, *args, **kwargs: mono.sleep(seconds))
    return session


def test_each_window_goes_out_in_one_pass_at_its_slot(store: Store, start_sim: Callable[..., Simulator],
                                                      mono: FakeMonotonic, clock: FakeClock,
                                                      make_dispatcher: MakeDispatcher) -> None:
    # The minute scaled down to 3 s on both sides, as in bench/fanout.py: a window's 20 sends take
    # longer than wait_horizon (0.1 s), so the lane must wait in place through the window.
    sim = start_sim(mono, minute_seconds=3)
    settings = make_settings(sim.url)
    now = clock.now()
    enqueue(store, [delivery("g5", settings, now, name=f"m{i:02d}") for i in range(45)], now)
    # A claim of 32 rows (more than one window); each send takes 30 ms until its answer.
    dispatcher = make_dispatcher(settings, max_workers=16, window_seconds=3, session=slow_answers(mono, 0.03))
    sent = []
    for _ in range(10):
        sent.append(dispatcher.dispatch_due().sent)
        due = dispatcher.next_due_at()
        if due is None:
            break
        clock.set(max(due, clock.now()))
    assert sent == [20, 20, 5]  # no pass claims rows only to put them back
    times = [r.at for r in sim.requests(ROBOT_SEND)]
    # A window after the oldest answer, not after its send: one send's 30 ms later, and not more.
    assert times[20] - times[0] == pytest.approx(3.03) and times[40] - times[20] == pytest.approx(3.03)
    assert [r.answer["errcode"] for r in sim.requests(ROBOT_SEND)] == [0] * 45
    assert [m["text"]["content"] for m in sim.group_messages(robot_key(5))] == [
        f"m{i:02d}：廉洁过节，严守纪律" for i in range(45)]


def test_deferred_rows_come_back_just_before_the_slot_their_robots_answers_give(
        store: Store, sim: Simulator, clock: FakeClock, mono: FakeMonotonic, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    dispatcher = make_dispatcher(settings)
    dispatcher.pacer.limiter.seed(robot_key(6), [mono() - 50 + i for i in range(20)])  # answered 50 … 31 s ago
    start = clock.now()
    enqueue(store, [delivery("g6", settings, start, name=f"m{i}") for i in range(3)], start)
    assert dispatcher.dispatch_due().deferred == 3
    assert sim.requests(ROBOT_SEND) == []
    slot = start + timedelta(seconds=10)  # the oldest answer leaves the window
    rows = list_deliveries(store, limit=10, order="asc")
    assert [row.next_attempt_at for row in rows] == [slot - timedelta(seconds=dispatcher.pacer.lead)] * 3
    clock.set(rows[0].next_attempt_at)
    assert dispatcher.dispatch_due().sent == 3  # one pass: the lane waits in place for each slot
    assert [r.at - start.timestamp() for r in sim.requests(ROBOT_SEND)] == pytest.approx([10, 11, 12])


def test_a_row_is_not_sent_when_its_lease_would_run_out_while_it_waits(
        store: Store, sim: Simulator, clock: FakeClock, mono: FakeMonotonic, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)  # request timeout 2 s: a lease of 68 s, of which 8 s for the send
    dispatcher = make_dispatcher(settings, window_seconds=3600)  # waits in place of up to 120 s
    dispatcher.pacer.limiter.seed(robot_key(7), [mono() - 3600 + 90] * 20)  # the window frees in 90 s
    start = clock.now()
    enqueue(store, [delivery("g7", settings, start)], start)
    assert dispatcher.dispatch_due().deferred == 1
    assert sim.requests(ROBOT_SEND) == []  # 90 s of waiting would leave too little of the lease
    [row] = list_deliveries(store, limit=10)
    assert row.last_error == LEASE_RAN_OUT
    assert row.next_attempt_at == start + timedelta(seconds=90 - dispatcher.pacer.lead)
    run_until_settled(dispatcher, clock)
    [request] = sim.requests(ROBOT_SEND)
    assert request.at - start.timestamp() == pytest.approx(90)


def test_a_retry_keeps_the_robots_order_past_rows_deferred_before_it(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    now = clock.now()
    enqueue(store, [delivery("g8", settings, now, name=f"m{i:02d}") for i in range(25)], now)
    sim.inject(ROBOT_SEND, http_status=500, after=3)
    # One claim takes all 25: m20… are deferred to the next window before m03 fails, and its retry
    # comes after that window opens.
    dispatcher = make_dispatcher(settings, max_workers=16, backoff=(120.0, 120.0), rng=random.Random(1))
    run_until_settled(dispatcher, clock)
    retried = [r for r in sim.requests(ROBOT_SEND) if r.answer and r.answer.get("errcode") == 0][3]
    assert retried.at - now.timestamp() > 60
    assert [m["text"]["content"] for m in sim.group_messages(robot_key(8))] == [
        f"m{i:02d}：廉洁过节，严守纪律" for i in range(25)]
    assert {row.status for row in list_deliveries(store, limit=100)} == {"sent"}
    assert all(r.answer is None or r.answer["errcode"] == 0 for r in sim.requests(ROBOT_SEND))


def test_member_quota_reserves_for_every_member_and_counts_from_the_latest_arrival(mono: FakeMonotonic) -> None:
    quota = MemberQuota(60, mono, per_minute=3, per_hour=5)
    for _ in range(3):
        assert quota.reserve(["a", "b"], in_flight=2) == 0
    assert quota.reserve(["c"], in_flight=2) == 0           # another member is not held back
    assert quota.reserve(["a"], in_flight=2) == pytest.approx(62)  # counted from start + timeout
    assert quota.reserve(["b", "c"], in_flight=2) == pytest.approx(62)  # one member over holds the message
    mono.sleep(62)
    assert quota.reserve(["a"], in_flight=2) == 0
    assert quota.reserve(["a"], in_flight=2) == 0
    mono.sleep(62)
    assert quota.reserve(["a"], in_flight=2) == pytest.approx(2 + 3600 - 124)  # the hour's five are used up


def test_app_messages_to_one_member_are_paced_so_wecom_drops_none(
        store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url, max_attempts=1)  # a deferral is not a failed attempt
    start = clock.now()
    enqueue(store, [delivery("office", settings, start, name=f"m{i:02d}") for i in range(40)], start)
    run_until_settled(make_dispatcher(settings), clock)
    assert sim.dropped == []
    sends = sim.requests(APP_SEND)
    assert [r.answer["errcode"] for r in sends] == [0] * 40
    times = sorted(r.at for r in sends)
    assert all(later - earlier >= 60 for earlier, later in zip(times, times[30:], strict=False))
    assert times[-1] - start.timestamp() < 60 + 2 * 2 + 5  # one window, counted from start + timeout
    for user in ("zhangwei", "lina"):
        assert sorted(m["text"]["content"] for m in sim.user_messages(user)) == [
            f"m{i:02d}：廉洁过节，严守纪律" for i in range(40)]
    assert {row.status for row in list_deliveries(store, limit=100)} == {"sent"}


def test_a_restart_keeps_a_members_quota(store: Store, sim: Simulator, clock: FakeClock,
                                         make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    start = clock.now()
    enqueue(store, [delivery("admin", settings, start, name=f"m{i:02d}") for i in range(30)], start)
    assert make_dispatcher(settings).dispatch_due().sent == 30
    clock.advance(20)
    enqueue(store, [delivery("admin", settings, clock.now(), name="late")], clock.now())
    report = make_dispatcher(settings).dispatch_due()  # a new dispatcher: a restarted process
    assert (report.sent, report.deferred) == (0, 1)
    [row] = list_deliveries(store, status="retry", limit=10)
    assert row.last_error == MEMBER_DEFERRED and row.attempts == 1
    run_until_settled(make_dispatcher(settings), clock)
    assert sim.dropped == []
    assert len(sim.user_messages("admin1")) == 31


def test_two_processes_share_one_robots_window_through_the_database(
        any_store: Store, sim: Simulator, clock: FakeClock, make_dispatcher: MakeDispatcher) -> None:
    """Two dispatchers on one database (two replicas, or `run` and `send`), each made before the
    other sent anything: the second learns the first's sends at its pass and keeps the window."""
    settings = make_settings(sim.url)
    first, second = make_dispatcher(settings, on=any_store), make_dispatcher(settings, on=any_store)
    start = clock.now()
    enqueue(any_store, [delivery("g2", settings, start, name=f"a{i:02d}") for i in range(20)], start)
    assert first.dispatch_due().sent == 20
    clock.advance(10)
    enqueue(any_store, [delivery("g2", settings, clock.now(), name=f"b{i}") for i in range(3)], clock.now())
    report = second.dispatch_due()
    assert (report.sent, report.deferred) == (0, 3)  # it waits for the first's window, not a 45009
    for _ in range(50):
        due = second.next_due_at()
        if due is None:
            break
        clock.set(max(due, clock.now()))
        (first if clock.now().second % 2 else second).dispatch_due()  # whichever comes first
    answers = [r.answer["errcode"] for r in sim.requests(ROBOT_SEND)]
    assert answers == [0] * 23
    times = sorted(r.at for r in sim.requests(ROBOT_SEND))
    assert times[20] - times[0] >= 60


def test_a_pass_waits_while_another_process_dispatches(store: Store, sim: Simulator, clock: FakeClock,
                                                      make_dispatcher: MakeDispatcher) -> None:
    settings = make_settings(sim.url)
    enqueue(store, [delivery("g3", settings, clock.now())], clock.now())
    dispatcher = make_dispatcher(settings)
    with try_leader_lock(store, DISPATCH_LOCK) as held:  # another process in the middle of its pass
        assert held
        report = dispatcher.dispatch_due()
    assert report.busy_elsewhere and report.sent == 0 and sim.requests(ROBOT_SEND) == []
    assert dispatcher.dispatch_due().sent == 1

"""Per-robot pacing (fake time) and concurrency across robots (real time, measured by the simulator)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from delivery_fakes import (
    ROBOT_SEND,
    FakeMonotonic,
    delivery,
    enqueue,
    make_settings,
    robot_key,
    run_until_settled,
)

from bot.clock import FakeClock
from bot.delivery.ratelimit import SlidingWindowLimiter, seed_from_store
from bot.simulator import Simulator
from bot.store.db import Store
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
    assert seed_from_store(fresh, store, clock.now()) == 20
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

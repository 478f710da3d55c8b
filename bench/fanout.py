"""Fan-out benchmark against the simulator with 50 ms latency; prints figures, asserts nothing.

1. One message to 1,000 robots: our dispatcher (SQLite outbox, thread pool) against the lower
   bound (one latency) and against apprise's WeCom bot plugin sending the same messages.
2. 200 messages to one robot at 20 per "minute", the minute scaled down to --minute seconds on
   both sides alike (simulator window, our limiter, apprise's throttle): our time against the
   bound, and the number of 45009 answers each side got.

    python -m bench.fanout [--robots 1000] [--messages 200] [--minute 3] [--workers 64] [--skip-apprise]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.clock import SystemClock
from bot.config import Settings
from bot.delivery.dispatcher import Dispatcher
from bot.plan import recipients_of
from bot.simulator import Simulator, SimulatorSettings
from bot.store.db import Store, open_store
from bot.store.outbox import NewDelivery, count_deliveries, sync_plan

ROOT = Path(__file__).resolve().parents[1]
LATENCY = 0.05
TEXT = "【节前廉洁提醒】春节将至，请严守中央八项规定精神，廉洁过节。"


def robot_key(n: int) -> str:
    return f"6a1f0c2e-0b1d-4c55-9a11-{n:012d}"


def start_simulator(robots: int, minute: float) -> Simulator:
    settings = SimulatorSettings(
        corp_id="wwbench", secret="s", agent_id=1, callback_token="t", encoding_aes_key="a" * 43,
        callback_url=None, robots={robot_key(i): f"群{i}" for i in range(robots)}, users={},
        latency=LATENCY, minute_seconds=minute)
    simulator = Simulator(settings)
    simulator.start()
    return simulator


class SimulatorProcess:
    """The simulator in a child process, so that it does not share our interpreter's lock and CPU."""

    def __init__(self, robots: int, minute: float) -> None:
        command = [sys.executable, "-m", "bench.fanout", "--serve-simulator", str(robots), str(minute)]
        self.process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self._read()["url"]

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        return json.loads(self.process.stdout.readline())

    def counts(self) -> dict[str, int]:
        assert self.process.stdin is not None
        self.process.stdin.write("counts\n")
        self.process.stdin.flush()
        return self._read()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def serve_simulator(robots: int, minute: float) -> None:
    """The child's side: print the URL, then answer 'counts' on stdin until it closes."""
    simulator = start_simulator(robots, minute)
    print(json.dumps({"url": simulator.url}), flush=True)
    for _ in sys.stdin:
        answers = [(r.answer or {}).get("errcode") for r in simulator.requests("/cgi-bin/webhook/send")]
        delivered = sum(len(simulator.group_messages(robot_key(i))) for i in range(robots))
        print(json.dumps({"45009": answers.count(45009), "requests": len(answers), "delivered": delivered}),
              flush=True)


def bench_settings(api_base: str, robots: int) -> Settings:
    return Settings.model_validate({
        "targets": {f"g{i}": {"type": "robot", "key": robot_key(i)} for i in range(robots)},
        "delivery": {"request_timeout": timedelta(seconds=10)},
        "paths": {"messages": str(ROOT / "messages")},
        "wecom": {"api_base": api_base, "corp_id": "wwbench", "agent_id": 1, "secret": "s",
                  "callback": {"token": "t", "encoding_aes_key": "a" * 43}},
    })


def enqueue(store: Store, settings: Settings, targets: list[str], count: int) -> None:
    now = SystemClock().now()
    targets_by_name = settings.all_targets()
    rows = [NewDelivery(key=f"bench|m{m}|{t}", rule="bench", kind="holiday_notice", occurrence=f"m{m}", item=None,
                        target=t, recipients=recipients_of(targets_by_name[t]), msgtype="text", title="节前廉洁提醒",
                        text=f"{TEXT}（{m}）", card=None, due_at=now, reason="bench")
            for m in range(count) for t in targets]
    sync_plan(store, rows, now, now, now)


def run_ours(simulator: SimulatorProcess, robots: int, messages: int, minute: float, workers: int) -> float:
    """Seconds until every message is recorded sent, dispatch passes woken at next_due_at."""
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{folder}/bench.sqlite3")
        settings = bench_settings(simulator.url, robots)
        enqueue(store, settings, [f"g{i}" for i in range(robots)], messages)
        dispatcher = Dispatcher(store, settings, SystemClock(), max_workers=workers, window_seconds=minute)
        total = robots * messages
        started = time.perf_counter()
        try:
            while count_deliveries(store, status="sent") < total:
                dispatcher.dispatch_due()
                wait_for_next(dispatcher)
            return time.perf_counter() - started
        finally:
            dispatcher.close()
            store.close()


def wait_for_next(dispatcher: Dispatcher) -> None:
    due = dispatcher.next_due_at()
    if due is not None:
        time.sleep(max(0.0, (due - dispatcher.clock.now()).total_seconds()))


def run_apprise(simulator: SimulatorProcess, robots: int, messages: int, minute: float) -> float:
    import apprise
    from apprise.plugins.wecombot import NotifyWeComBot

    NotifyWeComBot.notify_url = simulator.url + "/cgi-bin/webhook/send?key={key}"
    NotifyWeComBot.request_rate_per_sec = NotifyWeComBot.request_rate_per_sec * minute / 60
    notifier = apprise.Apprise()
    for i in range(robots):
        notifier.add(f"wecombot://{robot_key(i)}")
    started = time.perf_counter()
    for m in range(messages):
        notifier.notify(body=f"{TEXT}（{m}）")
    return time.perf_counter() - started


def measure(label: str, robots: int, messages: int, minute: float, bound: float, workers: int,
            with_apprise: bool) -> None:
    ours_sim = SimulatorProcess(robots, minute)
    try:
        ours = run_ours(ours_sim, robots, messages, minute, workers)
        counts = ours_sim.counts()
    finally:
        ours_sim.stop()
    print(f"\n{label}")
    print(f"  lower bound          {bound:8.2f} s")
    print(f"  wecom-reminder       {ours:8.2f} s  ({ours / bound:5.3f} × bound; 45009: {counts['45009']}, "
          f"delivered {counts['delivered']})")
    if not with_apprise:
        return
    peer_sim = SimulatorProcess(robots, minute)
    try:
        peer = run_apprise(peer_sim, robots, messages, minute)
        counts = peer_sim.counts()
    finally:
        peer_sim.stop()
    print(f"  apprise wecombot     {peer:8.2f} s  ({peer / ours:5.1f} × ours; 45009: {counts['45009']}, "
          f"delivered {counts['delivered']})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robots", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--minute", type=float, default=3.0, help="the scaled-down minute, seconds")
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--skip-apprise", action="store_true")
    parser.add_argument("--serve-simulator", nargs=2, metavar=("ROBOTS", "MINUTE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_simulator:
        return serve_simulator(int(args.serve_simulator[0]), float(args.serve_simulator[1]))
    logging.basicConfig(level=logging.WARNING)
    print(f"simulator latency {LATENCY * 1000:.0f} ms; 20 messages per robot per {args.minute:g} s 'minute'")
    measure(f"1 message → {args.robots} robots", args.robots, 1, args.minute, LATENCY, args.workers,
            not args.skip_apprise)
    windows = math.ceil(args.messages / 20) - 1
    # One robot is sent to in order: each window's 20 sends follow one another, each one latency long.
    bound = windows * args.minute + 20 * LATENCY
    print(f"\n(rate alone would allow {windows * args.minute + LATENCY:.2f} s; in-order sends add 19 latencies)")
    measure(f"{args.messages} messages → 1 robot", 1, args.messages, args.minute, bound, args.workers,
            not args.skip_apprise)


if __name__ == "__main__":
    main()

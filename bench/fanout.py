"""Fan-out benchmark against the simulator with 50 ms latency; prints figures, asserts nothing.

1. One message to 1,000 robots: our dispatcher (SQLite outbox, thread pool) against the lower
   bound (one latency) and against apprise's WeCom bot plugin sending the same messages; sends per
   second, our CPU per send, and whether "20 × apprise" is reachable with it.
2. 200 messages to one robot at 20 per "minute", the minute scaled down to --minute seconds on
   both sides alike (simulator window, our limiter, apprise's throttle): our time against the
   bound and the safe bound (explained in the output), messages delivered and lost, and the
   number of 45009 answers each side got.

    python -m bench.fanout [--robots 1000] [--messages 200] [--minute 6] [--workers 64] [--skip-apprise]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.clock import SystemClock
from bot.config import Settings
from bot.delivery.dispatcher import Dispatcher
from bot.occurrence import PlannedMessage
from bot.simulator import Simulator, SimulatorSettings
from bot.store.db import Store, open_store
from bot.store.outbox import enqueue as enqueue_messages
from bot.store.queries import count_deliveries

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
        print(json.dumps({"45009": answers.count(45009), "requests": len(answers), "delivered": delivered,
                          "cpu": time.process_time()}), flush=True)


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
    rows = [PlannedMessage(key=f"bench|m{m}|{t}", rule="bench", kind="holiday_notice", occurrence=f"m{m}",
                           target=t, msgtype="text", title="节前廉洁提醒", text=f"{TEXT}（{m}）", due_at=now,
                           reason="bench")
            for m in range(count) for t in targets]
    enqueue_messages(store, rows, now)


def run_ours(simulator: SimulatorProcess, robots: int, messages: int, minute: float,
             workers: int) -> tuple[float, float]:
    """Seconds until every message is recorded sent, dispatch passes woken at next_due_at; and CPU seconds."""
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{folder}/bench.sqlite3")
        settings = bench_settings(simulator.url, robots)
        enqueue(store, settings, [f"g{i}" for i in range(robots)], messages)
        dispatcher = Dispatcher(store, settings, SystemClock(), max_workers=workers, window_seconds=minute)
        total = robots * messages
        started, cpu = time.perf_counter(), time.process_time()
        try:
            while count_deliveries(store, status="sent") < total:
                dispatcher.dispatch_due()
                wait_for_next(dispatcher)
            return time.perf_counter() - started, time.process_time() - cpu
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


@dataclass(frozen=True)
class Run:
    seconds: float
    requests: int
    delivered: int
    errors_45009: int
    cpu: float | None = None
    simulator_cpu: float | None = None


def measure(robots: int, messages: int, minute: float, workers: int,
            with_apprise: bool) -> tuple[Run, Run | None]:
    """Our run and apprise's, each against a fresh simulator process."""
    sim = SimulatorProcess(robots, minute)
    try:
        simulator_cpu = sim.counts()["cpu"]
        seconds, cpu = run_ours(sim, robots, messages, minute, workers)
        counts = sim.counts()
        ours = _run(seconds, counts, cpu, counts["cpu"] - simulator_cpu)
    finally:
        sim.stop()
    if not with_apprise:
        return ours, None
    sim = SimulatorProcess(robots, minute)
    try:
        seconds = run_apprise(sim, robots, messages, minute)
        return ours, _run(seconds, sim.counts())
    finally:
        sim.stop()


def _run(seconds: float, counts: dict[str, int], cpu: float | None = None,
         simulator_cpu: float | None = None) -> Run:
    return Run(seconds, counts["requests"], counts["delivered"], counts["45009"], cpu, simulator_cpu)


def line(label: str, run: Run, total: int, extra: str) -> str:
    lost = f", {total - run.delivered} LOST" if run.delivered < total else ""
    return (f"  {label:<18}{run.seconds:7.2f} s  {extra}; delivered {run.delivered}/{total}{lost}, "
            f"45009 × {run.errors_45009}")


def report_fan_out(robots: int, ours: Run, peer: Run | None) -> None:
    print(f"\n1 message → {robots} robots (lower bound: one latency, {LATENCY:.2f} s, with unlimited parallelism;"
          f" a sequential sender: {robots * LATENCY:.0f} s)")
    per_send = (ours.cpu or 0) / robots * 1000
    print(line("wecom-reminder", ours, robots, f"{robots / ours.seconds:6.0f} sends/s, {per_send:.1f} ms CPU/send"))
    print(f"  ours is {robots * LATENCY / ours.seconds:.0f} × faster than a sequential sender")
    if peer is None:
        return
    print(line("apprise wecombot", peer, robots, f"{robots / peer.seconds:6.0f} sends/s"))
    ratio, goal = peer.seconds / ours.seconds, peer.seconds / 20
    print(f"  ours is {ratio:.1f} × faster than apprise (goal: 20 ×, i.e. ≤ {goal:.2f} s)")
    if ratio < 20:
        print(f"  apprise sends in parallel, so 20 × means {robots} HTTP answers in {goal:.2f} s. On this machine\n"
              f"  ({os.cpu_count()} cores) the simulator alone spent {ours.simulator_cpu or 0:.2f} s of CPU answering them,"
              f" and our side {ours.cpu or 0:.2f} s sending them.")


def report_one_robot(messages: int, minute: float, ours: Run, peer: Run | None) -> None:
    windows = math.ceil(messages / 20) - 1
    bound = windows * minute + 20 * LATENCY
    safe = bound + windows * LATENCY
    print(f"\n{messages} messages → 1 robot (20 per {minute:g} s 'minute')")
    print(f"  bound             {bound:7.2f} s  = {windows} windows × {minute:g} s + 20 in-order sends × {LATENCY:.2f} s")
    print(f"  safe bound        {safe:7.2f} s  = bound + 1 latency per window: a send may reach WeCom at any\n"
          "                              moment until its answer; only a window counted from the answer is never a 45009")
    print(line("wecom-reminder", ours, messages, f"{ours.seconds / bound:5.3f} × bound, {ours.seconds / safe:5.3f} × safe"))
    excess, real_bound = ours.seconds - bound, windows * 60 + 20 * LATENCY
    print(f"  ours exceeds the bound by {excess:.2f} s ({100 * excess / bound:.1f} %, goal ≤ 2 %); the excess does not grow"
          f" with the minute:\n  against the real minute's bound ({real_bound:.0f} s) it would be"
          f" {100 * excess / real_bound:.2f} %")
    if peer is not None:
        print(line("apprise wecombot", peer, messages, f"{peer.seconds / bound:5.3f} × bound (ignores errcodes)"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robots", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--minute", type=float, default=6.0, help="the scaled-down minute, seconds")
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--skip-apprise", action="store_true")
    parser.add_argument("--serve-simulator", nargs=2, metavar=("ROBOTS", "MINUTE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_simulator:
        return serve_simulator(int(args.serve_simulator[0]), float(args.serve_simulator[1]))
    logging.basicConfig(level=logging.WARNING)
    print(f"simulator latency {LATENCY * 1000:.0f} ms; 20 messages per robot per {args.minute:g} s 'minute'")
    report_fan_out(args.robots, *measure(args.robots, 1, args.minute, args.workers, not args.skip_apprise))
    report_one_robot(args.messages, args.minute,
                     *measure(1, args.messages, args.minute, args.workers, not args.skip_apprise))

if __name__ == "__main__":
    main()

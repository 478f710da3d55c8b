"""A year in minutes, under faults: the real service driven through a year on a moved clock.

`wecom-reminder run` (planning, scheduler, dispatcher, callback, ledger), in its own process,
follows a clock file this benchmark moves (WECOM_REMINDER_TEST_CLOCK_FILE): it jumps to each next
due time and lets the service catch up. The organisation is the shipped project scaled up (see
bench.year_org); the simulator plays WeCom and injects faults at random rates, expires tokens,
and refuses app calls for a whole day with 60020; secretaries reply (bench.year_people). The
service is SIGKILLed at random moments and restarted, sometimes after a downtime longer than the
grace window. With --postgres, two replicas share one database and the one sending is killed.

    python -m bench.year [--postgres [URL]] [--branches 100] [--kills 200] [--report]
"""

from __future__ import annotations

import argparse
import heapq
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
import yaml
from sqlalchemy import make_url

from bench.year_drive import Crashes, Drive
from bench.year_figures import YearFigures, percentile, report, tally
from bench.year_fleet import Fleet, MovedTime, Replica
from bench.year_org import OFFICE, chat_id, secretary, write_project
from bench.year_people import Replies, Secretaries
from bot.clock import BEIJING
from bot.commands.demo import simulator_settings
from bot.config import load_settings
from bot.simulator import Simulator
from bot.simulator.state import FaultRates
from bot.store import open_store

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"  # the run uses a schema of its own, dropped after


@dataclass(frozen=True)
class Options:
    start: datetime
    end: datetime
    branches: int = 100
    kills: int = 200
    postgres: str | None = None
    ambiguous: str = "resend"
    seed: int = 2026
    faults: float = 1.0          # scales every fault rate; 0 for a clean network
    outage_day: date | None = date(2026, 3, 10)
    token_expiries: int = 12
    keep: bool = False


@dataclass
class Outcome:
    figures: YearFigures
    crashes: Crashes
    replies: Replies
    steps: int
    seconds: float
    memory: list[tuple[int, int]]   # per replica: resident kB at the first and the last sample
    restarts: list[int]
    drawn: dict[str, int]
    spent: dict[str, float]         # real seconds per phase of the steps


def fault_rates(scale: float) -> FaultRates:
    return FaultRates(http_5xx=0.01 * scale, timeout=0.004 * scale, busy=0.01 * scale, too_frequent=0.005 * scale,
                      slow=0.02 * scale, timeout_seconds=2.4, slow_seconds=0.4)


def scripted_events(options: Options, rng: random.Random) -> list[tuple[datetime, str]]:
    span = (options.end - options.start).total_seconds()
    events = [(options.start + timedelta(seconds=rng.uniform(0, span)), "expire_tokens")
              for _ in range(options.token_expiries)]
    if options.outage_day and options.start.date() <= options.outage_day < options.end.date():
        day = datetime.combine(options.outage_day, datetime.min.time(), BEIJING)
        events += [(day, "outage_start"), (day + timedelta(days=1), "outage_end")]
    heapq.heapify(events)
    return events


@contextmanager
def database(options: Options, folder: Path) -> Iterator[str]:
    """The service's database URL: a SQLite file, or a PostgreSQL schema of its own, dropped after."""
    if not options.postgres:
        yield f"sqlite:///{folder}/data/year.sqlite3"
        return
    schema = f"year_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(options.postgres, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(options.postgres).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        if options.keep:
            print(f"the PostgreSQL schema {schema} is kept")
        else:
            with psycopg.connect(options.postgres, autocommit=True) as admin:
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def replicas(folder: Path, config: Path, count: int) -> list[Replica]:
    """Replica 0 uses the config as written; each other one the same with its own port."""
    found = [Replica(config, load_settings(config).server.listen, folder / "run-0.log")]
    for index in range(1, count):
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        data["server"]["listen"] = f"127.0.0.1:{_free_port()}"
        path = folder / f"config-{index}.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        found.append(Replica(path, data["server"]["listen"], folder / f"run-{index}.log"))
    return found


def _free_port() -> int:
    from bench.running import free_port
    return free_port()


def create_chats(simulator: Simulator, branches: int) -> None:
    """The app's group chats exist before the year begins (appchat/create, as an installer does)."""
    world = simulator.world
    with world.lock:
        for n in range(1, branches + 1):
            world.chats[chat_id(n)] = {"chatid": chat_id(n), "name": f"第{n}党支部工作群", "owner": secretary(n),
                                       "userlist": [secretary(n), OFFICE]}


def run_year(options: Options, folder: Path) -> Outcome:
    rng = random.Random(options.seed)
    moved = MovedTime(folder / "clock", options.start)
    with database(options, folder) as url:
        config = write_project(folder, options.branches, url, ambiguous=options.ambiguous)
        settings = load_settings(config)
        simulator = Simulator(simulator_settings(settings), clock=moved.epoch, wall_clock=moved.epoch)
        simulator.start("127.0.0.1", int(str(settings.wecom.api_base).rsplit(":", 1)[1]))  # type: ignore[union-attr]
        simulator.set_fault_rates(fault_rates(options.faults), seed=options.seed)
        create_chats(simulator, options.branches)
        fleet = Fleet(replicas(folder, config, 2 if options.postgres else 1), moved.path)
        started = time.monotonic()
        try:
            for index in range(len(fleet.replicas)):
                fleet.start(index)
            for index in range(len(fleet.replicas)):
                fleet.wait_up(index)
            with open_store(url) as store:
                drive = Drive(store, moved, fleet, simulator,
                              Secretaries(simulator, [secretary(n) for n in range(1, options.branches + 1)], rng),
                              rng, options.kills, options.end, settings.delivery.grace,
                              scripted_events(options, rng), options.start)
                fleet.sample_memory()
                drive.trace = (folder / "steps.log").open("w", buffering=1)
                drive.run()
                fleet.sample_memory()
                seconds = time.monotonic() - started
                drawn = dict(simulator.fault_rates.drawn) if simulator.fault_rates else {}
                figures = tally(store, simulator, drive.crashes.in_flight, drive.crashes.in_flight_keys, options.end)
        finally:
            fleet.stop()
            simulator.stop()
    memory = [(r.rss_kb[0], r.rss_kb[-1]) if r.rss_kb else (0, 0) for r in fleet.replicas]
    return Outcome(figures, drive.crashes, drive.secretaries.replies, drive.steps, seconds, memory,
                   [r.started for r in fleet.replicas], drawn, dict(drive.spent))


def print_outcome(options: Options, outcome: Outcome) -> None:
    database_name = "PostgreSQL, 2 replicas" if options.postgres else "SQLite, 1 process"
    crashes, replies, figures = outcome.crashes, outcome.replies, outcome.figures
    print(f"a year ({options.start:%Y-%m-%d} → {options.end:%Y-%m-%d}) of `wecom-reminder run` ({database_name}),"
          f" {options.branches} branches, {3 * options.branches} targets, ambiguous_robot_send: {options.ambiguous}")
    print(f"  {outcome.steps} clock jumps in {outcome.seconds:.0f} s real time;"
          f" {crashes.kills} SIGKILLs ({crashes.downtimes} with downtime, {crashes.beyond_grace} beyond the grace);"
          f" starts per replica {outcome.restarts}")
    print("  real time per phase: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in
                                                 sorted(outcome.spent.items(), key=lambda item: -item[1])))
    print(f"  faults drawn by the simulator: {outcome.drawn}; tokens expired {options.token_expiries} times;"
          f" 60020 all day {options.outage_day}")
    for line in report(figures, options.end):
        print(line)
    print(f"  replies: {replies.sent} typed ({replies.repeated} posted twice by 'WeCom'), {replies.answered} answered,"
          f" {replies.unanswered} unanswered; {replies.clicks} card buttons clicked; inbox rows {figures.inbox}"
          f" (must be {replies.answered + replies.clicks_answered})")
    print(f"  confirmations: ledger {figures.confirmations}, simulator's record {len(replies.confirmed)}")
    for index, (first, last) in enumerate(outcome.memory):
        print(f"  replica {index}: resident memory {first / 1024:.0f} MB at the start, {last / 1024:.0f} MB at the end")
    if crashes.takeovers:
        print(f"  takeover after the sending replica was killed: {len(crashes.takeovers)} times, p50"
              f" {percentile(crashes.takeovers, 0.5):.1f} s, max {max(crashes.takeovers):.1f} s (service clock)")
    if crashes.stuck:
        print(f"  steps not settled within the limit: {crashes.stuck[:5]}")
    if figures.lost_keys:
        print(f"  LOST: {figures.lost_keys[:10]}")


def parse(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", nargs="?", const=DEFAULT_PG, help=f"PostgreSQL URL (default {DEFAULT_PG})")
    parser.add_argument("--branches", type=int, default=100)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--report", action="store_true", help="ambiguous_robot_send: report instead of resend")
    parser.add_argument("--faults", type=float, default=1.0, help="scale of the fault rates (0: none)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database, jumps)")
    args = parser.parse_args(argv)
    start = datetime(2026, 1, 1, tzinfo=BEIJING)
    return Options(start, start + timedelta(days=args.days), args.branches, args.kills, args.postgres,
                   "report" if args.report else "resend", args.seed, args.faults, keep=args.keep)


def main() -> None:
    options = parse()
    if options.keep:
        folder = Path(tempfile.mkdtemp(prefix="wecom-year-"))
        print(f"the project, its logs and the list of clock jumps stay in {folder}")
        print_outcome(options, run_year(options, folder))
        return
    with tempfile.TemporaryDirectory(prefix="wecom-year-") as name:
        print_outcome(options, run_year(options, Path(name)))


if __name__ == "__main__":
    main()

"""Driving the service through the year: jump the clock to the next thing due, let it catch up.

After each jump the benchmark waits (in real time, the service's clock flowing normally) until the
outbox has nothing due left and nothing being sent, watching the database as an operator would.
At random jumps it SIGKILLs the replica that is sending, notes the rows in flight, and restarts
it, now and then after a downtime shorter or longer than the grace window.
"""

from __future__ import annotations

import heapq
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select

from bench.year_figures import channel_of
from bench.year_fleet import Fleet, MovedTime
from bench.year_people import Secretaries
from bot.simulator import Simulator
from bot.simulator.state import Fault
from bot.store.db import Store
from bot.store.models import Delivery

SETTLE_SECONDS = 90      # real seconds a step may take before it is reported stuck
POLL = 0.03
REPLY_BATCH = timedelta(hours=1)


@dataclass
class Crashes:
    kills: int = 0
    downtimes: int = 0
    beyond_grace: int = 0
    in_flight: Counter[str] = field(default_factory=Counter)
    in_flight_keys: set[str] = field(default_factory=set)  # the rows 'sending' at a kill
    takeovers: list[float] = field(default_factory=list)   # seconds of the service's clock
    stuck: list[str] = field(default_factory=list)


@dataclass
class Drive:
    store: Store
    time: MovedTime
    fleet: Fleet
    simulator: Simulator
    secretaries: Secretaries
    rng: random.Random
    kills_wanted: int
    end: datetime
    grace: timedelta
    events: list[tuple[datetime, str]]
    start: datetime
    crashes: Crashes = field(default_factory=Crashes)
    steps: int = 0
    spent: Counter[str] = field(default_factory=Counter)  # real seconds per phase of a step
    trace: Any = None
    _outage: list[Fault] = field(default_factory=list)
    _killed: tuple[datetime, int] | None = None  # the service's time of the last kill of a leader, its pid
    _kills_owed: int = 0  # kills drawn that wait for every replica to listen

    # ---- the database, read as an operator would ---------------------------------------------

    def busy(self, now: datetime) -> tuple[int, list[Any]]:
        """Rows due and not taken yet, and rows being sent."""
        with self.store.session(readonly=True) as session:
            due = session.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.status.in_(("pending", "retry")), Delivery.due_at <= now,
                or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now))) or 0
            sending = list(session.execute(select(Delivery.worker, Delivery.lease_until, Delivery.target, Delivery.key)
                                           .where(Delivery.status == "sending")).all())
        return due, sending

    def next_due(self, now: datetime) -> datetime | None:
        with self.store.session(readonly=True) as session:
            waiting = select(func.min(func.coalesce(Delivery.next_attempt_at, Delivery.due_at))).where(
                Delivery.status.in_(("pending", "retry")))
            found = session.scalar(waiting)
        return found

    # ---- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        while True:
            now = self.time.now()
            target = min(t for t in (self.next_due(now), self.secretaries.next_at(), self._next_event(), self.end)
                         if t is not None)
            if target >= self.end:
                break
            self.time.jump(target)
            self.steps += 1
            if self.trace is not None:
                self.trace.write(f"{time.monotonic():.2f} {now.isoformat()} -> {target.isoformat()}\n")
            self._fire_events()
            self._kills_owed += self.rng.random() < self._kill_chance()
            # Replicas are killed one at a time, as in a rolling failure: a kill drawn while the one
            # killed last is still starting waits until it listens (the year goes on meanwhile), or
            # for it when a second one is drawn.
            if self._kills_owed and (self._kills_owed > 1 or self._all_listening()):
                self._kill_when_all_up()
            self._route_callbacks()
            with self._phase("replies"):
                # Replies of the coming hour are typed together: fewer jumps, the same year.
                self.secretaries.reply_due(self.time.now() + REPLY_BATCH)
            with self._phase("sending"):
                self.settle()
            with self._phase("reading"):
                self.secretaries.read_new_messages()
            if self.steps % 25 == 0:
                self.fleet.sample_memory()
        # Drawn in the last steps, or short of the number wanted: they still happen, and the service catches up.
        self._kills_owed = max(self._kills_owed, self.kills_wanted - self.crashes.kills)
        while self._kills_owed:
            self._kill_when_all_up()
            with self._phase("sending"):
                self.settle()

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self.spent[name] += time.monotonic() - began

    def _next_event(self) -> datetime | None:
        return self.events[0][0] if self.events else None

    def _fire_events(self) -> None:
        now = self.time.now()
        while self.events and self.events[0][0] <= now:
            _, what = heapq.heappop(self.events)
            if what == "expire_tokens":
                self.simulator.expire_tokens()
            elif what.startswith("outage_start"):
                self._outage = [self.simulator.inject(path, errcode=60020, times=-1) for path in OUTAGE_PATHS]
            elif what == "outage_end":
                for path, fault in zip(OUTAGE_PATHS, self._outage, strict=False):
                    self.simulator.withdraw(path, fault)

    def _kill_when_all_up(self) -> None:
        with self._phase("waiting for restarts"):
            self._wait_all_up()
        with self._phase("killing"):
            self._crash()
        self._kills_owed -= 1

    def _kill_chance(self) -> float:
        left = self.kills_wanted - self.crashes.kills - self._kills_owed
        year = (self.end - self.start).total_seconds()
        done = max(1e-6, (self.time.now() - self.start).total_seconds() / year)
        first_guess = 10 * year / 86400  # jumps: about ten a day until the year tells otherwise
        expected_steps_left = max(1.0, self.steps / done * (1 - done)) if done > 0.05 else first_guess
        return min(1.0, left / expected_steps_left)

    def settle(self) -> None:
        """Wait until nothing is due and nothing is in flight; jump over leases of the dead."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            now = self.time.now()
            due, sending = self.busy(now)
            if not due and not sending:
                self._note_takeover()
                return
            self._restart_dead()
            orphaned = [r.lease_until for r in sending if r.lease_until and not self._worker_alive(r.worker)]
            if orphaned and len(orphaned) == len(sending) and not due:
                self.time.jump(min(orphaned) + timedelta(seconds=1))  # wait out a dead worker's lease
            time.sleep(POLL)
        self.crashes.stuck.append(self.time.now().isoformat())

    # ---- crashes -------------------------------------------------------------------------------

    def _crash(self) -> None:
        time.sleep(self.rng.uniform(0.0, 0.3))  # somewhere in the pass the jump set off
        victim = self._sender()
        self.fleet.kill(victim)
        self.crashes.kills += 1
        pid = self.fleet.pid_of(victim)
        _, sending = self.busy(self.time.now())
        killed = [r for r in sending if f":{pid}:" in (r.worker or "")]
        self.crashes.in_flight.update(channel_of(r.target) for r in killed)
        self.crashes.in_flight_keys.update(r.key for r in killed)
        if len(self.fleet.replicas) > 1:
            self._killed = (self.time.now(), pid)
        if len(self.fleet.replicas) == 1 and self.rng.random() < 0.12:
            self._down_for(victim)
        self.fleet.start(victim)
        if len(self.fleet.replicas) == 1:
            self.fleet.wait_up(victim)

    def _down_for(self, victim: int) -> None:
        beyond = self.rng.random() < 0.5
        downtime = self.grace * (self.rng.uniform(1.2, 3) if beyond else self.rng.uniform(0.1, 0.8))
        self.crashes.downtimes += 1
        self.crashes.beyond_grace += beyond
        self.time.jump(self.time.now() + downtime)

    def _sender(self) -> int:
        """The replica that holds the dispatch lock: the one whose rows are in flight or went last."""
        if len(self.fleet.replicas) == 1:
            return 0
        with self.store.session(readonly=True) as session:
            worker = session.scalar(select(Delivery.worker).where(Delivery.worker.is_not(None))
                                    .order_by(Delivery.updated_at.desc()).limit(1))
        for index in range(len(self.fleet.replicas)):
            if worker and f":{self.fleet.pid_of(index)}:" in worker:
                return index
        return self.rng.randrange(len(self.fleet.replicas))

    def _worker_alive(self, worker: str | None) -> bool:
        return any(f":{self.fleet.pid_of(i)}:" in (worker or "") and r.alive
                   for i, r in enumerate(self.fleet.replicas))

    def _note_takeover(self) -> None:
        """After a leader was killed: the service's time until another replica's first send."""
        if self._killed is None:
            return
        killed_at, pid = self._killed
        with self.store.session(readonly=True) as session:
            first = session.scalar(select(func.min(Delivery.sent_at)).where(
                Delivery.sent_at > killed_at, Delivery.worker.not_like(f"%:{pid}:%")))
        if first is not None:
            self.crashes.takeovers.append((first - killed_at).total_seconds())
        self._killed = None

    def _all_listening(self) -> bool:
        return all(self.fleet.listening(replica) for replica in self.fleet.replicas)

    def _wait_all_up(self) -> None:
        """Until every replica answers /healthz: the one restarted after the last kill has finished starting."""
        for index, replica in enumerate(self.fleet.replicas):
            if not replica.alive:
                self.fleet.start(index)
            self.fleet.wait_up(index)

    def _route_callbacks(self) -> None:
        """WeCom calls one URL; in front of replicas a load balancer sends it to one that is up."""
        alive = [r for r in self.fleet.replicas if self.fleet.listening(r)] or self.fleet.replicas
        self.simulator.settings.callback_url = f"http://{alive[0].listen}/wecom/callback"

    def _restart_dead(self) -> None:
        for index, replica in enumerate(self.fleet.replicas):
            if not replica.alive:
                self.fleet.start(index)


OUTAGE_PATHS = ("/cgi-bin/message/send", "/cgi-bin/appchat/send")

"""Delivery tests: the real simulator over loopback HTTP, real SQLite (and PostgreSQL) stores.

Time: ``clock`` (tests/conftest.py) is a FakeClock; ``mono`` reads it as seconds, and ``mono.sleep``
advances it, so the dispatcher's limiter and the simulator's windows share one fake time. Tests
that measure concurrency use real time instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeMonotonic, sim_settings

from bot.clock import FakeClock
from bot.config import Settings
from bot.delivery.dispatcher import Dispatcher
from bot.simulator import Simulator
from bot.store.db import Store, open_store
from bot.wecom import api as wecom


@pytest.fixture
def mono(clock: FakeClock) -> FakeMonotonic:
    return FakeMonotonic(clock)


@pytest.fixture
def start_sim() -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def start(clock: Callable[[], float] | None = None, **overrides: Any) -> Simulator:
        simulator = Simulator(sim_settings(**overrides), clock) if clock else Simulator(sim_settings(**overrides))
        simulator.start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def sim(start_sim: Callable[..., Simulator], mono: FakeMonotonic) -> Simulator:
    """A simulator on the fake clock."""
    return start_sim(mono)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/data/bot.sqlite3"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Store]:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    opened = open_store(url)
    yield opened
    opened.close()


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    opened = open_store(sqlite_url)
    yield opened
    opened.close()


@pytest.fixture
def make_dispatcher(store: Store, clock: FakeClock, mono: FakeMonotonic) -> Iterator[Callable[..., Dispatcher]]:
    made: list[Dispatcher] = []

    def make(settings: Settings, on: Store | None = None, **options: Any) -> Dispatcher:
        options = {"sleep": mono.sleep, "monotonic": mono, "max_workers": 8, **options}
        dispatcher = Dispatcher(on or store, settings, clock, **options)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close()
    wecom._apps.clear()  # app clients hold tokens of a simulator that is gone

"""Delivery tests: the real simulator over loopback HTTP, real SQLite (and PostgreSQL) stores.

Time: ``clock`` (tests/conftest.py) is a FakeClock; ``mono`` reads it as seconds, and ``fake_sleep``
advances it, so the dispatcher's limiter and the simulator's windows share one fake time. Tests
that measure concurrency use real time instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from bot.clock import FakeClock
from bot.config import Settings
from bot.delivery import wecom
from bot.delivery.dispatcher import Dispatcher
from bot.simulator import Simulator, SimulatorSettings
from bot.store.db import Store, open_store
from bot.store.outbox import NewDelivery, sync_plan

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CORP, SECRET, AGENT = "wwtestcorp", "test-secret", 1000002
AES_KEY = "a" * 43
USERS = {"zhangwei": "张伟", "lina": "李娜", "liming": "李明", "admin1": "管理员"}


def robot_key(n: int) -> str:
    return f"6a1f0c2e-0b1d-4c55-9a11-{n:012d}"


class FakeMonotonic:
    """Seconds on the FakeClock: the limiter's and the simulator's clock in fake-time tests."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def __call__(self) -> float:
        return self.clock.now().timestamp()

    def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds)


@pytest.fixture
def mono(clock: FakeClock) -> FakeMonotonic:
    return FakeMonotonic(clock)


def sim_settings(robots: int = 30, **overrides: Any) -> SimulatorSettings:
    fields: dict[str, Any] = dict(
        corp_id=CORP, secret=SECRET, agent_id=AGENT, callback_token="tok", encoding_aes_key=AES_KEY,
        callback_url=None, robots={robot_key(i): f"第{i}群" for i in range(robots)}, users=dict(USERS))
    return SimulatorSettings(**{**fields, **overrides})


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


def make_settings(api_base: str | None, robots: int = 30, admin: str | None = "admin", **delivery: Any) -> Settings:
    targets: dict[str, Any] = {f"g{i}": {"type": "robot", "title": f"第{i}群", "key": robot_key(i)}
                               for i in range(robots)}
    targets["office"] = {"type": "app", "title": "党办", "users": ["zhangwei", "lina"]}
    targets["admin"] = {"type": "app", "title": "管理员", "users": ["admin1"]}
    targets["console"] = {"type": "console", "title": "控制台"}
    data: dict[str, Any] = {
        "targets": targets, "admins": {"target": admin},
        "delivery": {"max_attempts": 6, "request_timeout": timedelta(seconds=2), **delivery},
        "paths": {"messages": str(ROOT / "messages")},
    }
    if api_base:
        data["wecom"] = {"api_base": api_base, "corp_id": CORP, "agent_id": AGENT, "secret": SECRET,
                         "callback": {"token": "tok", "encoding_aes_key": AES_KEY}}
    return Settings.model_validate(data)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/data/bot.sqlite3"


def postgres_problem() -> str | None:
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.Error as error:
        return f"PostgreSQL is unreachable at {PG_URL}: {error}"
    return None


@pytest.fixture
def pg_url() -> Iterator[str]:
    problem = postgres_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    schema = f"test_delivery_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Store]:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("pg_url")
    opened = open_store(url)
    yield opened
    opened.close()


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    opened = open_store(sqlite_url)
    yield opened
    opened.close()


def delivery(target: str, settings: Settings, due_at: datetime, name: str = "spring", **changes: Any) -> NewDelivery:
    from bot.plan import recipients_of
    fields: dict[str, Any] = dict(
        key=f"holiday|{name}|{target}", rule="holiday", kind="holiday_notice", occurrence=name, item=None,
        target=target, recipients=recipients_of(settings.all_targets()[target]), msgtype="text",
        title="节前廉洁提醒", text=f"{name}：廉洁过节，严守纪律", card=None, due_at=due_at, reason="测试")
    return NewDelivery(**{**fields, **changes})


def enqueue(store: Store, rows: list[NewDelivery], now: datetime) -> None:
    sync_plan(store, rows, now, now, now)


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

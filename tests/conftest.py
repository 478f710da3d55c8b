"""The one conftest: a copy of the project's shipped files, a fake clock, stores (a SQLite file;
``any_store`` on SQLite and on PostgreSQL), the simulator, dispatchers, and the console with two
accounts. Builders and fakes are in tests/fakes.py.

PostgreSQL tests each get a fresh schema (dropped afterwards), so they are isolated from each
other and from anyone else using the same database. If PostgreSQL cannot be reached they skip,
unless CI=true, where they fail: CI must run them all.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fakes import (
    ADMIN,
    READER,
    FakeMonotonic,
    ReplanCounter,
    login,
    make_app,
    make_runtime,
    new_delivery,
    sim_settings,
)
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from bot.clock import BEIJING, FakeClock
from bot.config import Settings
from bot.delivery.dispatcher import Dispatcher
from bot.occurrence import PlannedMessage
from bot.runtime import Runtime
from bot.simulator import Simulator
from bot.store.db import Store, open_store
from bot.wecom import api as wecom

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def copy_project(dest: Path) -> Path:
    """config.example.yaml + schedules/ + messages/ in `dest`; returns the config path."""
    shutil.copytree(ROOT / "schedules", dest / "schedules")
    shutil.copytree(ROOT / "messages", dest / "messages")
    config = dest / "config.yaml"
    # Without the demo's 智能机器人: its fixed port (9001) is the demo's, never a test's. Tests of the
    # AI bot add the section back, pointing at a simulator on a free port (fakes.configure_aibot).
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    config.write_text(re.sub(r"(?ms)^aibot:.*?(?=^\S|\Z)", "", text), encoding="utf-8")
    return config


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 5, 11, 8, 0, tzinfo=BEIJING))


@functools.cache
def postgres_problem() -> str | None:
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.Error as error:
        return f"PostgreSQL is unreachable at {PG_URL}: {error}"
    return None


def require_postgres() -> None:
    problem = postgres_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(problem)
    pytest.skip(problem)


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A database URL whose search_path is a schema of its own, dropped after the test."""
    require_postgres()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


# ---- stores, the simulator, dispatchers (the delivery and store tests) -----------------------

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
def store_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    return sqlite_url if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")


@pytest.fixture
def any_store(store_url: str) -> Iterator[Store]:
    """A store on a SQLite file and, in a second run of the test, on PostgreSQL."""
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    """A store on a SQLite file."""
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


@pytest.fixture
def make() -> Callable[..., PlannedMessage]:
    return new_delivery


# ---- the console ----------------------------------------------------------------------------

@pytest.fixture
def runtime(tmp_path: Path, clock: FakeClock) -> Iterator[Runtime]:
    rt = make_runtime(tmp_path, clock)
    rt.on_replan_requested = ReplanCounter()
    yield rt
    rt.close()


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    return make_app(runtime)


@pytest.fixture
def admin(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert login(client, *ADMIN).status_code == 302
    return client


@pytest.fixture
def reader(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert login(client, *READER).status_code == 302
    return client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The console over loopback HTTP for browser tests: a fake clock, hostile names."""
    import threading

    from fakes import SCRIPT, browser_available, hostile, make_app, make_runtime
    from werkzeug.serving import make_server
    browser_available()
    folder = tmp_path_factory.mktemp("browser")
    runtime = make_runtime(folder, FakeClock(datetime(2026, 5, 11, 8, 0, tzinfo=BEIJING)), hostile)
    alert = folder / "messages" / "alert.j2"
    alert.write_text(alert.read_text(encoding="utf-8").replace("title: ", f"title: {SCRIPT}", 1), encoding="utf-8")
    http = make_server("127.0.0.1", 0, make_app(runtime), threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    runtime.close()


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[Any]:
    """A logged-in Chromium tab on the console (its dialogs recorded, so a test can assert none)."""
    from fakes import ARGS, ARTIFACTS, CHROMIUM, log_in_console
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=server,
                                      accept_downloads=True, locale="zh-CN")
        tab = context.new_page()
        tab.dialogs = []
        tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
        log_in_console(tab)
        yield tab
        browser.close()

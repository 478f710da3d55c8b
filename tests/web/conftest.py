"""The console under test: a real Runtime over a temporary copy of the project, a SQLite file,
a fake clock, and two accounts (an administrator and a read-only one)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.clock import BEIJING, FakeClock
from bot.runtime import Runtime
from bot.store.accounts import create_admin

ROOT = Path(__file__).resolve().parents[2]
ADMIN = ("admin", "correct-horse-battery")
READER = ("reader", "reader-password-1")
_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def copy_project_to(dest: Path, edit: Callable[[str], str] | None = None) -> Path:
    import shutil
    shutil.copytree(ROOT / "schedules", dest / "schedules")
    shutil.copytree(ROOT / "messages", dest / "messages")
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    text = text.replace("sqlite:///data/wecom-reminder.db", f"sqlite:///{dest / 'console.db'}")
    config = dest / "config.yaml"
    config.write_text(edit(text) if edit else text, encoding="utf-8")
    return config


def make_runtime(dest: Path, clock: FakeClock, edit: Callable[[str], str] | None = None) -> Runtime:
    runtime = Runtime(copy_project_to(dest, edit), clock)
    create_admin(runtime.store, *ADMIN, "admin")
    create_admin(runtime.store, *READER, "readonly")
    return runtime


def make_app(runtime: Runtime) -> Flask:
    from bot.commands.server import create_app
    return create_app(runtime, testing=True)


class ReplanCounter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 5, 11, 8, 0, tzinfo=BEIJING))


@pytest.fixture
def runtime(tmp_path: Path, clock: FakeClock) -> Iterator[Runtime]:
    rt = make_runtime(tmp_path, clock)
    rt.on_replan_requested = ReplanCounter()
    yield rt
    rt.close()


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    return make_app(runtime)


def csrf_token(client: FlaskClient, path: str = "/admin/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = _TOKEN.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client: FlaskClient, name: str, password: str) -> Any:
    token = csrf_token(client)
    return client.post("/admin/login", data={"name": name, "password": password, "csrf_token": token})


def post(client: FlaskClient, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """A form POST with the session's CSRF token."""
    token = csrf_token(client, "/admin/")
    return client.post(path, data={**(data or {}), "csrf_token": token}, **kwargs)


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

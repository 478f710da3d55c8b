"""Fakes and builders shared by the tests: settings, deliveries, study schedules, a fake monotonic clock."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from bot.clock import BEIJING, FakeClock
from bot.config import Settings
from bot.delivery.dispatcher import Dispatcher
from bot.occurrence import PlannedMessage
from bot.rules.studies import StudySchedule, load_studies
from bot.runtime import Runtime
from bot.simulator import SimulatorSettings
from bot.store import outbox
from bot.store.accounts import create_admin
from bot.store.db import Store

ROOT = Path(__file__).resolve().parents[1]
SIM_CORP, SECRET, AGENT = "wwtestcorp", "test-secret", 1000002
SIM_AES_KEY = "a" * 43
USERS = {"zhangwei": "张伟", "lina": "李娜", "liming": "李明", "admin1": "管理员"}
ROBOT_SEND = "/cgi-bin/webhook/send"
APP_SEND = "/cgi-bin/message/send"


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


def sim_settings(robots: int = 30, **overrides: Any) -> SimulatorSettings:
    fields: dict[str, Any] = dict(
        corp_id=SIM_CORP, secret=SECRET, agent_id=AGENT, callback_token="tok", encoding_aes_key=SIM_AES_KEY,
        callback_url=None, robots={robot_key(i): f"第{i}群" for i in range(robots)}, users=dict(USERS))
    return SimulatorSettings(**{**fields, **overrides})


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
        data["wecom"] = {"api_base": api_base, "corp_id": SIM_CORP, "agent_id": AGENT, "secret": SECRET,
                         "callback": {"token": "tok", "encoding_aes_key": SIM_AES_KEY}}
    return Settings.model_validate(data)


def delivery(target: str, settings: Settings, due_at: datetime, name: str = "spring", **changes: Any) -> PlannedMessage:
    assert target in settings.all_targets()
    fields: dict[str, Any] = dict(
        key=f"holiday|{name}|{target}", rule="holiday", kind="holiday_notice", occurrence=name, item=None,
        target=target, msgtype="text", title="节前廉洁提醒", text=f"{name}：廉洁过节，严守纪律", card=None,
        due_at=due_at, reason="测试")
    return PlannedMessage(**{**fields, **changes})


def enqueue(store: Store, rows: list[PlannedMessage], now: datetime) -> None:
    outbox.enqueue(store, rows, now)


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def run_until_settled(dispatcher: Dispatcher, clock: FakeClock, passes: int = 50) -> None:
    """Dispatch, then move the fake clock to the next due row, until nothing is left to do."""
    for _ in range(passes):
        dispatcher.dispatch_due()
        due = dispatcher.next_due_at()
        if due is None:
            return
        if due > clock.now():
            clock.set(due)
    raise AssertionError("the outbox did not settle")


# ---- the demo organisation and study schedules ------------------------------------------

BRANCHES = ("b1", "b2", "b3")
TOKEN = "wecomReminderToken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CORP = "ww5d1e0c0ffee0demo"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


def demo_settings(**overrides: Any) -> Settings:
    """The demo organisation: b1 第一党支部 (zhangwei), b2 第二党支部 (lina), b3 机关党支部 (wangfang)."""
    data: dict[str, Any] = {
        "organisation": {"name": "示范局机关党委", "branches": [
            {"id": "b1", "name": "第一党支部", "secretary": {"userid": "zhangwei", "name": "张伟"}, "group": "b1_group"},
            {"id": "b2", "name": "第二党支部", "secretary": {"userid": "lina", "name": "李娜"}, "group": "b2_group"},
            {"id": "b3", "name": "机关党支部", "secretary": {"userid": "wangfang", "name": "王芳"}, "group": "b3_group"},
        ]},
        "targets": {f"{b}_group": {"type": "robot", "key": f"key-{b}"} for b in BRANCHES}
        | {"office": {"type": "app", "users": ["liming"]}},
        "admins": {"target": "office"},
        "wecom": {"corp_id": CORP, "agent_id": 1000002, "secret": "s",
                  "callback": {"token": TOKEN, "encoding_aes_key": AES_KEY}},
    }
    data.update(overrides)
    return Settings.model_validate(data)


def write_schedule(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "studies.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def item_yaml(item_id: str, publish: str, deadline: str, *, number: int = 5, audience: str = "all",
              nudges: str = '["截止前2个工作日 09:00", "截止当天 09:00"]') -> str:
    return (f"  - id: {item_id}\n    title: 《警示教育通报》2026年第{number}期\n    number: {number}\n"
            f"    series: 警示教育通报\n    audience: {audience}\n    publish_at: \"{publish}\"\n"
            f"    deadline: \"{deadline}\"\n    nudges: {nudges}\n")


def schedule_of(tmp_path: Path, *items: str) -> StudySchedule:
    return load_studies(write_schedule(tmp_path, "items:\n" + "".join(items)), BRANCHES)


# ---- the console: a runtime over a copy of the project, two accounts ---------------------------

ADMIN = ("admin", "correct-horse-battery")
READER = ("reader", "reader-password-1")
_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def copy_project_to(dest: Path, edit: Callable[[str], str] | None = None) -> Path:
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


def new_delivery(name: str, due_at: datetime, **changes: Any) -> PlannedMessage:
    """A planned holiday notice to one group; ``changes`` override any field."""
    target = changes.pop("target", "group-a")
    fields: dict[str, Any] = {
        "key": f"holiday|{name}|{target}", "rule": "holiday", "kind": "holiday_notice",
        "occurrence": name, "item": None, "target": target,
        "msgtype": "markdown",
        "title": "节前廉洁提醒", "text": f"**{name}** 廉洁过节", "card": None, "due_at": due_at,
        "reason": "春节前一个工作日", "provisional": False, "meta": {"holiday": "春节"},
    }
    return PlannedMessage(**{**fields, **changes})

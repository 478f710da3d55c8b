"""Fakes and builders shared by the delivery tests: settings, deliveries, a fake monotonic clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.clock import FakeClock
from bot.config import Settings
from bot.delivery.dispatcher import Dispatcher
from bot.plan import recipients_of
from bot.simulator import SimulatorSettings
from bot.store.db import Store
from bot.store.outbox import NewDelivery, sync_plan

ROOT = Path(__file__).resolve().parents[2]
CORP, SECRET, AGENT = "wwtestcorp", "test-secret", 1000002
AES_KEY = "a" * 43
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
        corp_id=CORP, secret=SECRET, agent_id=AGENT, callback_token="tok", encoding_aes_key=AES_KEY,
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
        data["wecom"] = {"api_base": api_base, "corp_id": CORP, "agent_id": AGENT, "secret": SECRET,
                         "callback": {"token": "tok", "encoding_aes_key": AES_KEY}}
    return Settings.model_validate(data)


def delivery(target: str, settings: Settings, due_at: datetime, name: str = "spring", **changes: Any) -> NewDelivery:
    fields: dict[str, Any] = dict(
        key=f"holiday|{name}|{target}", rule="holiday", kind="holiday_notice", occurrence=name, item=None,
        target=target, recipients=recipients_of(settings.all_targets()[target]), msgtype="text",
        title="节前廉洁提醒", text=f"{name}：廉洁过节，严守纪律", card=None, due_at=due_at, reason="测试")
    return NewDelivery(**{**fields, **changes})


def enqueue(store: Store, rows: list[NewDelivery], now: datetime) -> None:
    sync_plan(store, rows, now, now, now)


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

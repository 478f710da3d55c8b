"""The clock a benchmark moves from outside `run`, and the refusal to use it against a real WeCom."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import BEIJING, TEST_CLOCK_ENV, FileClock, SystemClock, clock_from_environment
from bot.commands.handlers import refuse_remote_wecom
from bot.config import load_settings
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
NEW_YEAR = datetime(2026, 1, 1, 9, 0, tzinfo=BEIJING)


def test_the_file_names_the_instant_and_time_flows_on_from_it(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    FileClock.write(path, NEW_YEAR)
    clock = FileClock(path)
    assert NEW_YEAR <= clock.now() < NEW_YEAR + timedelta(minutes=1)
    FileClock.write(path, NEW_YEAR + timedelta(days=40))
    assert clock.now() >= NEW_YEAR + timedelta(days=40)
    assert clock.now().tzinfo is not None
    assert clock.monotonic() >= (NEW_YEAR + timedelta(days=40)).timestamp()


def test_watchers_hear_of_each_jump(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    FileClock.write(path, NEW_YEAR)
    clock, moved = FileClock(path), threading.Event()
    clock.watch(moved.set, interval=0.005)
    FileClock.write(path, NEW_YEAR + timedelta(hours=5))
    assert moved.wait(5)


def test_only_the_environment_variable_selects_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TEST_CLOCK_ENV, raising=False)
    assert isinstance(clock_from_environment(), SystemClock)
    FileClock.write(tmp_path / "clock", NEW_YEAR)
    monkeypatch.setenv(TEST_CLOCK_ENV, str(tmp_path / "clock"))
    assert isinstance(clock_from_environment(), FileClock)


def test_run_refuses_a_moved_clock_unless_wecom_is_the_local_simulator(tmp_path: Path) -> None:
    local = load_settings(ROOT / "config.example.yaml")
    refuse_remote_wecom(local)  # the shipped example talks to the simulator on 127.0.0.1
    remote = tmp_path / "config.yaml"
    remote.write_text((ROOT / "config.example.yaml").read_text(encoding="utf-8").replace(
        "http://127.0.0.1:9000", "https://qyapi.weixin.qq.com"), encoding="utf-8")
    with pytest.raises(ConfigError, match="测试时钟"):
        refuse_remote_wecom(load_settings(remote))


def test_the_service_paces_robots_on_the_moved_clock(project: Path, tmp_path: Path) -> None:
    """A robot blocked for a minute is free once the moved clock passed that minute, not a real one:
    on the system's own seconds, a year driven in minutes deferred one row hundreds of times."""
    from bot.runtime import Runtime
    from bot.scheduler import Service

    FileClock.write(tmp_path / "clock", NEW_YEAR)
    service = Service(Runtime(project, FileClock(tmp_path / "clock")))
    limiter = service.dispatcher.pacer.limiter
    limiter.block("robot-key", 60)
    assert limiter.wait_time("robot-key") > 30
    FileClock.write(tmp_path / "clock", NEW_YEAR + timedelta(minutes=2))
    assert limiter.wait_time("robot-key") == 0
    service.dispatcher.close()
    service.runtime.close()

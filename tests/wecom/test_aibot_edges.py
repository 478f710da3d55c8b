"""The long connection's edges: the simulator's rules (kick, unknown chat, quotas, the 5 s card window,
the wrong reply command), a refused subscribe, our per-conversation quota, and the real timings."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from fakes import AIBOT_ID, AIBOT_SECRET, FAST_AIBOT, configure_aibot, wait_for
from sqlalchemy import select
from websockets.sync.client import ClientConnection, connect

from bot.clock import BEIJING, FakeClock
from bot.config import load_settings
from bot.delivery.ratelimit import MemberQuota
from bot.inbox.group_bot import RunningGroupBot
from bot.runtime import Runtime
from bot.simulator.aibot_ws import AibotServer
from bot.store.models import Delivery
from bot.wecom.aibot import Timing
from bot.wecom.aibot_frames import frame

GROUP = "wrcgroupedge"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def sim_clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(sim_clock: Clock) -> Iterator[AibotServer]:
    server = AibotServer({AIBOT_ID: AIBOT_SECRET}, clock=sim_clock, per_minute=3, per_hour=5)
    server.start()
    yield server
    server.stop()


def ask(ws: ClientConnection, message: dict) -> dict:
    ws.send(json.dumps(message))
    while True:
        answer = json.loads(ws.recv(timeout=5))
        if "cmd" not in answer:
            return answer


@contextmanager
def subscribe(sim: AibotServer) -> Iterator[ClientConnection]:
    with connect(sim.url) as ws:
        assert ask(ws, frame("aibot_subscribe", {"bot_id": AIBOT_ID, "secret": AIBOT_SECRET}))["errcode"] == 0
        yield ws


def test_a_second_subscribe_kicks_the_first_with_disconnected_event(sim: AibotServer) -> None:
    with subscribe(sim) as first, subscribe(sim) as second:
        kicked = json.loads(first.recv(timeout=5))
        assert kicked["cmd"] == "aibot_event_callback"
        assert kicked["body"]["event"]["eventtype"] == "disconnected_event"
        assert sim.subscriptions == 2 and sim.connected() and not second.close_code


def test_wrong_credentials_are_refused(sim: AibotServer) -> None:
    with connect(sim.url) as ws:
        assert ask(ws, frame("aibot_subscribe", {"bot_id": AIBOT_ID, "secret": "nope"}))["errcode"] == 853000
        assert ask(ws, frame("aibot_subscribe", {"bot_id": "aibX", "secret": AIBOT_SECRET}))["errcode"] == 93019


def test_pushes_need_a_known_chat_and_respect_the_chat_quota(sim: AibotServer, sim_clock: Clock) -> None:
    with subscribe(sim) as ws:
        push = {"chatid": GROUP, "msgtype": "markdown", "markdown": {"content": "通知"}}
        assert ask(ws, frame("aibot_send_msg", push))["errcode"] == 93006
        sim.mention(GROUP, "zhangwei", "进度")
        ws.recv(timeout=5)  # the callback
        assert [ask(ws, frame("aibot_send_msg", push))["errcode"] for _ in range(4)] == [0, 0, 0, 45009]
        sim_clock.t += 61
        assert [ask(ws, frame("aibot_send_msg", push))["errcode"] for _ in range(3)] == [0, 0, 45009]  # the hour


def test_a_card_click_takes_only_an_update_and_only_within_5_s(sim: AibotServer, sim_clock: Clock) -> None:
    with subscribe(sim) as ws:
        req_id = sim.click(GROUP, "lina", "task-1", "confirm:x")
        assert json.loads(ws.recv(timeout=5))["headers"]["req_id"] == req_id
        stream = {"msgtype": "stream", "stream": {"id": "s", "finish": True, "content": "好"}}
        assert ask(ws, frame("aibot_respond_msg", stream, req_id))["errcode"] == 846605
        sim_clock.t += 5.5
        update = {"response_type": "update_template_card", "template_card": {"task_id": "task-1"}}
        assert ask(ws, frame("aibot_respond_update_msg", update, req_id))["errcode"] == 846608


@pytest.fixture
def runtime(project: Path, sim: AibotServer, tmp_path: Path) -> Iterator[Runtime]:
    configure_aibot(project, sim.url, f"sqlite:///{tmp_path}/data/bot.sqlite3")
    opened = Runtime(project, FakeClock(datetime(2026, 5, 11, 9, 30, tzinfo=BEIJING)))
    yield opened
    opened.close()


def test_a_refused_subscribe_is_retried_and_told_to_the_administrators_once(runtime: Runtime,
                                                                            sim: AibotServer) -> None:
    sim.bots[AIBOT_ID] = "the-secret-was-changed"
    running = RunningGroupBot(runtime, FAST_AIBOT).start()
    try:
        wait_for(lambda: running.client.state == "connecting" and len(running.bot._refused) == 1)
        attempts = sim.subscriptions
        sim.bots[AIBOT_ID] = AIBOT_SECRET  # the administrator fixed the secret in WeCom's console
        wait_for(lambda: running.client.state == "subscribed")
    finally:
        running.stop()
    assert attempts == 0
    with runtime.store.session(readonly=True) as session:
        alerts = list(session.scalars(select(Delivery.text).where(Delivery.kind == "alert")))
    assert len(alerts) == 1 and "853000" in alerts[0] and "aibot.secret" in alerts[0]


def test_replies_beyond_a_conversations_quota_are_not_sent(runtime: Runtime, sim: AibotServer,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    running = RunningGroupBot(runtime, FAST_AIBOT).start()
    running.bot.quota = MemberQuota(now=lambda: now[0], per_minute=2, per_hour=1000)
    try:
        wait_for(lambda: running.client.state == "subscribed")
        asked = [sim.mention(GROUP, "lina", "进度") for _ in range(2)]
        wait_for(lambda: all(sim.replies(r) for r in asked if r))
        caplog.set_level(logging.WARNING, logger="bot.inbox.group_bot")
        over = sim.mention(GROUP, "lina", "进度")
        wait_for(lambda: "已达企业微信每分钟 30 条" in caplog.text)
        now[0] += 60
        later = sim.mention(GROUP, "lina", "进度")
        wait_for(lambda: later is not None and sim.replies(later))
    finally:
        running.stop()
    assert over is not None and sim.replies(over) == []


def test_with_the_real_settings_a_clean_close_is_followed_by_a_subscribe_within_35_s(project: Path) -> None:
    """The Done-when, by arithmetic on the loop's real intervals: after a close the first reconnect
    waits backoff_first; a connect or subscribe that hangs gives up after answer_within."""
    settings = load_settings(project.parent / "config.yaml")
    assert settings.aibot is None  # tests run without the demo's bot; the example config has it:
    example = load_settings(Path(__file__).resolve().parents[2] / "config.example.yaml")
    assert example.aibot is not None and example.aibot.heartbeat.total_seconds() == 30
    timing = Timing(heartbeat=30.0, backoff_max=30.0)
    assert timing.backoff_first + timing.answer_within * 2 <= 35
    assert [timing.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]

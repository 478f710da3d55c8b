"""An administrator's hostile alert template is rendered in the pool: the dispatcher is not stalled.

messages/alert.j2 is the administrator's file like every other template; an alert still goes
out, as plain text, when its template runs away (bot.templates.pool stops it).
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from fakes import ROOT, delivery, make_settings, robot_key

from bot.clock import FakeClock
from bot.config import Settings
from bot.simulator import Simulator
from bot.store.db import Store
from bot.store.outbox import enqueue
from bot.store.queries import list_deliveries

FRONT = "---\ntitle: 发送异常告警\nmsgtype: text\n---\n"
HOSTILE = {
    "integer-growth": "{{ (((9 ** 64) ** 64) ** 64) ** 64 }}",
    "padding-format": "{{ '%999999999s' | format(1) }}",
    # Doubled 40 times: in-process this grows until the machine gives out; the pool's worker is capped.
    "string-doubling": "{% set a = 'x' * 2000 %}" + "{% set a = a ~ a %}" * 40 + "{{ a | length }}",
    "macro-recursion": "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
}


def with_alert_template(settings: Settings, folder: Path, body: str) -> Settings:
    shutil.copytree(ROOT / "messages", folder)
    (folder / "alert.j2").write_text(FRONT + body + "\n{{ alert.title }}", encoding="utf-8")
    return settings.model_copy(update={"paths": settings.paths.model_copy(update={"messages": folder})})


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_alert_template_cannot_stall_the_dispatcher(
        body: str, tmp_path: Path, store: Store, sim: Simulator, clock: FakeClock, make_dispatcher) -> None:
    settings = with_alert_template(make_settings(sim.url), tmp_path / "messages", body)
    sim.remove_robot(robot_key(5))
    enqueue(store, [delivery("g5", settings, clock.now())], clock.now())
    dispatcher = make_dispatcher(settings)
    reports: list = []
    thread = threading.Thread(target=lambda: reports.append(dispatcher.dispatch_due()))
    thread.start()
    thread.join(timeout=60)  # the pool stops the render after a few seconds; never this long
    assert not thread.is_alive(), "the dispatcher thread was stalled by the alert template"
    assert reports[0].failed == 1
    [alert] = list_deliveries(store, kind="alert")
    assert alert.status == "sent"
    text = sim.user_messages("admin1")[0]["text"]["content"]
    assert text.startswith("【wecom-reminder 告警】推送对象「第5群」配置有误"), "the plain-text alert"
    assert "第5群：群机器人密钥无效" in text

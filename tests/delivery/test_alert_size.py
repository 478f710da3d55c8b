"""Every alert reaches the administrators within WeCom's 2,048 bytes, whoever raises it.

A refused file's error can run to many long lines, and an administrator can make messages/alert.j2
wordier: an alert over the limit is refused by WeCom (and by our own check before sending), so it
would reach nobody. Alerts are split into parts by size, and a template that still runs over gives
way to plain text.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from fakes import ROOT, make_settings, run_until_settled

from bot.clock import FakeClock
from bot.delivery.alerts import raise_alert
from bot.simulator import Simulator
from bot.store.db import Store
from bot.store.queries import list_deliveries

ADVICE = "按提示修改该文件；修改正确前，服务继续使用上一次正确的版本"


def refused_file_error(problems: int) -> str:
    """What a reload of a schedule with many wrong entries reports: one line a problem."""
    return "\n".join(f"schedules/meetings.yaml 第 {10 * n} 行：会议“第{n}次支部委员会”的时间格式应为 YYYY-MM-DD HH:MM，"
                     f"收到“2026年{n}月” 。处理办法：改为如 2026-05-{n % 28 + 1:02d} 09:00 的写法" for n in range(1, problems + 1))


def test_a_long_error_alert_arrives_in_parts_that_each_fit(store: Store, sim: Simulator, clock: FakeClock,
                                                          make_dispatcher) -> None:
    settings = make_settings(sim.url)
    error = refused_file_error(40)
    assert len(error.encode()) > 3 * 2048
    queued = raise_alert(store, settings, clock.now(), "配置或日程文件有误，未生效（5月11日）", [error], ADVICE, [])
    assert queued >= 3
    run_until_settled(make_dispatcher(settings), clock)
    alerts = list_deliveries(store, kind="alert")
    assert [row.status for row in alerts] == ["sent"] * queued
    texts = [m["text"]["content"] for m in sim.user_messages("admin1")]
    assert len(texts) == queued and all(len(text.encode()) <= 2048 for text in texts)
    for n in range(1, 41):  # every problem, with its line, reaches the administrators once
        assert sum(f"第 {10 * n} 行：" in text for text in texts) == 1
    numbers = [re.search(rf"（(\d+)/{queued}）", text.splitlines()[0]) for text in texts]
    assert sorted(int(found.group(1)) for found in numbers if found) == list(range(1, queued + 1))


def test_the_same_error_again_is_not_alerted_twice(store: Store, sim: Simulator, clock: FakeClock) -> None:
    settings = make_settings(sim.url)
    error = refused_file_error(40)
    first = raise_alert(store, settings, clock.now(), "配置或日程文件有误，未生效（5月11日）", [error], ADVICE, [])
    assert first >= 3
    assert raise_alert(store, settings, clock.now(), "配置或日程文件有误，未生效（5月11日）", [error], ADVICE, []) == 0


def test_a_wordy_alert_template_gives_way_to_plain_text_that_arrives(
        tmp_path: Path, store: Store, sim: Simulator, clock: FakeClock, make_dispatcher) -> None:
    folder = tmp_path / "messages"
    shutil.copytree(ROOT / "messages", folder)
    template = (folder / "alert.j2").read_text(encoding="utf-8")
    (folder / "alert.j2").write_text(template + "\n" + "请各位管理员高度重视，及时处理。" * 60 + "\n", encoding="utf-8")
    settings = make_settings(sim.url)
    settings = settings.model_copy(update={"paths": settings.paths.model_copy(update={"messages": folder})})
    raise_alert(store, settings, clock.now(), "会议日历获取失败（5月11日）", ["https://calendar.example.cn/a.ics：连接超时"],
                "已继续使用上一次成功获取的日历；请检查日历地址能否访问", [])
    run_until_settled(make_dispatcher(settings), clock)
    [text] = [m["text"]["content"] for m in sim.user_messages("admin1")]
    assert text.startswith("【wecom-reminder 告警】会议日历获取失败（5月11日）")
    assert "https://calendar.example.cn/a.ics：连接超时" in text and "高度重视" not in text
    assert len(text.encode()) <= 2048


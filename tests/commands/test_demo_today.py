"""The demo is about today: started on any date it sends the next holiday's notice, signed today,
and the prompt of a study item open today, and the past is confirmed, so a first 已学习 is on time."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import BEIJING, FakeClock
from bot.commands.demo import ensure_open_item, seed_past_confirmations, welcome_today
from bot.runtime import Runtime
from bot.store.confirmations import confirmed_item_branches
from bot.store.queries import list_deliveries
from bot.templates.render import cn_ymd

ROOT = Path(__file__).resolve().parents[2]

DATES = [  # (moment, the holiday the notice is about, a real item open then or None)
    ("2026-05-12 10:00", "端午节", "jsjy-2026-05"),        # an item open, 端午 next
    ("2026-06-18 15:00", "端午节", None),                  # the day before 端午节; item 06 due at 18:00: open
    ("2026-06-20 10:00", "中秋节", None),                  # inside 端午节 (a Saturday), no item open
    ("2026-09-30 10:00", "国庆节", None),                  # just before 国庆节
    ("2026-12-04 10:00", "元旦", None),                    # 2027's arrangement not published yet
]


def runtime_at(tmp_path: Path, moment: str) -> Runtime:
    import shutil
    shutil.copytree(ROOT / "schedules", tmp_path / "schedules")
    shutil.copytree(ROOT / "messages", tmp_path / "messages")
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(text.replace("sqlite:///data/wecom-reminder.db", f"sqlite:///{tmp_path / 'demo.db'}"),
                      encoding="utf-8")
    return Runtime(config, FakeClock(datetime.fromisoformat(moment).replace(tzinfo=BEIJING)))


@pytest.mark.parametrize(("moment", "holiday", "real_item"), DATES, ids=[d[0][:10] for d in DATES])
def test_the_demo_shows_the_next_holiday_and_an_open_item(tmp_path: Path, moment: str, holiday: str,
                                                          real_item: str | None) -> None:
    runtime = runtime_at(tmp_path, moment)
    now = runtime.clock.now()
    welcome_today(runtime, ensure_open_item(runtime))
    seed_past_confirmations(runtime)
    notices = [r for r in list_deliveries(runtime.store, kind="holiday_notice")]
    assert len(notices) == 3  # one per group
    assert f"{holiday}廉洁过节提醒" in notices[0].text and cn_ymd(now) in notices[0].text

    later = now + timedelta(seconds=5)
    open_now = [i for i in runtime.studies().items if i.publish_at <= later < i.deadline]
    assert open_now, "no study item is open"
    if real_item:
        assert real_item in [i.id for i in open_now]
    prompts = [m for m in runtime.build_plan(now.date(), now.date() + timedelta(days=3)).messages
               if m.kind == "study_prompt" and m.due_at <= later]
    prompts += list_deliveries(runtime.store, kind="study_prompt")
    assert {p.item for p in prompts} & {i.id for i in open_now}, "no prompt of an open item is sent now"
    confirmed = {item for item, _branch in confirmed_item_branches(runtime.store)}
    past = {i.id for i in runtime.studies().items if i.deadline <= now}
    assert confirmed == past  # the open item is the one a first 已学习 confirms, on time
    runtime.close()


def test_a_taken_listen_port_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    import socket

    from bot.commands.server import ensure_listen_free
    from bot.config import load_settings
    from bot.errors import ConfigError
    runtime_at(tmp_path, "2026-05-12 10:00").close()
    (tmp_path / "demo.db").unlink()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "config.yaml"
        config.write_text(config.read_text(encoding="utf-8").replace("127.0.0.1:8080", f"127.0.0.1:{port}"),
                          encoding="utf-8")
        with pytest.raises(ConfigError) as error:
            ensure_listen_free(load_settings(config))
    assert f"无法监听 127.0.0.1:{port}" in str(error.value) and "server.listen" in str(error.value)
    assert not (tmp_path / "demo.db").exists()

"""A study item and a meeting through the whole service: simulator ⇄ HTTP callback ⇄ scheduler ⇄ ledger."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fakes import ADMIN, login, post
from werkzeug.serving import make_server

from bot.cli import main
from bot.clock import BEIJING, FakeClock
from bot.commands.demo import simulator_settings
from bot.commands.server import create_app
from bot.config import load_settings
from bot.runtime import Runtime
from bot.scheduler import Service
from bot.simulator import Simulator
from bot.store.accounts import create_admin


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


class Stack:
    """The simulator, and a service with its HTTP side, around one project folder."""

    def __init__(self, project: Path, clock: FakeClock) -> None:
        self.project, self.clock = project, clock
        # The service's port stays bound from here on (a port merely found free may be taken as the
        # local port of an outgoing connection, Chromium's say, before the service binds it).
        self._listening = socket.create_server(("127.0.0.1", 0))
        port = self._listening.getsockname()[1]
        text = project.read_text(encoding="utf-8").replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        project.write_text(text, encoding="utf-8")
        self.sim = Simulator(simulator_settings(load_settings(project)), wall_clock=lambda: clock.now().timestamp())
        url = self.sim.start()
        project.write_text(project.read_text(encoding="utf-8").replace("http://127.0.0.1:9000", url),
                           encoding="utf-8")
        self.service: Service | None = None
        self.server = None

    def start(self) -> Service:
        runtime = Runtime(self.project, self.clock)
        self.service = Service(runtime, sleep=self.clock.advance, monotonic=lambda: self.clock.now().timestamp())
        self.service.start_up()
        settings = runtime.settings()
        self.app = create_app(runtime)
        self.server = make_server(settings.server.host, settings.server.port, self.app, threaded=True,
                                  fd=self._listening.fileno())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.service

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None
        if self.service is not None:
            self.service.stop()
            self.service.runtime.close()
            self.service = None

    def at(self, moment: str) -> None:
        self.clock.set(at(moment))
        assert self.service is not None
        self.service.cycle()


@pytest.fixture
def stack(project: Path) -> Iterator[Stack]:
    built = Stack(project, FakeClock(at("2026-05-11 08:55")))
    yield built
    built.stop()
    built.sim.stop()
    built._listening.close()


def texts(sim: Simulator, userid: str) -> list[str]:
    return [json.dumps(m, ensure_ascii=False) for m in sim.user_messages(userid)]


def eventually(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.02)


def test_study_prompt_reply_button_nudge_and_overdue(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    sim = stack.sim
    stack.start()
    stack.at("2026-05-11 09:00")
    for user in ("zhangwei", "lina", "wangfang"):
        assert sum("2026年第5期" in t for t in texts(sim, user)) == 1

    # 张伟 replies in words; 李娜 clicks the card's button
    answer = sim.reply_as("zhangwei", "第5期已学习")
    assert answer.status == 200 and "已记录" in (answer.reply or "") and "2026年第5期" in answer.reply
    card = next(m for m in sim.user_messages("lina") if m.get("msgtype") == "template_card")
    task_id = card["template_card"]["task_id"]
    clicked = sim.click_card("lina", task_id, "confirm:jsjy-2026-05")
    assert clicked.status == 200 and "已记录" in (clicked.reply or "")
    # Both cards are greyed out: 李娜's by her click, 张伟's though he confirmed in words; none refused
    def replaced(user: str) -> list[str | None]:
        return [m["card"]["replace_name"] for m in sim.user_messages(user) if "card" in m]
    eventually(lambda: replaced("lina") == replaced("zhangwei") == ["已完成 05-11 09:00"])
    updates = sim.requests("/cgi-bin/message/update_template_card")
    assert len(updates) == 2 and all(r.answer["errcode"] == 0 for r in updates)

    stack.at("2026-05-20 09:00")   # 截止前2个工作日 09:00
    assert not any("尚未确认完成" in t for t in texts(sim, "zhangwei") + texts(sim, "lina"))
    assert sum("尚未确认完成" in t for t in texts(sim, "wangfang")) == 1

    stack.at("2026-05-22 18:00")   # the deadline: the office hears who is missing
    overdue = [t for t in texts(sim, "liming") if "学习逾期未完成情况" in t and "第5期" in t]
    assert len(overdue) == 1 and "机关党支部" in overdue[0] and "第一党支部" not in overdue[0]

    assert main(["--config", str(stack.project), "report", "--item", "jsjy-2026-05", "--json"]) == 0
    rows = {r["branch"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["b1"]["status"] == "confirmed" and rows["b1"]["confirmed_by"] == "张伟"
    assert rows["b1"]["confirmed_at"].startswith("2026-05-11T09:00")
    assert rows["b2"]["status"] == "confirmed"
    assert rows["b3"]["status"] == "missing" and rows["b3"]["confirmed_at"] is None



def test_a_confirmation_recorded_in_the_console_greys_out_the_secretarys_card(stack: Stack) -> None:
    """王芳 studied offline; the office records it in the ledger: her card must not still offer 已完成学习."""
    sim = stack.sim
    service = stack.start()
    stack.at("2026-05-11 09:00")
    assert any(m.get("msgtype") == "template_card" for m in sim.user_messages("wangfang"))
    create_admin(service.runtime.store, *ADMIN, "admin")
    admin = stack.app.test_client()
    assert login(admin, *ADMIN).status_code == 302
    stack.at("2026-05-11 10:00")
    form = {"item": "jsjy-2026-05", "branch": "b3", "by": "王芳", "at": "2026-05-11T09:40",
            "reason": "线下集中学习，书记未在企业微信中确认"}
    assert post(admin, "/admin/ledger/confirm", form).status_code == 302
    eventually(lambda: [m["card"]["replace_name"] for m in sim.user_messages("wangfang") if "card" in m]
               == ["已完成 05-11 09:40"])
    [update] = sim.requests("/cgi-bin/message/update_template_card")
    assert update.answer["errcode"] == 0 and update.json["userids"] == ["wangfang"]

def test_a_click_is_confirmed_on_the_card_without_the_passive_reply(stack: Stack) -> None:
    sim = stack.sim
    sim.play_tenant(card_reply_shown=False)  # WeCom may not show a passive reply to a card event
    stack.start()
    stack.at("2026-05-11 09:00")
    card = next(m for m in sim.user_messages("lina") if m.get("msgtype") == "template_card")
    clicked = sim.click_card("lina", card["template_card"]["task_id"], "confirm:jsjy-2026-05")
    assert clicked.status == 200
    eventually(lambda: [m["card"]["replace_name"] for m in sim.user_messages("lina") if "card" in m]
               == ["已完成 05-11 09:00"])
    [update] = sim.requests("/cgi-bin/message/update_template_card")
    assert update.json["response_code"] == sim.conversation("lina")[-1]["response_code"]  # the click's code
    assert update.json["button"] == {"replace_name": "已完成 05-11 09:00"} and update.answer["errcode"] == 0


def test_moving_an_announced_meeting_tells_its_group_once_across_restarts(stack: Stack) -> None:
    sim, group = stack.sim, "第一党支部群"
    stack.clock.set(at("2026-03-05 15:00"))
    stack.start()
    stack.at("2026-03-05 16:00")    # 提前1个工作日 16:00 for Friday 2026-03-06 14:30
    reminders = [m for m in sim.group_messages(group) if "第一党支部支委会" in json.dumps(m, ensure_ascii=False)]
    assert len(reminders) == 1
    stack.stop()

    meetings = stack.project.parent / "schedules" / "meetings.yaml"
    text = meetings.read_text(encoding="utf-8")
    meetings.write_text(text.replace("    exceptions:\n      - move: 2026-10-02", "    exceptions:\n"
                                     "      - move: 2026-03-06\n        to: 2026-03-10 15:00\n"
                                     "      - move: 2026-10-02", 1), encoding="utf-8")
    for moment in ("2026-03-05 17:00", "2026-03-05 17:05"):
        stack.start()               # a restart after the change, and another one
        stack.at(moment)
        stack.stop()
    changes = [json.dumps(m, ensure_ascii=False) for m in sim.group_messages(group)]
    changes = [t for t in changes if "会议变更通知" in t]
    assert len(changes) == 1
    assert "3月6日（周五）14:30" in changes[0] and "3月10日（周二）15:00" in changes[0]

    stack.start()
    stack.at("2026-03-10 08:00")    # 当天 08:00: the reminder follows the meeting
    today = [json.dumps(m, ensure_ascii=False) for m in sim.group_messages(group)]
    assert sum("第一党支部支委会" in t and "3月10日（周二）15:00" in t and "会议提醒" in t for t in today) == 1
    assert not any("3月6日（周五）14:30—" in t for t in today[1:])


def test_time_moves_without_sleeping() -> None:
    clock = FakeClock(at("2026-05-11 08:55"))
    before = time.monotonic()
    clock.advance(timedelta(days=30))
    assert clock.now() == at("2026-06-10 08:55") and time.monotonic() - before < 1


def _add_line(path: Path, after: str, line: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert after in text
    path.write_text(text.replace(after, f"{after}\n{line}", 1), encoding="utf-8")


def test_a_line_added_to_study_prompt_reaches_the_secretary_card(stack: Stack) -> None:
    messages = stack.project.parent / "messages"
    _add_line(messages / "study_prompt.j2", "{{ secretary.name }}同志：", "请支部书记带头学习，做好学习记录。")
    (messages / "study_prompt.j2").write_text((messages / "study_prompt.j2").read_text(encoding="utf-8")
                                              .replace("button: 已完成学习", "button: 本支部已学习"), encoding="utf-8")
    stack.start()
    stack.at("2026-05-11 09:00")
    card = next(m for m in stack.sim.user_messages("zhangwei") if m["msgtype"] == "template_card")["template_card"]
    assert "请支部书记带头学习，做好学习记录。" in card["sub_title_text"]
    assert card["main_title"]["title"] == "学习提醒：《警示教育通报》2026年第5期"
    assert card["button_list"][0]["text"] == "本支部已学习"
    assert card["button_list"][0]["key"] == "confirm:jsjy-2026-05"
    assert [row["keyname"] for row in card["horizontal_content_list"]][0] == "截止时间"


def test_a_line_added_to_holiday_integrity_reaches_the_groups(stack: Stack) -> None:
    messages = stack.project.parent / "messages"
    _add_line(messages / "holiday_integrity.j2", "各党支部、全体党员干部：", "请各支部认真传达到每一名党员。")
    stack.clock.set(at("2026-06-18 09:55"))
    stack.start()
    stack.at("2026-06-18 10:00")  # the last working day before 端午节

    def notices() -> list[str]:
        group = stack.sim.group_messages("第一党支部群")
        return [m["markdown"]["content"] for m in group if "端午节廉洁过节提醒" in m.get("markdown", {}).get("content", "")]
    eventually(lambda: len(notices()) == 1)
    assert "请各支部认真传达到每一名党员。" in notices()[0]

"""The command line as an administrator uses it: check, send, deliveries, and the demo."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from bot.cli import main
from bot.clock import BEIJING, SystemClock
from bot.commands.demo import simulator_settings
from bot.config import load_settings
from bot.delivery.dispatcher import DISPATCH_LOCK
from bot.runtime import Runtime
from bot.simulator import Simulator
from bot.store.confirmations import confirm, confirmed_pairs
from bot.store.db import open_store, try_leader_lock
from bot.store.queries import list_deliveries
from bot.wecom import api as wecom

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def simulator(project: Path):  # type: ignore[no-untyped-def]
    sim = Simulator(simulator_settings(load_settings(project)))
    url = sim.start()
    project.write_text(project.read_text(encoding="utf-8").replace("http://127.0.0.1:9000", url), encoding="utf-8")
    yield sim
    sim.stop()


def check(project: Path, today: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--config", str(project), "check", "--today", today])
    return code, capsys.readouterr().out


def test_check_passes_mid_year(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(project, "2026-06-01", capsys)
    assert code == 0, out
    assert "检查通过。" in out and "模板：17 个，全部有效" in out


def test_check_online_verifies_the_app_credentials(project: Path, simulator: Simulator,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(project), "check", "--today", "2026-06-01", "--online"])
    out = capsys.readouterr().out
    assert code == 1, out  # whether button cards can be sent: the API cannot tell, a warning
    assert "企业微信应用 | 应用消息 | ✓ 正常 | 凭据有效" in out and "接收消息" in out
    assert "第一党支部群（b1_group） | 群机器人 | · 未检查" in out
    text = project.read_text(encoding="utf-8").replace("demo-app-secret-for-simulator-only", "wrong-secret")
    project.write_text(text, encoding="utf-8")
    wecom._apps.clear()  # the cached app client holds the good secret's token
    assert main(["--config", str(project), "check", "--today", "2026-06-01", "--online"]) == 2
    out = capsys.readouterr().out
    assert "获取访问令牌失败" in out and "40001" in out and "wecom.secret" in out


def test_check_online_send_test_prints_the_per_target_table(project: Path, simulator: Simulator,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(project), "check", "--today", "2026-06-01", "--online", "--send-test"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "推送对象 | 渠道 | 状态 | 说明 | 处理办法" in out
    for name in ("b1_group", "b2_group", "b3_group"):
        assert f"（{name}） | 群机器人 | ✓ 正常 | 已发送测试消息" in out
        assert "部署检查" in simulator.group_messages(simulator.robot_key(
            load_settings(project).targets[name].key.get_secret_value()) or "")[0]["text"]["content"]  # type: ignore[union-attr]
    assert "（office） | 应用消息 | ✓ 正常 | 在可见范围内，已发送测试卡片" in out
    assert simulator.user_messages("liming")[0]["msgtype"] == "template_card"


def test_check_online_names_what_an_unconfigured_tenant_lacks(project: Path, simulator: Simulator,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    simulator.play_tenant(untrusted_ip=True)
    code = main(["--config", str(project), "check", "--today", "2026-06-01", "--online"])
    out = capsys.readouterr().out
    assert code == 2 and "企业微信应用 | 应用消息 | ✗ 有误" in out and "企业可信IP" in out and "127.0.0.1" in out
    simulator.play_tenant(untrusted_ip=False, no_callback=True, hidden_users={"zhangwei"})
    simulator.remove_robot("6a1f0c2e-0b1d-4c55-9a11-00000000b002")
    code = main(["--config", str(project), "check", "--today", "2026-06-01", "--send-test"])
    out = capsys.readouterr().out
    assert code == 2, out
    assert "（b1_secretary） | 应用消息 | ✗ 有误 | 成员 zhangwei 不在应用可见范围内" in out
    assert "（b2_group） | 群机器人 | ✗ 有误 | 群机器人密钥无效" in out
    assert "（office） | 应用消息 | ✗ 有误 | 应用未设置接收消息的回调地址" in out


@pytest.mark.parametrize(("today", "code", "level"), [
    ("2026-09-30", 0, None), ("2026-10-01", 1, "提示"), ("2026-11-30", 1, "提示"),
    ("2026-12-01", 1, "警告"), ("2026-12-14", 1, "警告"), ("2026-12-15", 2, "严重"),
], ids=["sep-30", "oct-01", "nov-30", "dec-01", "dec-14", "dec-15"])
def test_missing_next_year_gets_louder(project: Path, capsys: pytest.CaptureFixture[str], today: str, code: int,
                                       level: str | None) -> None:
    result, out = check(project, today, capsys)
    assert result == code, out
    if level:
        assert f"【{level}】缺少 2027 年的国务院节假日安排" in out and "schedules/holidays/2027.yaml" in out
    else:
        assert "2027" not in out


def test_check_names_a_config_typo(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project.write_text(project.read_text(encoding="utf-8").replace("  grace: 2h", "  grase: 2h"), encoding="utf-8")
    code, out = check(project, "2026-06-01", capsys)
    assert code == 2
    assert "grase" in out and "第 " in out and "处理办法" in out


def test_check_names_a_template_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = project.parent / "messages" / "holiday_return.j2"
    template.write_text(template.read_text(encoding="utf-8").replace("{{ holiday.name }}假期", "{{ holiday.name 假期"),
                        encoding="utf-8")
    code, out = check(project, "2026-06-01", capsys)
    assert code == 2
    assert "holiday_return" in out and "语法错误" in out and "行" in out


def test_check_names_a_broken_meeting_calendar(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meetings = project.parent / "schedules" / "meetings.yaml"
    meetings.write_text(meetings.read_text(encoding="utf-8").replace("repeat: 每月第一个周五", "repeat: 每月第一个星期八", 1),
                        encoding="utf-8")
    code, out = check(project, "2026-06-01", capsys)
    assert code == 2 and "meetings.yaml" in out and "每月第一个星期八" in out


@pytest.mark.parametrize("rule", ["FREQ=SECONDLY", "FREQ=MINUTELY;INTERVAL=30"])
def test_check_refuses_a_dense_meeting_rule(project: Path, capsys: pytest.CaptureFixture[str], rule: str) -> None:
    meetings = project.parent / "schedules" / "meetings.yaml"
    meetings.write_text(meetings.read_text(encoding="utf-8").replace(
        "repeat: 每月第一个周五", f'rrule: "{rule}"', 1), encoding="utf-8")
    code, out = check(project, "2026-06-01", capsys)
    assert code == 2 and "meetings.yaml" in out and "每天可能多达" in out and "处理办法" in out


def test_send_delivers_now_and_reports(project: Path, simulator: Simulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(project), "send", "--template", "holiday_integrity", "--to", "b1_group"]) == 0
    assert "第一党支部群：已发送" in capsys.readouterr().out
    messages = simulator.group_messages("第一党支部群")
    assert len(messages) == 1 and "廉洁过节提醒" in messages[0]["markdown"]["content"]
    assert main(["--config", str(project), "deliveries", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["status"] == "sent" and rows[0]["target"] == "b1_group" and rows[0]["kind"] == "holiday_notice"


def test_send_fails_loudly_for_a_removed_robot(project: Path, simulator: Simulator,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    simulator.remove_robot("6a1f0c2e-0b1d-4c55-9a11-00000000b002")
    assert main(["--config", str(project), "send", "--template", "holiday_integrity", "--to", "b2_group"]) == 2
    out = capsys.readouterr().out
    assert "第二党支部群：发送失败" in out and "93000" in out


def test_send_to_an_app_behind_an_untrusted_ip_stops_at_once_and_names_the_ip(
        project: Path, simulator: Simulator, capsys: pytest.CaptureFixture[str]) -> None:
    simulator.inject("/cgi-bin/message/send", errcode=60020, times=-1)  # every app send, forever
    assert main(["--config", str(project), "send", "--template", "holiday_integrity", "--to", "office"]) == 2
    out = capsys.readouterr().out
    assert "党办纪检工作人员：发送失败" in out and "企业可信IP" in out and "127.0.0.1" in out
    assert 1 <= len(simulator.requests("/cgi-bin/message/send")) <= 2


def test_send_beside_another_dispatching_process_waits_its_turn(project: Path, simulator: Simulator,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`run` in the middle of a pass holds the database's dispatch lock: `send` queues its message,
    waits, and sends it (once) when the pass is over."""
    runtime = Runtime(project, SystemClock())
    holding, done = threading.Event(), threading.Event()

    def running_service() -> None:
        with try_leader_lock(runtime.store, DISPATCH_LOCK) as held:
            assert held
            holding.set()
            deadline = time.monotonic() + 10
            while not list_deliveries(runtime.store, status="pending") and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)  # `send` has found the lock taken at least once
        done.set()

    service = threading.Thread(target=running_service)
    service.start()
    holding.wait(5)
    try:
        assert main(["--config", str(project), "send", "--template", "holiday_integrity", "--to", "b3_group"]) == 0
    finally:
        service.join(10)
        runtime.close()
    assert done.is_set() and "机关党支部群：已发送" in capsys.readouterr().out
    assert len(simulator.group_messages("机关党支部群")) == 1


def test_send_to_an_unknown_target(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(project), "send", "--template", "holiday_integrity", "--to", "nobody"]) == 2
    assert "未知的推送对象 nobody" in capsys.readouterr().err


def test_send_later_waits_in_the_outbox(project: Path, simulator: Simulator,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    later = (datetime.now(BEIJING) + timedelta(days=2)).replace(second=0, microsecond=0)
    assert main(["--config", str(project), "send", "--template", "study_nudge", "--to", "b1_secretary",
                 "--at", f"{later:%Y-%m-%d %H:%M}"]) == 0
    assert "已加入发件箱" in capsys.readouterr().out
    assert simulator.user_messages("zhangwei") == []
    runtime = Runtime(project, SystemClock())
    runtime.replan()        # a message sent by hand is not part of the plan: re-planning keeps it
    runtime.close()
    assert main(["--config", str(project), "deliveries", "--json", "--status", "pending"]) == 0
    pending = [r for r in json.loads(capsys.readouterr().out) if r["rule"] == "manual"]
    assert [r["due_at"] for r in pending] == [later.isoformat()]


def test_bad_arguments_are_explained_in_chinese(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["plan", "--from", "2026-13-01"])
    assert exit_info.value.code == 2
    assert "日期格式应为 YYYY-MM-DD" in capsys.readouterr().err


def test_demo_shows_messages_in_the_simulator_within_a_minute(project: Path) -> None:
    """The README's first command, on its own ports: groups get a message, a secretary can reply."""
    sim_port, port = free_port(), free_port()
    text = project.read_text(encoding="utf-8").replace("127.0.0.1:9000", f"127.0.0.1:{sim_port}")
    project.write_text(text.replace("127.0.0.1:8080", f"127.0.0.1:{port}"), encoding="utf-8")
    log = (project.parent / "demo.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(project), "demo"],
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{sim_port}"
    try:
        deadline = time.monotonic() + 60
        page = ""
        while time.monotonic() < deadline:
            try:
                page = requests.get(f"{base}/", timeout=2).text
                if page.count("<td>1</td>") >= 6:   # three groups and three secretaries have one message
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        assert page.count("<td>1</td>") >= 6, (project.parent / "demo.log").read_text(encoding="utf-8")
        answer = requests.post(f"{base}/user/zhangwei/reply", data={"text": "已学习"}, timeout=30)
        assert answer.status_code == 200 and "已记录" in answer.text
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["status"] == "ok"
        assert "党办纪检工作人员" in requests.get(f"{base}/", timeout=5).text  # the office's one member, by role
        assert "往期学习确认" in (project.parent / "demo.log").read_text(encoding="utf-8")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
        log.close()


@pytest.mark.parametrize(("argv", "expected"), [
    (["nothing"], "命令 不能是 nothing"),
    (["send", "--to", "b1_group"], "缺少必需的参数：--template"),
    (["deliveries", "--limit", "x"], "参数 --limit 应为整数"),
    (["plan", "--bogus"], "无法识别的参数：--bogus"),
], ids=["unknown-command", "missing-template", "not-an-integer", "unknown-option"])
def test_argument_errors_are_in_chinese(capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and err.startswith("用法：")


def test_help_is_in_chinese(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert out.startswith("用法：wecom-reminder") and "显示本帮助并退出" in out and "列出计划发送的消息" in out


def test_backup_copies_the_database_while_the_service_has_it_open(project: Path, simulator: Simulator,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(project), "send", "--template", "holiday_integrity", "--to", "b1_group"]) == 0
    runtime = Runtime(project, SystemClock())  # as `run` would: the database open, WAL in use
    try:
        confirm(runtime.store, "jsjy-2026-05", "b1", "zhangwei", datetime(2026, 5, 20, 9, tzinfo=BEIJING), "reply")
        target = project.parent / "备份" / "wecom-reminder.db"
        target.parent.mkdir()
        capsys.readouterr()
        assert main(["--config", str(project), "backup", str(target)]) == 0
        out = capsys.readouterr().out
        assert f"已备份到 {target}" in out and "1 条发送记录" in out and "1 条学习确认" in out
        assert main(["--config", str(project), "backup", str(target)]) == 2  # never overwrites by surprise
        assert "备份文件已存在" in capsys.readouterr().err and "--force" not in capsys.readouterr().err
        assert main(["--config", str(project), "backup", "--force", str(target)]) == 0
        assert b"00000000b001" not in target.read_bytes()  # the robot key stays in the config
    finally:
        runtime.close()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600          # the whole database: this user only
    database = project.parent / "data" / "wecom-reminder.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    with open_store(f"sqlite:///{target}") as copy:  # a restore is this file put back in place
        [row] = list_deliveries(copy)
        assert row.status == "sent" and row.target == "b1_group"
        with copy.session(readonly=True) as session:
            assert confirmed_pairs(session) == {("jsjy-2026-05", "b1")}
    assert not list(target.parent.glob(".*partial"))


def test_plan_json_names_robots_without_their_keys(project: Path, simulator: Simulator,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(project), "send", "--template", "holiday_integrity", "--to", "b1_group"]) == 0
    capsys.readouterr()
    assert main(["--config", str(project), "plan", "--json", "--from", "2026-01-01", "--to", "2026-12-31"]) == 0
    out = capsys.readouterr().out
    assert "b1_group" in out and "00000000b00" not in out


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_a_busy_port_is_a_chinese_error_before_anything_is_written(project: Path, host: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        project.write_text(project.read_text(encoding="utf-8").replace(
            "listen: 127.0.0.1:8080", f"listen: {host}:{port}"), encoding="utf-8")
        assert main(["--config", str(project), "run"]) == 2
    err = capsys.readouterr().err
    assert f"无法监听 {host}:{port}：该端口已被占用" in err and "server.listen" in err and "Traceback" not in err
    assert not (project.parent / "data").exists()   # no database, no secret: nothing was written


def test_backup_explains_what_to_do_for_postgresql(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = project.read_text(encoding="utf-8").replace("sqlite:///data/wecom-reminder.db", "postgresql://u@db/wecom")
    project.write_text(text, encoding="utf-8")
    assert main(["--config", str(project), "backup", str(project.parent / "x.db")]) == 2
    assert "pg_dump" in capsys.readouterr().err


def test_check_warns_when_nobody_would_hear_of_failures(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = project.read_text(encoding="utf-8").replace("  targets: [office] ", "  targets: [] ")
    project.write_text(text, encoding="utf-8")
    code, out = check(project, "2026-06-01", capsys)
    assert code == 1 and "未配置 admins.targets" in out


def test_check_judges_a_template_by_the_channels_that_use_it(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = project.parent / "messages" / "holiday_integrity.j2"
    template.write_text(template.read_text(encoding="utf-8") + "严" * 1000, encoding="utf-8")  # ~3,500 bytes
    code, out = check(project, "2026-06-01", capsys)
    assert code == 0, out  # robots take markdown up to 4,096 bytes
    text = project.read_text(encoding="utf-8").replace("to: [all_groups]", "to: [all_groups, office]", 1)
    project.write_text(text, encoding="utf-8")
    code, out = check(project, "2026-06-01", capsys)
    assert code == 2 and "模板 holiday_integrity" in out and "超过企业微信应用消息 markdown 消息 2048 字节的上限" in out


def test_check_refuses_at_all_on_a_robot_markdown(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = project.read_text(encoding="utf-8").replace(
        "key: 6a1f0c2e-0b1d-4c55-9a11-00000000b001}", "key: 6a1f0c2e-0b1d-4c55-9a11-00000000b001, mentioned_list: ['@all']}")
    project.write_text(text, encoding="utf-8")
    code, out = check(project, "2026-06-01", capsys)
    assert code == 2 and "不能 @所有人" in out and "发往 b1_group 的消息" in out

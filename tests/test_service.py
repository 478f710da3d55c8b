"""The whole service over loopback HTTP against the WeCom simulator: on time, once, across restarts."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import BEIJING, FakeClock
from bot.commands.demo import simulator_settings
from bot.config import load_settings
from bot.runtime import Runtime
from bot.scheduler import Service
from bot.simulator import Simulator
from bot.store.queries import list_deliveries

GROUP_KEYS = {f"6a1f0c2e-0b1d-4c55-9a11-00000000b00{i}": f"b{i}_group" for i in (1, 2, 3)}


@pytest.fixture
def simulator(project: Path):  # type: ignore[no-untyped-def]
    sim = Simulator(simulator_settings(load_settings(project)))
    url = sim.start()
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace("http://127.0.0.1:9000", url), encoding="utf-8")
    yield sim
    sim.stop()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


def start_service(project: Path, clock: FakeClock) -> Service:
    runtime = Runtime(project, clock)
    service = Service(runtime, sleep=lambda seconds: clock.advance(seconds), monotonic=lambda: clock.now().timestamp())
    service.start_up()
    return service


def holiday_notices(sim: Simulator, key: str) -> list[str]:
    texts = [m.get("markdown", {}).get("content", "") for m in sim.group_messages(key)]
    return [t for t in texts if "春节廉洁过节提醒" in t]


def test_each_group_gets_the_pre_holiday_notice_once_at_the_due_time(project: Path, simulator: Simulator) -> None:
    clock = FakeClock(at("2026-02-14 09:50"))
    service = start_service(project, clock)
    try:
        service.cycle()
        assert all(holiday_notices(simulator, key) == [] for key in GROUP_KEYS)   # not yet
        clock.advance(timedelta(minutes=10))
        service.cycle()
        service.cycle()
        for key in GROUP_KEYS:
            notices = holiday_notices(simulator, key)
            assert len(notices) == 1
            assert "2月15日（周日）至2月23日（周一）放假，共9天" in notices[0]
    finally:
        service.stop()
        service.runtime.close()


def group_texts(sim: Simulator, key: str) -> list[str]:
    return [m.get("markdown", {}).get("content", "") for m in sim.group_messages(key)]


def test_an_amended_holiday_sends_one_correction_to_those_already_told(project: Path, simulator: Simulator) -> None:
    """As in 2020, when 春节 was extended after the notices went out: each group hears once."""
    clock = FakeClock(at("2026-02-14 10:00"))
    service = start_service(project, clock)
    try:
        service.cycle()
        assert all(len(holiday_notices(simulator, key)) == 1 for key in GROUP_KEYS)
        arrangement = project.parent / "schedules" / "holidays" / "2026.yaml"
        text = arrangement.read_text(encoding="utf-8")
        arrangement.write_text(text.replace("    last_day: 2026-02-23\n    workdays: [2026-02-14, 2026-02-28]",
                                            "    last_day: 2026-02-24\n    workdays: [2026-02-14]"), encoding="utf-8")
        clock.advance(timedelta(days=1))  # 2月15日, the first day off: the notice is amended
        service.cycle()                   # picks the file up, re-plans, sends
        service.cycle()
        service.replan()
        service.cycle()
        for key in GROUP_KEYS:
            corrections = [t for t in group_texts(simulator, key) if "放假安排更正" in t]
            assert len(corrections) == 1, group_texts(simulator, key)
            assert "2月15日（周日）至2月23日（周一）" in corrections[0]      # what the notice said
            assert "2月15日（周日）至2月24日（周二）放假，共10天" in corrections[0]  # what holds now
        rows = list_deliveries(service.runtime.store, kind="holiday_correction", limit=10)
        assert {(r.target, r.status) for r in rows} == {(t, "sent") for t in GROUP_KEYS.values()}
        returns = list_deliveries(service.runtime.store, kind="holiday_return", limit=10)
        assert {r.due_at for r in returns} == {at("2026-02-25 09:00")}    # the pending one moved with it
    finally:
        service.stop()
        service.runtime.close()
    again = start_service(project, clock)   # a restart: nothing new to correct
    try:
        again.cycle()
        assert all(len([t for t in group_texts(simulator, k) if "放假安排更正" in t]) == 1 for k in GROUP_KEYS)
    finally:
        again.stop()
        again.runtime.close()


def test_the_administrators_hear_when_next_years_arrangement_is_missing(project: Path, simulator: Simulator) -> None:
    """Once at 提示 and once at 警告, then daily from 15 December, in the office's app chat."""
    clock = FakeClock(at("2026-11-27 09:00"))
    heard: list[str] = []

    def day(moment: str, cycles: int = 2) -> None:
        clock.set(at(moment))
        service = start_service(project, clock)
        try:
            for _ in range(cycles):
                service.replan()
                service.cycle()
        finally:
            service.stop()
            service.runtime.close()
        heard[:] = [text for text in (json.dumps(m, ensure_ascii=False) for m in simulator.user_messages("liming"))
                    if "节假日安排尚未录入" in text]  # the office also hears of missed messages, overdue studies

    day("2026-11-27 09:00")
    day("2026-11-28 09:00")
    assert len(heard) == 1 and "2027年节假日安排尚未录入【提示】" in heard[0]
    day("2026-12-01 09:00")
    day("2026-12-02 09:00")
    assert sum("【警告】" in h for h in heard) == 1
    day("2026-12-15 09:00")
    day("2026-12-16 09:00")
    assert sum("【严重】" in h for h in heard) == 2 and "12月16日" in heard[-1]
    assert len(heard) == 4


def restart_after_downtime(project: Path, down_at: str, up_at: str) -> Service:
    """Run the service at `down_at`, stop it, start it again at `up_at`."""
    clock = FakeClock(at(down_at))
    first = start_service(project, clock)
    first.stop()
    first.runtime.close()
    clock.set(at(up_at))
    return start_service(project, clock)


@pytest.mark.parametrize("up_at", ["2026-02-14 11:30", "2026-02-14 12:00"], ids=["1h30-late", "exactly-2h"])
def test_restart_within_the_grace_window_sends_late(project: Path, simulator: Simulator, up_at: str) -> None:
    second = restart_after_downtime(project, "2026-02-14 09:00", up_at)  # due 10:00, grace 2 h
    try:
        second.cycle()
        for key in GROUP_KEYS:
            assert len(holiday_notices(simulator, key)) == 1
        rows = list_deliveries(second.runtime.store, kind="holiday_notice", status="sent")
        assert len(rows) == 3 and all(row.late for row in rows)
    finally:
        second.stop()
        second.runtime.close()


@pytest.mark.parametrize("up_at", ["2026-02-14 12:01", "2026-02-14 12:30"], ids=["2h01-late", "2h30-late"])
def test_restart_after_the_grace_window_records_missed_and_alerts(project: Path, simulator: Simulator,
                                                                  up_at: str) -> None:
    second = restart_after_downtime(project, "2026-02-14 09:00", up_at)
    try:
        second.cycle()
        assert all(holiday_notices(simulator, key) == [] for key in GROUP_KEYS)
        missed = list_deliveries(second.runtime.store, kind="holiday_notice", status="missed")
        assert len(missed) == 3
        alerts = [m for m in simulator.user_messages("liming") if "告警" in str(m)]
        assert len(alerts) == 1 and "错过" in str(alerts[0])
    finally:
        second.stop()
        second.runtime.close()


def test_a_broken_config_change_keeps_the_last_good_state(project: Path, simulator: Simulator) -> None:
    clock = FakeClock(at("2026-02-14 09:50"))
    service = start_service(project, clock)
    try:
        good = project.read_text(encoding="utf-8")
        project.write_text(good.replace("    holidays: all", "    holidayz: all", 1), encoding="utf-8")
        service.cycle()
        assert service.runtime.last_reload_error is not None
        assert re.search(r"第 \d+ 行.*holidayz", service.runtime.last_reload_error)
        clock.advance(timedelta(minutes=10))
        service.cycle()
        service.cycle()
        assert all(len(holiday_notices(simulator, key)) == 1 for key in GROUP_KEYS)
        alerts = [m for m in simulator.user_messages("liming") if "配置或日程文件有误" in str(m)]
        assert len(alerts) == 1 and "holidayz" in str(alerts[0])   # told once, not at every cycle
    finally:
        service.stop()
        service.runtime.close()


def test_a_broken_meeting_calendar_keeps_the_last_good_one(project: Path, simulator: Simulator) -> None:
    clock = FakeClock(at("2026-03-05 15:00"))
    service = start_service(project, clock)
    meetings = project.parent / "schedules" / "meetings.yaml"
    try:
        meetings.write_text(meetings.read_text(encoding="utf-8").replace("duration: 90m", "duration: 九十分钟", 1),
                            encoding="utf-8")
        service.cycle()
        error = service.runtime.last_reload_error or ""
        assert "meetings.yaml" in error and "第" in error and "处理办法" in error
        clock.set(at("2026-03-05 16:00"))
        service.cycle()
        sent = [m for m in simulator.group_messages("第一党支部群") if "第一党支部支委会" in str(m)]
        assert len(sent) == 1
    finally:
        service.stop()
        service.runtime.close()


def test_an_unreachable_calendar_url_keeps_the_last_good_copy_and_alerts_once(
        project: Path, simulator: Simulator) -> None:
    import http.server
    import threading

    body = (Path(__file__).parent / "fixtures" / "ics" / "google.ics").read_bytes()
    state = {"fail": False}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if state["fail"]:
                self.send_response(503)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    meetings = project.parent / "schedules" / "meetings.yaml"
    url = f"http://127.0.0.1:{server.server_address[1]}/party.ics"
    config = project.read_text(encoding="utf-8")    # the administrator allows the loopback server by name
    project.write_text(config.replace("allowed_hosts: []", "allowed_hosts: [127.0.0.1]"), encoding="utf-8")
    meetings.write_text(meetings.read_text(encoding="utf-8").replace(
        "calendars: []", f"calendars:\n  - url: {url}\n    kind: 中心组学习\n    to: [office]\n"), encoding="utf-8")
    clock = FakeClock(at("2026-03-09 08:00"))     # 青年理论学习小组 on Tuesday 2026-03-10 15:00
    service = start_service(project, clock)
    try:
        state["fail"] = True
        service.replan()
        service.cycle()
        alerts = [m for m in simulator.user_messages("liming") if "会议日历获取失败" in str(m)]
        assert len(alerts) == 1
        clock.set(at("2026-03-09 16:00"))           # 提前1个工作日 16:00, from the last good copy
        service.cycle()
        assert any("青年理论学习小组" in str(m) for m in simulator.user_messages("liming"))
    finally:
        service.stop()
        service.runtime.close()
        server.shutdown()


def test_a_replica_starting_while_another_sends_marks_nothing_late(project: Path, simulator: Simulator) -> None:
    """The rows of a running replica's pass are not overdue: only a start with the dispatch lock
    in hand recovers (the year benchmark saw a restarted replica mark them 'late')."""
    from bot.delivery.dispatcher import DISPATCH_LOCK
    from bot.store.db import try_leader_lock

    clock = FakeClock(at("2026-02-14 09:00"))
    first = start_service(project, clock)
    clock.set(at("2026-02-14 10:01"))
    with try_leader_lock(first.runtime.store, DISPATCH_LOCK) as held:  # the other replica's pass
        assert held
        second = start_service(project, clock)
    try:
        def late() -> list[str]:
            return [r.key for r in list_deliveries(second.runtime.store, kind="holiday_notice") if r.late]

        assert late() == []
        second.recover()  # a start with the lock free: the service was down at 10:00
        assert len(late()) == 3
    finally:
        for service in (second, first):
            service.stop()
            service.runtime.close()


def one_notice_arrives_before_a_tick(simulator: Simulator) -> bool:
    """Within 10 s, less than a tick's 20 (with the tick removed, a lost wake-up never comes)."""
    import time

    for _ in range(500):
        if any(holiday_notices(simulator, key) for key in GROUP_KEYS):
            break
        time.sleep(0.02)
    return sum(len(holiday_notices(simulator, key)) for key in GROUP_KEYS) == 1


def test_a_send_now_asked_for_as_a_pass_ends_is_not_postponed(project: Path, simulator: Simulator) -> None:
    """立即发送 at the very end of a dispatch pass, before the pass planned its next wake-up: the
    pass's wake-up, computed before it (the next due time, an hour later), replaced the 立即发送's."""
    import threading

    from bot.store.outbox import bring_forward

    clock = FakeClock(at("2026-02-14 09:00"))  # the holiday notices are due at 10:00
    service = Service(Runtime(project, clock), sleep=lambda seconds: clock.advance(seconds),
                      monotonic=lambda: clock.now().timestamp())
    armed, asked, passed = (threading.Event() for _ in range(3))
    next_due_at = service.dispatcher.next_due_at

    def send_now_as_the_pass_ends() -> datetime | None:
        due = next_due_at()  # the pass has made its last claim and found its next wake-up
        if armed.is_set() and not asked.is_set():
            asked.set()
            scheduler.pause()  # the 立即发送's wake-up is pending while the pass ends
            row = list_deliveries(service.runtime.store, kind="holiday_notice")[0]
            assert bring_forward(service.runtime.store, row.id, "pending", clock.now())
            service.runtime.request_replan()  # as the console's 立即发送 does
        return due

    wake_at = service._wake_at

    def wake_at_as_the_pass_ends(when: datetime) -> None:
        wake_at(when)
        if asked.is_set() and when > clock.now() + timedelta(minutes=30):  # the pass's own, for 10:00
            passed.set()

    service.dispatcher.next_due_at = send_now_as_the_pass_ends  # type: ignore[method-assign]
    service._wake_at = wake_at_as_the_pass_ends  # type: ignore[method-assign]
    service.start()
    scheduler = service.scheduler
    assert scheduler is not None
    try:
        scheduler.remove_job("tick")  # no periodic pass to rescue a lost wake-up
        armed.set()
        service._wake_now()
        assert asked.wait(10) and passed.wait(10)
        scheduler.resume()
        assert one_notice_arrives_before_a_tick(simulator)
    finally:
        service.stop()
        service.runtime.close()


def test_a_send_now_asked_for_while_a_pass_runs_is_sent_when_it_ends(project: Path, simulator: Simulator) -> None:
    """立即发送 while a pass is still running: its wake-up fires during the pass, and APScheduler
    skipped it as a second instance of the running job, so the message waited for the next tick."""
    import threading

    from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES

    from bot.store.outbox import bring_forward

    clock = FakeClock(at("2026-02-14 09:00"))  # the holiday notices are due at 10:00
    service = Service(Runtime(project, clock), sleep=lambda seconds: clock.advance(seconds),
                      monotonic=lambda: clock.now().timestamp())
    armed, asked, fired = threading.Event(), threading.Event(), threading.Event()
    next_due_at = service.dispatcher.next_due_at

    def send_now_during_the_pass() -> datetime | None:
        due = next_due_at()
        if armed.is_set() and not asked.is_set():
            asked.set()
            row = list_deliveries(service.runtime.store, kind="holiday_notice")[0]
            assert bring_forward(service.runtime.store, row.id, "pending", clock.now())
            service.runtime.request_replan()  # as the console's 立即发送 does
            assert fired.wait(10)  # its wake-up came while this pass is still running
        return due

    service.dispatcher.next_due_at = send_now_during_the_pass  # type: ignore[method-assign]
    service.start()
    scheduler = service.scheduler
    assert scheduler is not None
    try:
        scheduler.remove_job("tick")  # no periodic pass to rescue a lost wake-up
        scheduler.add_listener(lambda event: fired.set() if event.job_id == "wake" and asked.is_set() else None,
                               EVENT_JOB_EXECUTED | EVENT_JOB_MAX_INSTANCES)
        armed.set()
        service._wake_now()
        assert one_notice_arrives_before_a_tick(simulator)
    finally:
        service.stop()
        service.runtime.close()

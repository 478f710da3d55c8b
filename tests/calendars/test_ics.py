"""iCalendar sources: Outlook, Google and WeCom / Tencent Meeting exports; broken files; fetching URLs."""

from __future__ import annotations

import re
import shutil
import tracemalloc
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.calendars.ics import ics_events, parse_ics
from bot.calendars.meetings import expand_meetings
from bot.clock import BEIJING
from bot.errors import ScheduleError
from bot.inputs import load_holidays, load_meetings, read_ics_files
from bot.rules.meetings import AnnouncedMeeting, plan_meetings

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ics"
YEAR = (date(2026, 1, 1), date(2026, 12, 31))


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=BEIJING)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def events(name: str, text: str | None = None) -> dict[str, Any]:
    found = ics_events(text or fixture(name), name, *YEAR)
    return {(e.summary, e.original_start.date().isoformat()): e for e in found}


# --- shapes of the tools people use ---------------------------------------------------------------


def test_outlook_windows_zone_rrule_exdate_and_override() -> None:
    found = events("outlook.ics")
    study = found[("党委理论学习中心组学习", "2026-03-05")]
    assert (study.start, study.end, study.location) == (bj(2026, 3, 5, 9), bj(2026, 3, 5, 11, 30), "党委会议室")
    assert ("党委理论学习中心组学习", "2026-04-02") not in found           # EXDATE
    moved = found[("党委理论学习中心组学习（调整）", "2026-05-07")]          # RECURRENCE-ID override
    assert (moved.start, moved.location) == (bj(2026, 5, 8, 14, 30), "五楼党员活动室")
    assert moved.uid.endswith("@2026-05-07T09:00") and moved.uid.startswith("040000008200E000")
    assert not any(k[1] > "2026-12-31" for k in found)                      # UNTIL


def test_outlook_windows_zone_without_vtimezone_is_beijing() -> None:
    text = re.sub(r"BEGIN:VTIMEZONE.*?END:VTIMEZONE\s*", "", fixture("outlook.ics"), flags=re.S)
    assert "VTIMEZONE" not in text
    assert events("outlook.ics", text)[("党委理论学习中心组学习", "2026-03-05")].start == bj(2026, 3, 5, 9)


def test_outlook_all_day_event() -> None:
    day = events("outlook.ics")[("“七一”集中学习日", "2026-06-30")]
    assert day.all_day and (day.start, day.end) == (bj(2026, 6, 30), bj(2026, 7, 1))


def test_google_vtimezone_count_and_utc_times() -> None:
    found = events("google.ics")
    group = sorted(e.start for (summary, _), e in found.items() if summary == "青年理论学习小组")
    assert group == [bj(2026, 3, 10, 15), bj(2026, 3, 24, 15), bj(2026, 4, 7, 15), bj(2026, 4, 21, 15)]
    assert found[("警示教育大会", "2026-03-20")].start == bj(2026, 3, 20, 9, 30)   # 01:30Z


def test_tencent_meeting_export() -> None:
    found = events("tencent_meeting.ics")
    first = found[("上级党组织视频会议", "2026-03-12")]
    assert first.video == "https://meeting.tencent.com/dm/AbCdEf123456" and first.location == ""
    assert first.organizer == "机关党委" and "会议号：123 456 789" in first.description
    assert found[("上级党组织视频会议", "2026-03-19")].start == bj(2026, 3, 20, 14, 30)
    assert ("上级党组织视频会议", "2026-04-02") not in found
    assert found[("上级党组织视频会议", "2026-04-09")].cancelled
    assert found[("纪检工作座谈会", "2026-04-16")].cancelled
    assert not found[("上级党组织视频会议", "2026-04-16")].cancelled
    assert found[("全民国家安全教育日专题学习", "2026-04-15")].all_day


# --- broken files ---------------------------------------------------------------------------------


def test_a_broken_file_names_the_file_the_line_and_the_fix() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_ics(fixture("broken.ics"), "broken.ics")
    assert caught.value.line == 7 and caught.value.file == "broken.ics"
    assert "DTSTART" in str(caught.value) and "格式错误的会议" in str(caught.value) and "处理办法" in str(caught.value)


@pytest.mark.parametrize("text,words", [
    ("这不是日历", "无法解析的日历内容"),
    ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20260101T100000\r\nRRULE:FREQ=SOMETIMES\r\n"
     "END:VEVENT\r\nEND:VCALENDAR\r\n", "RRULE 无法识别"),
    ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:no-start\r\nSUMMARY:没有时间\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
     "缺少开始时间 DTSTART"),
], ids=["not-a-calendar", "bad-rrule", "no-dtstart"])
def test_broken_calendars_are_refused(text: str, words: str) -> None:
    with pytest.raises(ScheduleError, match=words) as caught:
        ics_events(text, "x.ics", *YEAR)
    assert caught.value.line is not None
    ours = re.sub(r"“[^”]*”|UID [^）]+", "", caught.value.problem)  # the file's own content
    assert not re.search(r"[a-z]{4,}", ours.replace("iCalendar", "")), "an English fragment in the error"


# --- calendar sources in meetings.yaml ------------------------------------------------------------


def schedules_with(tmp_path: Path, calendars: list[dict[str, Any]]) -> Path:
    shutil.copy(FIXTURES / "tencent_meeting.ics", tmp_path / "wemeet.ics")
    path = tmp_path / "meetings.yaml"
    path.write_text(yaml.safe_dump({"calendars": calendars}, allow_unicode=True), encoding="utf-8")
    return path


def test_a_calendar_file_becomes_meetings_with_reminders(tmp_path: Path) -> None:
    path = schedules_with(tmp_path, [{"file": "wemeet.ics", "kind": "视频会议", "to": ["all_groups"],
                                      "reminders": ["提前30分钟"]}])
    schedule = load_meetings(path, tmp_path)
    calendar = load_holidays(ROOT / "schedules" / "holidays")
    found = expand_meetings(schedule, calendar, date(2026, 4, 1), date(2026, 4, 30), read_ics_files(schedule))
    cancelled = [m for m in found if m.status == "cancelled"]
    assert {m.title for m in cancelled} == {"上级党组织视频会议", "纪检工作座谈会"}
    assert {m.kind for m in found} == {"视频会议"} and {m.targets for m in found} == {("all_groups",)}
    planned = plan_meetings(found, now=bj(2026, 4, 1), start=date(2026, 4, 1), end=date(2026, 4, 30),
                            calendar=calendar, branch_names={}, branch_targets={}, announced={})
    assert planned[0].rule == "meeting:ics" and planned[0].due_at == bj(2026, 4, 14, 23, 30)
    assert not any("2026-04-09T10:00" in o.occurrence for o in planned)


def test_a_cancelled_ics_occurrence_that_was_announced_is_announced_as_cancelled(tmp_path: Path) -> None:
    schedule = load_meetings(schedules_with(tmp_path, [{"file": "wemeet.ics", "to": ["all_groups"]}]), tmp_path)
    calendar = load_holidays(ROOT / "schedules" / "holidays")
    found = expand_meetings(schedule, calendar, date(2026, 4, 1), date(2026, 4, 30), read_ics_files(schedule))
    uid = next(m.uid for m in found if m.status == "cancelled" and m.title == "上级党组织视频会议")
    told = {uid: AnnouncedMeeting(uid, bj(2026, 4, 9, 10), bj(2026, 4, 9, 11), "上级党组织视频会议", "",
                                  ("all_groups",), "ics")}
    planned = plan_meetings(found, now=bj(2026, 4, 8, 12), start=date(2026, 4, 1), end=date(2026, 4, 30),
                            calendar=calendar, branch_names={}, branch_targets={}, announced=told)
    [change] = [o for o in planned if o.kind == "meeting_change"]
    assert change.occurrence == f"{uid}!change:cancelled" and change.rule == "meeting:ics"


@pytest.mark.parametrize("entry,words", [
    ({"file": "missing.ics", "to": ["all_groups"]}, "日历文件"),
    ({"url": "ftp://example.com/x.ics", "to": ["all_groups"]}, "不是网址"),
    ({"file": "wemeet.ics", "url": "https://example.com/x.ics", "to": ["all_groups"]}, "file 或 url 之一"),
], ids=["missing-file", "not-http", "both"])
def test_bad_calendar_entries_are_refused(tmp_path: Path, entry: dict[str, Any], words: str) -> None:
    with pytest.raises(ScheduleError, match=words) as caught:
        load_meetings(schedules_with(tmp_path, [entry]), tmp_path)
    assert caught.value.line is not None


def test_a_broken_calendar_file_is_refused_at_load(tmp_path: Path) -> None:
    path = schedules_with(tmp_path, [{"file": "broken.ics", "to": ["all_groups"]}])
    shutil.copy(FIXTURES / "broken.ics", tmp_path / "broken.ics")
    with pytest.raises(ScheduleError, match="broken.ics") as caught:
        load_meetings(path, tmp_path)
    assert caught.value.line == 7


def test_an_override_moved_past_the_window_keeps_its_uid(tmp_path: Path) -> None:
    # the 2026-03-19 occurrence is held on 03-20: a window ending 03-19 still sees it, so it is not "gone"
    schedule = load_meetings(schedules_with(tmp_path, [{"file": "wemeet.ics", "to": ["all_groups"]}]), tmp_path)
    calendar = load_holidays(ROOT / "schedules" / "holidays")
    found = expand_meetings(schedule, calendar, date(2026, 3, 13), date(2026, 3, 19), read_ics_files(schedule))
    assert [(m.uid[-16:], m.start) for m in found] == [("2026-03-19T10:00", bj(2026, 3, 20, 14, 30))]


# --- bounded expansion: a rule that would hold more than a few meetings a day is refused unexpanded --


def one_rule(rule: str, events: int = 1, uid: str = "dense") -> str:
    body = "".join(f"BEGIN:VEVENT\r\nUID:{uid}-{i}\r\nSUMMARY:会议{i}\r\nDTSTART:20260101T090000\r\n"
                   f"DTEND:20260101T093000\r\nRRULE:{rule}\r\nEND:VEVENT\r\n" for i in range(events))
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//CN\r\n{body}END:VCALENDAR\r\n"


EVERY_HOUR_OF_DAY = ",".join(str(h) for h in range(24))
EVERY_MINUTE = ",".join(str(m) for m in range(60))
DENSE = [
    "FREQ=SECONDLY", "FREQ=SECONDLY;INTERVAL=10", "FREQ=MINUTELY", "FREQ=MINUTELY;INTERVAL=15;BYHOUR=9",
    "FREQ=HOURLY", f"FREQ=DAILY;BYHOUR={EVERY_HOUR_OF_DAY}", f"FREQ=WEEKLY;BYDAY=MO,TU;BYHOUR=9;BYMINUTE={EVERY_MINUTE}",
    f"FREQ=MONTHLY;BYMONTHDAY=1,2,3;BYHOUR={EVERY_HOUR_OF_DAY};BYMINUTE={EVERY_MINUTE};BYSECOND={EVERY_MINUTE}",
]
SANE = ["FREQ=HOURLY;INTERVAL=3", "FREQ=DAILY;BYHOUR=9,14", "FREQ=MINUTELY;INTERVAL=720", "FREQ=WEEKLY;BYDAY=MO,FR",
        "FREQ=HOURLY;BYHOUR=9,10,11,14,15,16"]


@pytest.mark.parametrize("rule", DENSE)
def test_a_dense_rule_is_refused_before_expanding(rule: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ScheduleError, match="每天可能多达") as caught:
            ics_events(one_rule(rule), "dense.ics", *YEAR)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (caught.value.line, caught.value.key) == (9, "RRULE") and "处理办法" in str(caught.value)
    assert peak < 5_000_000  # nothing was expanded


@pytest.mark.parametrize("rule", DENSE[:3])
def test_an_upload_with_a_dense_rule_is_refused_at_parse(rule: str) -> None:
    with pytest.raises(ScheduleError, match="FREQ="):
        parse_ics(one_rule(rule), "upload.ics")


@pytest.mark.parametrize("rule", SANE)
def test_a_sane_rule_is_expanded(rule: str) -> None:
    assert 1 <= len(ics_events(one_rule(rule), "sane.ics", date(2026, 3, 2), date(2026, 3, 8))) <= 56


def test_many_events_each_within_the_bound_are_still_stopped_early() -> None:
    text = one_rule("FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16", events=40)   # 320 a day in all
    with pytest.raises(ScheduleError, match="可能多达 .* 次会议"):
        ics_events(text, "many.ics", *YEAR)
    assert len(ics_events(one_rule("FREQ=DAILY;BYHOUR=9,10", events=3), "few.ics", date(2026, 3, 2),
                          date(2026, 3, 8))) == 42


def test_a_busy_but_real_calendar_is_accepted() -> None:
    # 10 series three times a week and a monthly one: 30 meetings a week, within the bound
    text = one_rule("FREQ=WEEKLY;BYDAY=MO,WE,FR", events=10) + one_rule("FREQ=MONTHLY;BYMONTHDAY=1,15", uid="m")
    assert len(ics_events(text.replace("END:VCALENDAR\r\nBEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//CN\r\n",
                                       ""), "busy.ics", *YEAR)) == 10 * (156 + 1) + 24  # each DTSTART (Thursday 1 January) counts too

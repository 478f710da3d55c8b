"""Meeting series: readable cadences, the day-off policy, exceptions, reminders, change notices, compliance."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import chinese_calendar
import pytest
import yaml

from bot.calendars.holidays import HolidayCalendar
from bot.calendars.meetings import MeetingOccurrence, MeetingSchedule, expand_meetings
from bot.calendars.recurrence import cadence_rrule
from bot.calendars.reminders import parse_reminder
from bot.clock import BEIJING
from bot.errors import ScheduleError, UnknownTarget
from bot.inputs import load_holidays, load_meetings
from bot.rules.meetings import (
    AnnouncedMeeting,
    format_compliance,
    meeting_compliance,
    plan_meetings,
    sample_change_context,
    sample_meeting_context,
)
from bot.templates.render import TemplateLibrary, validate_template

ROOT = Path(__file__).resolve().parents[2]
BRANCHES = {"b1": "第一党支部", "b2": "第二党支部", "b3": "机关党支部"}
BRANCH_TARGETS = {"b1": ("b1_group",), "b2": ("b2_group",), "b3": ("b3_group",)}


@pytest.fixture(scope="module")
def calendar() -> HolidayCalendar:
    return load_holidays(ROOT / "schedules" / "holidays")


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=BEIJING)


def series(**fields: Any) -> dict[str, Any]:
    base = {"id": "b1-committee", "kind": "支委会", "title": "第一党支部支委会", "branch": "b1",
            "start": "14:30", "duration": "90m", "location": "三楼会议室"}
    if not {"repeat", "rrule", "date"} & set(fields):
        base["repeat"] = "每月第一个周五"
    if "date" not in fields:
        base["from"] = date(2026, 1, 1)
    return {**base, **fields}


def write_schedule(tmp_path: Path, *items: dict[str, Any], **top: Any) -> Path:
    path = tmp_path / "meetings.yaml"
    path.write_text(yaml.safe_dump({**top, "series": list(items)}, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")
    return path


def load(tmp_path: Path, *items: dict[str, Any], **top: Any) -> MeetingSchedule:
    return load_meetings(write_schedule(tmp_path, *items, **top), tmp_path)


def expand(schedule: MeetingSchedule, calendar: HolidayCalendar, start: date = date(2026, 1, 1),
           end: date = date(2026, 12, 31)) -> list[MeetingOccurrence]:
    return expand_meetings(schedule, calendar, start, end, {})


def held_days(tmp_path: Path, calendar: HolidayCalendar, start: date, end: date, **fields: Any) -> list[str]:
    found = expand(load(tmp_path, series(**fields)), calendar, start, end)
    return [m.start.date().isoformat() for m in found]


# --- readable cadences ----------------------------------------------------------------------------

CADENCES = [
    ("每月第五个周五", date(2026, 1, 1), date(2026, 12, 31),
     ["2026-01-30", "2026-05-29", "2026-07-31", "2026-10-30"]),
    ("每月31日", date(2026, 1, 1), date(2026, 12, 31),
     ["2026-01-31", "2026-03-31", "2026-05-31", "2026-07-31", "2026-08-31", "2026-10-31", "2026-12-31"]),
    ("每月最后一天", date(2026, 1, 1), date(2026, 4, 30), ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]),
    ("每月最后一天", date(2028, 1, 1), date(2028, 3, 31), ["2028-01-31", "2028-02-29", "2028-03-31"]),
    ("每月29日", date(2026, 1, 1), date(2026, 3, 31), ["2026-01-29", "2026-03-29"]),
    ("每年2月29日", date(2026, 1, 1), date(2029, 12, 31), ["2028-02-29"]),
    ("每季度最后一个月第二个周三", date(2026, 1, 1), date(2026, 12, 31),
     ["2026-03-11", "2026-06-10", "2026-09-09", "2026-12-09"]),
    ("每季度第一个月10日", date(2026, 1, 1), date(2026, 12, 31),
     ["2026-01-10", "2026-04-10", "2026-07-10", "2026-10-10"]),
    ("每年1月第三个周四", date(2026, 1, 1), date(2027, 12, 31), ["2026-01-15", "2027-01-21"]),
    ("每年7月1日", date(2026, 1, 1), date(2027, 12, 31), ["2026-07-01", "2027-07-01"]),
    ("每月最后一个周四", date(2026, 1, 1), date(2026, 3, 31), ["2026-01-29", "2026-02-26", "2026-03-26"]),
    ("每周五", date(2026, 3, 1), date(2026, 3, 20), ["2026-03-06", "2026-03-13", "2026-03-20"]),
    ("每两周三", date(2026, 3, 1), date(2026, 3, 31), ["2026-03-11", "2026-03-25"]),
    ("每天", date(2026, 3, 2), date(2026, 3, 4), ["2026-03-02", "2026-03-03", "2026-03-04"]),
]


@pytest.mark.parametrize("phrase,start,end,expected", CADENCES, ids=[
    "fifth-friday-2026-01-30..10-30", "31st-skips-short-months-2026", "month-end-2026-02-28",
    "month-end-leap-2028-02-29", "29th-skips-2026-02", "feb-29-only-2028", "quarterly-last-month-2nd-wed-2026-03-11",
    "quarterly-first-month-10th-2026-01-10", "yearly-jan-3rd-thu-2026-01-15", "yearly-07-01",
    "last-thursday-2026-01-29", "weekly-friday-2026-03-06", "fortnightly-wed-2026-03-11", "daily-2026-03-02"])
def test_readable_cadence(tmp_path: Path, calendar: HolidayCalendar, phrase: str, start: date, end: date,
                          expected: list[str]) -> None:
    kwargs = {"from": date(2026, 3, 11)} if phrase == "每两周三" else {}
    days = held_days(tmp_path, calendar, start, end, repeat=phrase, on_day_off="keep", **kwargs)
    assert days == expected


@pytest.mark.parametrize("phrase,rule", [
    ("每月第一个周五", "FREQ=MONTHLY;BYDAY=1FR"),
    ("每季度最后一个月第二个周三", "FREQ=MONTHLY;BYMONTH=3,6,9,12;BYDAY=2WE"),
    ("每年十二月最后一天", "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=-1"),
    ("每隔一周星期一", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO"),
])
def test_cadence_is_translated_to_an_rrule(phrase: str, rule: str) -> None:
    assert cadence_rrule(phrase) == rule


def test_rrule_key_gives_the_same_days_as_the_phrase(tmp_path: Path, calendar: HolidayCalendar) -> None:
    window = (date(2026, 1, 1), date(2026, 6, 30))
    readable = held_days(tmp_path, calendar, *window, repeat="每月第一个周五")
    raw = held_days(tmp_path, calendar, *window, rrule="FREQ=MONTHLY;BYDAY=1FR")
    assert readable == raw


@pytest.mark.parametrize("phrase", ["隔三差五", "每月32日", "每季度第四个月1日", "每月第六个周一"])
def test_unknown_cadence_names_file_line_phrase_and_forms(tmp_path: Path, phrase: str) -> None:
    path = write_schedule(tmp_path, series(repeat=phrase))
    with pytest.raises(ScheduleError) as caught:
        load_meetings(path, tmp_path)
    message = str(caught.value)
    repeat_line = path.read_text(encoding="utf-8").splitlines().index(f"  repeat: {phrase}") + 1
    assert caught.value.line == repeat_line and str(path) in message
    assert "每月第一个周五" in message and "每季度最后一个月第二个周三" in message


# --- the day-off policy ---------------------------------------------------------------------------


def test_the_calendar_agrees_on_the_days_these_tests_use(calendar: HolidayCalendar) -> None:
    for day in (date(2026, 10, 2), date(2026, 2, 14), date(2026, 2, 23), date(2026, 1, 4)):
        assert calendar.is_workday(day) == chinese_calendar.is_workday(day)


def test_national_day_2026_10_02_moves_to_the_next_working_day(tmp_path: Path, calendar: HolidayCalendar) -> None:
    found = expand(load(tmp_path, series(on_day_off="next_workday")), calendar, date(2026, 10, 1), date(2026, 10, 31))
    first = found[0]
    assert first.start == bj(2026, 10, 8, 14, 30) and first.end == bj(2026, 10, 8, 16, 0)
    assert first.moved_from == date(2026, 10, 2)
    assert first.uid == "b1-committee@2026-10-02T14:30"
    assert first.original_start == bj(2026, 10, 2, 14, 30)
    [reminder] = [r for r in plan(found, calendar, now=bj(2026, 9, 1, 9)) if r.due_at.date() == date(2026, 9, 30)]
    assert reminder.reason == ("会议系列 b1-committee：第一党支部支委会 2026年10月8日（周四）14:30，"
                               "原定10月2日（周五），遇休息日顺延，提前1个工作日提醒")


@pytest.mark.parametrize("original,held", [
    ("2026-02-07", "2026-02-09"),   # an ordinary Saturday → Monday
    ("2026-02-14", "2026-02-14"),   # 调休上班 Saturday: a working day, kept
    ("2026-02-21", "2026-02-24"),   # 春节 → the first working day after the block
    ("2026-02-28", "2026-02-28"),   # 调休上班 Saturday
], ids=["2026-02-07-saturday", "2026-02-14-adjusted-workday", "2026-02-21-spring-festival",
        "2026-02-28-adjusted-workday"])
def test_saturday_meetings_follow_the_official_calendar(tmp_path: Path, calendar: HolidayCalendar,
                                                        original: str, held: str) -> None:
    found = expand(load(tmp_path, series(repeat="每周六")), calendar, date(2026, 2, 1), date(2026, 2, 28))
    by_original = {m.original_start.date().isoformat(): m for m in found}
    assert by_original[original].start.date().isoformat() == held
    assert (by_original[original].moved_from is None) == (original == held)


def test_skip_policy_drops_meetings_on_days_off(tmp_path: Path, calendar: HolidayCalendar) -> None:
    days = held_days(tmp_path, calendar, date(2026, 1, 1), date(2026, 12, 31), on_day_off="skip")
    assert not {"2026-01-02", "2026-01-04", "2026-05-01", "2026-05-06", "2026-10-02", "2026-10-08"} & set(days)
    assert len(days) == 9


def test_keep_policy_holds_the_meeting_on_the_day_off(tmp_path: Path, calendar: HolidayCalendar) -> None:
    days = held_days(tmp_path, calendar, date(2026, 10, 1), date(2026, 10, 31), on_day_off="keep")
    assert days == ["2026-10-02"]


def test_a_one_off_meeting_is_held_on_its_date_unless_told_otherwise(tmp_path: Path,
                                                                     calendar: HolidayCalendar) -> None:
    saturday = {"id": "review", "date": date(2026, 3, 7)}
    assert held_days(tmp_path, calendar, date(2026, 3, 1), date(2026, 3, 31), **saturday) == ["2026-03-07"]
    moved = held_days(tmp_path, calendar, date(2026, 3, 1), date(2026, 3, 31), **saturday, on_day_off="next_workday")
    assert moved == ["2026-03-09"]


def test_a_holiday_shift_across_the_window_start_is_found(tmp_path: Path, calendar: HolidayCalendar) -> None:
    # originally 2026-10-02, held 2026-10-08: a window starting 2026-10-05 still sees it
    found = expand(load(tmp_path, series()), calendar, date(2026, 10, 5), date(2026, 10, 10))
    assert [m.uid for m in found] == ["b1-committee@2026-10-02T14:30"]


# --- exceptions -----------------------------------------------------------------------------------


def test_skip_and_move_exceptions(tmp_path: Path, calendar: HolidayCalendar) -> None:
    exceptions = [{"skip": date(2026, 2, 6)},
                  {"move": date(2026, 10, 2), "to": "2026-10-09 15:00", "location": "五楼党员活动室"},
                  {"move": date(2026, 11, 6), "to": "16:00"}]
    found = expand(load(tmp_path, series(exceptions=exceptions)), calendar)
    by_uid = {m.uid: m for m in found}
    assert "b1-committee@2026-02-06T14:30" not in by_uid
    october = by_uid["b1-committee@2026-10-02T14:30"]
    assert (october.start, october.end, october.location) == (bj(2026, 10, 9, 15), bj(2026, 10, 9, 16, 30), "五楼党员活动室")
    assert october.moved_from is None  # an administrator's move, not a holiday shift
    assert by_uid["b1-committee@2026-11-06T14:30"].start == bj(2026, 11, 6, 16)


def test_an_exception_on_a_date_the_series_does_not_have_names_the_nearby_dates(tmp_path: Path) -> None:
    path = write_schedule(tmp_path, series(exceptions=[{"skip": date(2026, 10, 9)}]))
    with pytest.raises(ScheduleError) as caught:
        load_meetings(path, tmp_path)
    assert "2026-10-09 不是该系列原定的会议日期" in str(caught.value)
    assert "2026-10-02" in str(caught.value) and caught.value.line is not None


# --- bad input ------------------------------------------------------------------------------------

BAD = [
    ({"colour": "red"}, "未知的字段 colour", "colour"),
    ({"start": "25:00"}, "开始时间 25:00 无效", "start"),
    ({"duration": "一会儿"}, "时长 一会儿 无法识别", "duration"),
    ({"on_day_off": "postpone"}, "未知的节假日处理方式 postpone", "on_day_off"),
    ({"reminders": ["提前一会儿"]}, "无法识别的提醒时间“提前一会儿”", "reminders"),
    ({"video": "meeting.tencent.com/x"}, "不是网址", "video"),
    ({"branch": None}, "没有指定推送给谁", None),
    ({"id": "一支部"}, "系列标识 '一支部' 无效", "id"),
    ({"until": date(2025, 12, 1)}, "早于 from", "until"),
]


@pytest.mark.parametrize("fields,problem,key", BAD, ids=[
    "unknown-key", "start-25:00", "duration", "policy", "reminder", "video", "no-audience", "id", "until"])
def test_bad_series_are_refused_with_the_line(tmp_path: Path, fields: dict[str, Any], problem: str,
                                              key: str | None) -> None:
    path = write_schedule(tmp_path, series(**fields))
    with pytest.raises(ScheduleError) as caught:
        load_meetings(path, tmp_path)
    assert problem in str(caught.value) and "处理办法" in str(caught.value)
    lines = path.read_text(encoding="utf-8").splitlines()
    expected = next(i for i, text in enumerate(lines, 1) if text.lstrip(" -").startswith(f"{key}:")) if key else 2
    assert caught.value.line == expected


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError, match="系列标识 b1-committee 重复"):
        load(tmp_path, series(), series())


@pytest.mark.parametrize("text,minutes", [("90m", 90), ("1.5h", 90), ("2小时", 120), ("1小时30分钟", 90), (45, 45)])
def test_durations(tmp_path: Path, calendar: HolidayCalendar, text: Any, minutes: int) -> None:
    meeting = expand(load(tmp_path, series(duration=text)), calendar, date(2026, 3, 1), date(2026, 3, 31))[0]
    assert (meeting.end - meeting.start).total_seconds() == minutes * 60


# --- reminder offsets -----------------------------------------------------------------------------

REMINDERS = [
    ("提前1个工作日 16:00", bj(2026, 2, 24, 14, 30), bj(2026, 2, 14, 16, 0)),   # over 春节 to the 调休 Saturday
    ("提前1个工作日 16:00", bj(2026, 3, 6, 14, 30), bj(2026, 3, 5, 16, 0)),
    ("提前2天 09:00", bj(2026, 10, 8, 14, 30), bj(2026, 9, 30, 9, 0)),          # 10-06 is off → 09-30
    ("提前2小时", bj(2026, 10, 8, 9, 0), bj(2026, 10, 8, 7, 0)),
    ("提前30分钟", bj(2026, 3, 6, 14, 30), bj(2026, 3, 6, 14, 0)),
    ("当天 08:30", bj(2026, 3, 6, 14, 30), bj(2026, 3, 6, 8, 30)),
    ("提前2小时", bj(2026, 3, 7, 9, 0), bj(2026, 3, 7, 7, 0)),                  # Saturday meeting kept: same day
    ("提前1.5小时", bj(2026, 3, 9, 0, 30), bj(2026, 3, 6, 23, 0)),              # Sunday night → Friday
]


@pytest.mark.parametrize("phrase,start,due", REMINDERS, ids=[
    "2026-02-24-to-2026-02-14-adjusted-saturday", "2026-03-06-to-03-05", "2026-10-08-two-days-to-09-30",
    "2026-10-08-two-hours", "2026-03-06-thirty-minutes", "2026-03-06-same-day", "2026-03-07-saturday-same-day",
    "2026-03-09-after-midnight-to-friday"])
def test_reminder_offsets(calendar: HolidayCalendar, phrase: str, start: datetime, due: datetime) -> None:
    assert parse_reminder(phrase).due(start, calendar) == due


def test_2026_02_14_is_an_adjusted_working_saturday() -> None:
    assert date(2026, 2, 14).weekday() == 5 and chinese_calendar.is_workday(date(2026, 2, 14))


def test_reminder_labels_are_stable_ascii() -> None:
    labels = [parse_reminder(p).label for p in ("提前1个工作日 16:00", "提前 2 小时", "提前120分钟", "当天 08:30")]
    assert labels == ["1wd@16:00", "120min", "120min", "0d@08:30"]


# --- the plan: reminders --------------------------------------------------------------------------


def plan(found: list[MeetingOccurrence], calendar: HolidayCalendar, now: datetime,
         announced: dict[str, AnnouncedMeeting] | None = None) -> list:
    return plan_meetings(found, now=now, start=date(2026, 1, 1), end=date(2026, 12, 31), calendar=calendar,
                         branch_names=BRANCHES, branch_targets=BRANCH_TARGETS, announced=announced or {})


def march(tmp_path: Path, calendar: HolidayCalendar, **fields: Any) -> list[MeetingOccurrence]:
    return expand(load(tmp_path, series(**fields)), calendar, date(2026, 3, 1), date(2026, 3, 31))


def test_a_meeting_reminder_occurrence(tmp_path: Path, calendar: HolidayCalendar) -> None:
    found = march(tmp_path, calendar, reminders=["提前1个工作日 16:00"])
    [reminder] = plan(found, calendar, now=bj(2026, 3, 1, 9))
    assert (reminder.rule, reminder.kind, reminder.template) == ("meeting:b1-committee", "meeting_reminder", "meeting_reminder")
    assert reminder.occurrence == "b1-committee@2026-03-06T14:30#1wd@16:00"
    assert reminder.due_at == bj(2026, 3, 5, 16) and reminder.targets == ("b1_group",)
    assert reminder.reason == "会议系列 b1-committee：第一党支部支委会 2026年3月6日（周五）14:30，提前1个工作日提醒"
    assert reminder.meta["meeting_uid"] == "b1-committee@2026-03-06T14:30"
    assert reminder.meta["meeting_start"] == "2026-03-06T14:30:00+08:00"
    meeting = reminder.context["meeting"]
    assert set(meeting) == set(sample_meeting_context()["meeting"])
    assert (meeting["start_time"], meeting["end_time"], meeting["branch"], meeting["moved_from"]) == (
        "14:30", "16:00", "第一党支部", "")


@pytest.mark.parametrize("now,planned", [
    (bj(2026, 3, 5, 15, 59), ["1wd@16:00", "120min"]),
    (bj(2026, 3, 5, 16, 0), ["120min"]),
    (bj(2026, 3, 6, 12, 30), []),
], ids=["2026-03-05-15:59-both", "2026-03-05-16:00-first-is-past", "2026-03-06-12:30-all-past"])
def test_reminders_already_in_the_past_are_not_planned(tmp_path: Path, calendar: HolidayCalendar,
                                                       now: datetime, planned: list[str]) -> None:
    found = march(tmp_path, calendar, **{"from": date(2026, 3, 1), "until": date(2026, 3, 31)})
    ids = [o.occurrence.split("#")[1] for o in plan(found, calendar, now)]
    assert ids == planned


def test_a_reminder_after_the_start_is_not_planned(tmp_path: Path, calendar: HolidayCalendar) -> None:
    found = march(tmp_path, calendar, start="08:00", reminders=["当天 08:30"])
    assert plan(found, calendar, now=bj(2026, 3, 1)) == []


def test_a_moved_meetings_reminders_follow_it_under_the_same_ids(tmp_path: Path, calendar: HolidayCalendar) -> None:
    before = plan(march(tmp_path, calendar), calendar, now=bj(2026, 3, 1))
    moved = march(tmp_path, calendar, exceptions=[{"move": date(2026, 3, 6), "to": "2026-03-09 15:00"}])
    after = plan(moved, calendar, now=bj(2026, 3, 1))
    assert [o.occurrence for o in before] == [o.occurrence for o in after]
    assert [o.due_at for o in after] == [bj(2026, 3, 6, 16), bj(2026, 3, 9, 13)]


def test_targets_come_from_to_when_given(tmp_path: Path, calendar: HolidayCalendar) -> None:
    found = march(tmp_path, calendar, branch=None, to=["all_groups"])
    assert {o.targets for o in plan(found, calendar, now=bj(2026, 3, 1))} == {("all_groups",)}


# --- the plan: change notices ---------------------------------------------------------------------


def told() -> dict[str, AnnouncedMeeting]:
    """What the reminder for the March committee meeting told the group."""
    uid = "b1-committee@2026-03-06T14:30"
    return {uid: AnnouncedMeeting(uid, bj(2026, 3, 6, 14, 30), bj(2026, 3, 6, 16), "第一党支部支委会", "三楼会议室",
                                  ("b1_group",), "b1-committee")}


def changes(occurrences: list) -> list:
    return [o for o in occurrences if o.kind == "meeting_change"]


def test_an_announced_meeting_that_moves_gets_exactly_one_change_notice(tmp_path: Path,
                                                                        calendar: HolidayCalendar) -> None:
    now = bj(2026, 3, 5, 17)
    found = march(tmp_path, calendar, exceptions=[{"move": date(2026, 3, 6), "to": "2026-03-09 15:00"}])
    [change] = changes(plan(found, calendar, now, told()))
    assert change.occurrence == "b1-committee@2026-03-06T14:30!change:2026-03-09T15:00:00+08:00"
    assert (change.rule, change.template, change.due_at, change.targets) == (
        "meeting:b1-committee", "meeting_change", now, ("b1_group",))
    assert change.context["change"] == {
        "old_start": "2026-03-06T14:30:00+08:00", "old_end": "2026-03-06T16:00:00+08:00",
        "new_start": "2026-03-09T15:00:00+08:00", "new_end": "2026-03-09T16:30:00+08:00", "cancelled": False,
        "old_location": "三楼会议室", "new_location": "三楼会议室"}
    assert "原定2026年3月6日（周五）14:30，改为2026年3月9日（周一）15:00" in change.reason


def test_planning_twice_gives_the_same_ids(tmp_path: Path, calendar: HolidayCalendar) -> None:
    found = march(tmp_path, calendar, exceptions=[{"move": date(2026, 3, 6), "to": "2026-03-09 15:00"}])
    first = plan(found, calendar, bj(2026, 3, 5, 17), told())
    second = plan(found, calendar, bj(2026, 3, 5, 18), told())
    assert [(o.rule, o.occurrence) for o in first] == [(o.rule, o.occurrence) for o in second]


def test_a_second_different_move_is_a_new_notice(tmp_path: Path, calendar: HolidayCalendar) -> None:
    first = march(tmp_path, calendar, exceptions=[{"move": date(2026, 3, 6), "to": "2026-03-09 15:00"}])
    second = march(tmp_path, calendar, exceptions=[{"move": date(2026, 3, 6), "to": "2026-03-10 15:00"}])
    ids = {changes(plan(found, calendar, bj(2026, 3, 5, 17), told()))[0].occurrence for found in (first, second)}
    assert len(ids) == 2


def test_a_new_place_is_announced(tmp_path: Path, calendar: HolidayCalendar) -> None:
    found = march(tmp_path, calendar, exceptions=[{"move": date(2026, 3, 6), "location": "五楼党员活动室"}])
    [change] = changes(plan(found, calendar, bj(2026, 3, 5, 17), told()))
    assert change.context["change"]["new_location"] == "五楼党员活动室"
    assert change.occurrence.startswith("b1-committee@2026-03-06T14:30!change:2026-03-06T14:30:00+08:00")


def test_a_cancelled_meeting_gets_one_cancellation(tmp_path: Path, calendar: HolidayCalendar) -> None:
    found = march(tmp_path, calendar, exceptions=[{"skip": date(2026, 3, 6)}])
    [change] = changes(plan(found, calendar, bj(2026, 3, 5, 17), told()))
    assert change.occurrence == "b1-committee@2026-03-06T14:30!change:cancelled"
    assert change.context["change"]["cancelled"] is True and change.context["change"]["new_start"] == ""
    assert change.rule == "meeting:b1-committee" and change.reason.endswith("已取消")


@pytest.mark.parametrize("exceptions,announced", [
    ([{"move": date(2026, 3, 6), "to": "2026-03-09 15:00"}], {}),
    ([], told()),
    ([{"skip": date(2026, 3, 6)}], {}),
], ids=["moved-never-announced", "announced-unchanged", "cancelled-never-announced"])
def test_no_notice_without_an_announced_change(tmp_path: Path, calendar: HolidayCalendar,
                                               exceptions: list, announced: dict) -> None:
    found = march(tmp_path, calendar, exceptions=exceptions)
    assert changes(plan(found, calendar, bj(2026, 3, 5, 17), announced)) == []


def test_a_meeting_already_over_gets_no_notice(tmp_path: Path, calendar: HolidayCalendar) -> None:
    found = march(tmp_path, calendar, exceptions=[{"skip": date(2026, 3, 6)}])
    assert changes(plan(found, calendar, bj(2026, 3, 7, 9), told())) == []


# --- templates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,sample", [("meeting_reminder", sample_meeting_context()),
                                         ("meeting_change", sample_change_context())])
def test_shipped_templates_accept_the_sample_contexts(name: str, sample: dict) -> None:
    library = TemplateLibrary(ROOT / "messages")
    context = {**sample, "organisation": {"name": "示例局"}}
    assert validate_template(library, name, library.default_text(name) or "", context) == []


def test_planned_contexts_render(tmp_path: Path, calendar: HolidayCalendar) -> None:
    library = TemplateLibrary(ROOT / "messages")
    found = march(tmp_path, calendar, exceptions=[{"skip": date(2026, 3, 6)}])
    [change] = changes(plan(found, calendar, bj(2026, 3, 5, 17), told()))
    text = library.render("meeting_change", {**change.context, "organisation": {"name": "示例局"}}).text
    assert "第一党支部支委会" in text and "取消" in text


# --- compliance -----------------------------------------------------------------------------------


def test_the_shipped_schedule_meets_the_rules(calendar: HolidayCalendar) -> None:
    schedule = load_meetings(ROOT / "schedules" / "meetings.yaml", ROOT / "schedules")
    rows = meeting_compliance(expand(schedule, calendar), 2026, BRANCHES)
    assert len(rows) == 12 and all(row.ok for row in rows), format_compliance(rows)


def test_a_shortfall_is_reported(tmp_path: Path, calendar: HolidayCalendar) -> None:
    schedule = load(tmp_path, series(exceptions=[{"skip": date(2026, 2, 6)}]),
                    series(id="b1-lecture", kind="党课", title="党课", repeat="每年3月第二个周三"))
    rows = {row.kind: row for row in meeting_compliance(expand(schedule, calendar), 2026, {"b1": "第一党支部"})}
    assert (rows["支委会"].count, rows["支委会"].missing) == (11, ("2月",))
    assert rows["党课"].missing == ("第二季度", "第三季度", "第四季度")
    assert rows["支部党员大会"].count == 0 and len(rows["支部党员大会"].missing) == 4
    table = format_compliance(rows.values())
    assert "2月未安排支委会" in table and "第一党支部" in table


def test_a_meeting_moved_from_far_away_into_the_window_is_found(tmp_path: Path, calendar: HolidayCalendar) -> None:
    schedule = load(tmp_path, series(exceptions=[{"move": date(2026, 2, 6), "to": "2026-04-20 15:00"}]))
    found = expand(schedule, calendar, date(2026, 4, 15), date(2026, 4, 30))
    assert [(m.uid, m.start) for m in found] == [("b1-committee@2026-02-06T14:30", bj(2026, 4, 20, 15))]


def test_a_rule_that_never_happens_is_refused(tmp_path: Path) -> None:
    path = write_schedule(tmp_path, series(repeat="每年2月29日", until=date(2027, 12, 31)))
    with pytest.raises(ScheduleError, match="没有任何会议日期"):
        load_meetings(path, tmp_path)


def test_group_names_are_resolved_when_a_resolver_is_given(tmp_path: Path, calendar: HolidayCalendar) -> None:
    found = march(tmp_path, calendar, branch=None, to=["all_groups"])
    planned = plan_meetings(found, now=bj(2026, 3, 1), start=date(2026, 3, 1), end=date(2026, 3, 31),
                            calendar=calendar, branch_names={}, branch_targets={}, announced={},
                            resolve=lambda names: ("b1_group", "b2_group") if "all_groups" in names else tuple(names))
    assert {o.targets for o in planned} == {("b1_group", "b2_group")}


def test_a_branch_without_a_group_is_an_error_not_silence(tmp_path: Path, calendar: HolidayCalendar) -> None:
    with pytest.raises(UnknownTarget, match="b1"):
        plan_meetings(march(tmp_path, calendar), now=bj(2026, 3, 1), start=date(2026, 3, 1), end=date(2026, 3, 31),
                      calendar=calendar, branch_names={}, branch_targets={"b1": ()}, announced={})


@pytest.mark.parametrize("rule", [
    "FREQ=SECONDLY", "FREQ=MINUTELY;INTERVAL=2", "FREQ=HOURLY", "FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8",
    "RRULE:FREQ=WEEKLY;BYDAY=MO;BYMINUTE=0,5,10,15,20,25,30,35,40,45,50,55",
])
def test_a_dense_rrule_in_meetings_yaml_is_refused_with_its_line(tmp_path: Path, rule: str) -> None:
    path = write_schedule(tmp_path, series(rrule=rule))
    with pytest.raises(ScheduleError, match="每天可能多达") as caught:
        load_meetings(path, tmp_path)
    assert caught.value.line is not None and caught.value.key and "rrule" in caught.value.key

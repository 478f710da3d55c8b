"""Meetings around holidays: two occurrences moved onto one day are one meeting; a date that rests
on an arrangement not yet published says so and is never stated as fact."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
import yaml

from bot.calendars.holidays import HolidayCalendar
from bot.calendars.meetings import MeetingOccurrence, expand_meetings
from bot.clock import BEIJING
from bot.inputs import load_holidays, load_meetings
from bot.rules.meetings import AnnouncedMeeting, plan_meetings
from bot.templates.render import TemplateLibrary

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def calendar() -> HolidayCalendar:
    """The bundled arrangements: 2026 is published, 2027 is not."""
    return load_holidays(ROOT / "schedules" / "holidays")


def expand(tmp_path: Path, calendar: HolidayCalendar, repeat: str, first: date, last: date) -> list[MeetingOccurrence]:
    entry = {"id": "b1-group", "kind": "党小组会", "title": "第一党支部党小组会", "branch": "b1", "start": "09:30",
             "duration": "60m", "location": "三楼会议室", "repeat": repeat, "from": first,
             "reminders": ["提前1个工作日 16:00"]}
    path = tmp_path / "meetings.yaml"
    path.write_text(yaml.safe_dump({"series": [entry]}, allow_unicode=True), encoding="utf-8")
    return expand_meetings(load_meetings(path, tmp_path), calendar, first, last, {})


def plan(found: list[MeetingOccurrence], calendar: HolidayCalendar, now: datetime, first: date, last: date,
         announced: dict[str, AnnouncedMeeting] | None = None) -> list:
    return plan_meetings(found, now=now, start=first, end=last, calendar=calendar,
                         branch_names={"b1": "第一党支部"}, branch_targets={"b1": ("b1_group",)},
                         announced=announced or {})


def text(occurrence) -> str:  # type: ignore[no-untyped-def]
    return TemplateLibrary(ROOT / "messages").render(occurrence.template, occurrence.context).text


def spring_2026(tmp_path: Path, calendar: HolidayCalendar) -> list[MeetingOccurrence]:
    return expand(tmp_path, calendar, "每周一", date(2026, 2, 9), date(2026, 3, 2))


def test_the_holiday_mondays_of_2026_become_one_meeting_on_the_24th(tmp_path: Path, calendar: HolidayCalendar) -> None:
    found = spring_2026(tmp_path, calendar)
    assert [m.start for m in found] == [datetime(2026, 2, d, 9, 30, tzinfo=BEIJING) for d in (9, 24)] + [
        datetime(2026, 3, 2, 9, 30, tzinfo=BEIJING)]
    merged = found[1]
    assert merged.uid == "b1-group@2026-02-16T09:30" and merged.moved_from == date(2026, 2, 16)
    assert merged.merged == (("b1-group@2026-02-23T09:30", date(2026, 2, 23)),)


def test_the_group_gets_one_reminder_that_says_the_two_were_merged(tmp_path: Path, calendar: HolidayCalendar) -> None:
    reminders = plan(spring_2026(tmp_path, calendar), calendar, datetime(2026, 2, 1, tzinfo=BEIJING),
                     date(2026, 2, 10), date(2026, 2, 26))
    assert len(reminders) == 1 and reminders[0].due_at == datetime(2026, 2, 14, 16, tzinfo=BEIJING)  # a Saturday worked
    assert "原定2月16日（周一）、2月23日（周一）的会议合并于本日召开" in text(reminders[0])
    assert "遇休息日顺延并合并为一次" in reminders[0].reason and not reminders[0].provisional


def test_an_announced_occurrence_that_was_merged_is_not_reported_cancelled(tmp_path: Path,
                                                                            calendar: HolidayCalendar) -> None:
    start = datetime(2026, 2, 24, 9, 30, tzinfo=BEIJING)
    told = AnnouncedMeeting("b1-group@2026-02-23T09:30", start, start.replace(hour=10, minute=30),
                            "第一党支部党小组会", "三楼会议室", ("b1_group",), "b1-group")
    planned = plan(spring_2026(tmp_path, calendar), calendar, datetime(2026, 2, 15, tzinfo=BEIJING),
                   date(2026, 2, 15), date(2026, 2, 28), {told.uid: told})
    assert "meeting_change" not in [o.kind for o in planned]


def test_a_meeting_moved_by_a_guessed_2027_calendar_says_it_is_a_guess(tmp_path: Path,
                                                                         calendar: HolidayCalendar) -> None:
    """2027-02-05 (Friday) is 除夕 by law; whether the notice makes it a day off is not yet known."""
    found = expand(tmp_path, calendar, "每月第一个周五", date(2027, 2, 1), date(2027, 2, 28))
    [reminder] = plan(found, calendar, datetime(2026, 12, 1, tzinfo=BEIJING), date(2027, 1, 1), date(2027, 2, 28))
    message = text(reminder)
    assert reminder.provisional
    assert "因节假日，本次会议由" not in message  # not stated as fact
    assert "2027年节假日安排尚未发布，暂按法定节假日推算，原定2月5日（周五）的会议顺延至本日召开，如有调整将另行通知。" in message
    assert "暂按法定节假日推算顺延（2027年节假日安排未发布）" in reminder.reason


def test_an_unmoved_meeting_in_an_unpublished_year_says_its_date_may_change(tmp_path: Path,
                                                                           calendar: HolidayCalendar) -> None:
    found = expand(tmp_path, calendar, "每月第一个周五", date(2027, 3, 1), date(2027, 3, 31))
    [reminder] = plan(found, calendar, datetime(2026, 12, 1, tzinfo=BEIJING), date(2027, 3, 1), date(2027, 3, 31))
    assert reminder.provisional and "（2027年节假日安排未发布，日期暂定）" in reminder.reason
    assert "2027年节假日安排尚未发布，如有调整将另行通知。" in text(reminder)


def test_a_published_year_says_nothing_about_guesses(tmp_path: Path, calendar: HolidayCalendar) -> None:
    found = expand(tmp_path, calendar, "每月第一个周五", date(2026, 10, 1), date(2026, 10, 31))
    [reminder] = plan(found, calendar, datetime(2026, 9, 1, tzinfo=BEIJING), date(2026, 9, 1), date(2026, 10, 31))
    assert not reminder.provisional and "尚未发布" not in text(reminder)
    assert "因节假日，本次会议由10月2日（周五）顺延。" in text(reminder)

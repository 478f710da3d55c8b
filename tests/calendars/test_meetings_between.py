"""The plan's meetings are expanded a month or two at a time and remembered for the loaded schedule.

Every confirmation asks for a re-plan; expanding every series again each time was most of the
service's CPU in the year benchmark. Remembering must never change what is planned: for every
window of the year, around the holidays too, the result is the fresh expansion's.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from bot.calendars.holidays import HolidayCalendar
from bot.calendars.meetings import expand_meetings, meetings_between
from bot.inputs import load_holidays, load_meetings

ROOT = Path(__file__).resolve().parents[2]
# Weekly on Mondays (moved after the Spring Festival block onto one day), monthly on the 1st (a
# day off on 1 May and 1 October), and a one-off meeting across a month's edge.
SERIES = [
    {"id": "b1-weekly", "kind": "党小组会", "title": "第一党支部党小组会", "branch": "b1", "start": "09:30",
     "duration": "60m", "repeat": "每周一", "from": date(2026, 1, 5), "reminders": ["提前1个工作日 16:00"]},
    {"id": "b2-monthly", "kind": "支委会", "title": "第二党支部支委会", "branch": "b2", "start": "15:00",
     "duration": "90m", "repeat": "每月1日", "from": date(2026, 1, 1), "on_day_off": "next_workday",
     "reminders": ["提前1天 09:00"]},
    {"id": "b3-once", "kind": "党课", "title": "专题党课", "branch": "b3", "start": "14:30", "duration": "2h",
     "date": date(2026, 7, 31), "reminders": ["当天 08:30"]},
]


@pytest.fixture(scope="module")
def calendar() -> HolidayCalendar:
    return load_holidays(ROOT / "schedules" / "holidays")


@pytest.fixture
def schedule(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "meetings.yaml"
    path.write_text(yaml.safe_dump({"series": SERIES}, allow_unicode=True), encoding="utf-8")
    return load_meetings(path, tmp_path)


def test_every_window_of_the_year_plans_the_meetings_a_fresh_expansion_gives(schedule, calendar) -> None:
    for offset in range(365):  # as the service re-plans: from the grace window back to the horizon
        start = date(2026, 1, 1) + timedelta(days=offset)
        end = start + timedelta(days=3)
        assert meetings_between(schedule, calendar, start, end, {}) == expand_meetings(schedule, calendar, start, end, {})


def test_a_re_plan_the_same_month_reuses_the_expansion_and_a_reload_does_not(schedule, calendar, tmp_path: Path) -> None:
    texts: dict[str, str] = {}  # the loaded snapshot's .ics texts: one object until the next reload
    first = meetings_between(schedule, calendar, date(2026, 2, 2), date(2026, 2, 12), texts)
    again = meetings_between(schedule, calendar, date(2026, 2, 3), date(2026, 2, 13), texts)
    assert first and any(a is b for a in first for b in again)  # the same objects: nothing expanded again
    # A reload brings a new schedule object: the weekly meeting moved to Tuesdays is planned at once.
    moved = [{**SERIES[0], "repeat": "每周二"}]
    path = tmp_path / "moved.yaml"
    path.write_text(yaml.safe_dump({"series": moved}, allow_unicode=True), encoding="utf-8")
    reloaded = load_meetings(path, tmp_path)
    found = meetings_between(reloaded, calendar, date(2026, 2, 10), date(2026, 2, 13), texts)
    assert [o.start.weekday() for o in found] == [1]

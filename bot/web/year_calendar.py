"""The year as month grids for the 日历 page: days off, adjusted working days (调休上班), days only
provisionally known (the year's arrangement not yet published) and, on each day, the sends planned.

Pure: a function of the holiday calendar, the occurrences planned for the year and today.
"""

from __future__ import annotations

import calendar as month_calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.calendars.holidays import HolidayCalendar
from bot.calendars.statutory import statutory_days_off
from bot.clock import BEIJING

WEEK_HEADER = ("一", "二", "三", "四", "五", "六", "日")


@dataclass(frozen=True)
class DayCell:
    day: date
    css: str        # work | weekend | holiday | adjusted | provisional
    note: str       # in words, for the tooltip and the day's list
    sends: int      # messages planned that day (one per occurrence)
    today: bool


@dataclass(frozen=True)
class MonthGrid:
    month: int
    weeks: list[list[DayCell | None]]  # Monday first; None pads the first and last week


def day_cell(calendar: HolidayCalendar, day: date, sends: int, today: date) -> DayCell:
    period = calendar.period_of(day)
    if period is not None:
        css, note = "holiday", f"{period.name}放假"
    elif calendar.covers(day) and day.weekday() >= 5 and calendar.is_workday(day):
        css, note = "adjusted", "调休上班"
    elif not calendar.covers(day) and day in statutory_days_off(day.year):
        css, note = "provisional", f"法定节假日（{day.year}年安排尚未发布，暂按法定日期）"
    elif day.weekday() >= 5:
        css, note = "weekend", "休息日"
    else:
        css, note = "work", "工作日"
    return DayCell(day, css, note, sends, day == today)


def year_grid(calendar: HolidayCalendar, year: int, sends_by_day: dict[date, int], today: date) -> list[MonthGrid]:
    weeks_of = month_calendar.Calendar(firstweekday=0)
    months = []
    for month in range(1, 13):
        weeks = [[day_cell(calendar, d, sends_by_day.get(d, 0), today) if d.month == month else None for d in week]
                 for week in weeks_of.monthdatescalendar(year, month)]
        months.append(MonthGrid(month, weeks))
    return months


def by_day(occurrences: list[Any]) -> dict[date, list[Any]]:
    """Occurrences grouped by their Beijing day, in time order."""
    days: dict[date, list[Any]] = defaultdict(list)
    for occurrence in sorted(occurrences, key=lambda o: o.due_at):
        days[occurrence.due_at.astimezone(BEIJING).date()].append(occurrence)
    return days


def period_span(first: date, last: date) -> str:
    """'2月15日至2月23日，共9天'; a one-day holiday is '1月1日，共1天'."""
    days = (last - first).days + 1
    start = f"{first.month}月{first.day}日"
    return f"{start}，共1天" if days == 1 else f"{start}至{last.month}月{last.day}日，共{days}天"

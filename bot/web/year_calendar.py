"""Month grids of days off and adjusted working days (调休上班), the one builder for two pages: the 日历
year view (also days only provisionally known, and on each day the sends planned) and the preview of
an imported State Council notice (the months it touches). Both render with ``_month.html``.

Pure: a function of the holiday calendar (or the notice), the occurrences planned and today.
"""

from __future__ import annotations

import calendar as month_calendar
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.calendars.holiday_file import HolidayNotice
from bot.calendars.holidays import HolidayCalendar
from bot.calendars.statutory import statutory_days_off
from bot.clock import BEIJING

WEEK_HEADER = ("一", "二", "三", "四", "五", "六", "日")


@dataclass(frozen=True)
class DayCell:
    day: date
    css: str          # work | weekend | holiday | adjusted | provisional
    note: str         # in words, for the tooltip and the day's list
    sends: int = 0    # messages planned that day (one per occurrence)
    today: bool = False
    mark: str = ""    # 休 or 班 written in the cell (the notice preview: no sends to show there)


@dataclass(frozen=True)
class MonthGrid:
    title: str                          # 2月, or 2027年2月 where the months span years
    weeks: list[list[DayCell | None]]  # Monday first; None pads the first and last week


def month_grid(year: int, month: int, title: str, cell: Callable[[date], DayCell]) -> MonthGrid:
    """THE month grid: Monday-first weeks of ``cell(day)``, padded with None outside the month."""
    weeks = month_calendar.Calendar(firstweekday=0).monthdatescalendar(year, month)
    return MonthGrid(title, [[cell(d) if d.month == month else None for d in week] for week in weeks])


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
    def cell(day: date) -> DayCell:
        return day_cell(calendar, day, sends_by_day.get(day, 0), today)
    return [month_grid(year, month, f"{month}月", cell) for month in range(1, 13)]


def notice_grids(notice: HolidayNotice) -> list[MonthGrid]:
    """The months with a day off or an adjusted working day in ``notice`` (the import preview)."""
    off = {d: p.name for p in notice.periods for d in _days(p.first_day, p.last_day)}
    work = {d for p in notice.periods for d in p.workdays}

    def cell(day: date) -> DayCell:
        if day in off:
            return DayCell(day, "holiday", f"{off[day]}放假", mark="休")
        if day in work:
            return DayCell(day, "adjusted", "调休上班", mark="班")
        return DayCell(day, *(("weekend", "休息日") if day.weekday() >= 5 else ("work", "工作日")))
    months = sorted({(d.year, d.month) for d in (*off, *work)})
    return [month_grid(year, month, f"{year}年{month}月", cell) for year, month in months]


def _days(first: date, last: date) -> list[date]:
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]


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

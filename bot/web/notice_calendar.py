"""The month grids of an arrangement, as the console's import preview shows them."""

from __future__ import annotations

import calendar as monthly
from dataclasses import dataclass
from datetime import date

from bot.calendars.holiday_file import HolidayNotice


@dataclass(frozen=True)
class Cell:
    day: date | None  # None: a blank before the 1st or after the last day
    css: str = ""     # off (in a block) · work (adjusted working day) · weekend
    label: str = ""   # the block's name, or 班


def _cell(day: date, off: dict[date, str], work: set[date]) -> Cell:
    if day in off:
        return Cell(day, "off", off[day])
    if day in work:
        return Cell(day, "work", "班")
    return Cell(day, "weekend" if day.weekday() >= 5 else "")


def month_grids(notice: HolidayNotice) -> list[tuple[str, list[list[Cell]]]]:
    """(title, weeks Monday first) for every month with a day off or an adjusted working day."""
    off = {d: p.name for p in notice.periods for d in _days(p.first_day, p.last_day)}
    work = {d for p in notice.periods for d in p.workdays}
    months = sorted({(d.year, d.month) for d in (*off, *work)})
    grids = []
    for year, month in months:
        weeks = monthly.Calendar(firstweekday=0).monthdatescalendar(year, month)
        rows = [[_cell(d, off, work) if d.month == month else Cell(None) for d in week] for week in weeks]
        grids.append((f"{year}年{month}月", rows))
    return grids


def _days(first: date, last: date) -> list[date]:
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]

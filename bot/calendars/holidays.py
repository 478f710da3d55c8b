"""Working-day arithmetic over the State Council's holiday arrangements.

One YAML file per notice year under ``schedules/holidays/`` is the truth (format in its README;
read by ``bot.inputs``, checked by ``bot.calendars.holiday_file``). Days of a calendar year without
a file fall back to the days off the law fixes (``bot.calendars.statutory``) and weekends, so
meetings and studies can still be planned; ``covers()`` tells the caller that such an answer is provisional.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from typing import Any

from bot.calendars.holiday_file import HolidayNotice, HolidayPeriod, span_text
from bot.calendars.statutory import statutory_days_off
from bot.errors import MissingHolidayData


def days_between(first: date, last: date) -> Iterator[date]:
    """Every day from first to last, both included."""
    for offset in range((last - first).days + 1):
        yield first + timedelta(days=offset)


class HolidayCalendar:
    """Days off and working days from the bundled notices; where there is none, the law's own
    days off and weekends."""

    def __init__(self, notices: Iterable[HolidayNotice]) -> None:
        self._notices: dict[int, HolidayNotice] = {}
        self._off: dict[date, HolidayPeriod] = {}
        self._adjusted: dict[date, HolidayPeriod] = {}
        ordered = sorted(notices, key=lambda n: n.year)
        for notice in ordered:
            self._add_notice(notice)
        for notice in ordered:
            self._add_workdays(notice)
        self.years: frozenset[int] = frozenset(self._notices)
        self._periods = sorted((p for n in ordered for p in n.periods), key=lambda p: p.first_day)

    def covers(self, day: date) -> bool:
        """Whether an official arrangement decides this day (False: the answer is provisional)."""
        return day.year in self.years or day in self._off or day in self._adjusted

    def is_day_off(self, day: date) -> bool:
        if day in self._off:
            return True
        if day in self._adjusted:
            return False
        if day.year not in self.years and day in statutory_days_off(day.year):
            return True  # the law's own days off, before the notice (still provisional)
        return day.weekday() >= 5

    def is_workday(self, day: date) -> bool:
        return not self.is_day_off(day)

    def periods(self, year: int | None = None) -> list[HolidayPeriod]:
        """Blocks ordered by first day; ``year`` is the notice year."""
        return [p for p in self._periods if year is None or p.year == year]

    def periods_between(self, start: date, end: date) -> list[HolidayPeriod]:
        """Blocks whose first day lies within [start, end]."""
        return [p for p in self._periods if start <= p.first_day <= end]

    def period_of(self, day: date) -> HolidayPeriod | None:
        """The block of days off containing day (an adjusted working day belongs to none)."""
        return self._off.get(day)

    def workday_before(self, day: date, n: int = 1) -> date:
        return self._walk(day, -1, n)

    def workday_after(self, day: date, n: int = 1) -> date:
        return self._walk(day, 1, n)

    def workday_on_or_after(self, day: date) -> date:
        return day if self.is_workday(day) else self.workday_after(day)

    def workday_on_or_before(self, day: date) -> date:
        return day if self.is_workday(day) else self.workday_before(day)

    def missing_years(self, start: date, end: date) -> list[int]:
        """Calendar years touched by [start, end] that have no official arrangement."""
        return [year for year in range(start.year, end.year + 1) if year not in self.years]

    def notice(self, year: int) -> dict[str, Any]:
        if year not in self._notices:
            raise MissingHolidayData(year)
        notice = self._notices[year]
        amendments = [{"published": a.published, "title": a.title, "summary": a.summary}
                      for a in notice.amendments]
        return {"title": notice.title, "published": notice.published, "amendments": amendments}

    def _walk(self, day: date, step: int, n: int) -> date:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        while n:
            day += timedelta(days=step)
            n -= self.is_workday(day)
        return day

    def _add_notice(self, notice: HolidayNotice) -> None:
        if notice.year in self._notices:
            other = self._notices[notice.year].source
            raise notice.error(f"{notice.year} 年的节假日安排重复（另见 {other}）",
                               ("year",), "每个年度只保留一个文件")
        self._notices[notice.year] = notice
        for index, period in enumerate(notice.periods):
            for day in days_between(period.first_day, period.last_day):
                if day in self._off:
                    raise notice.error(_overlap(period, self._off[day]), ("holidays", index, "first_day"),
                                       "核对通知中的放假起止日期，各放假期间不能重叠")
                self._off[day] = period

    def _add_workdays(self, notice: HolidayNotice) -> None:
        for index, period in enumerate(notice.periods):
            for number, workday in enumerate(period.workdays):
                other = self._off.get(workday) or self._adjusted.get(workday)
                if other is not None:
                    raise notice.error(_claimed(workday, other, workday in self._off),
                                       ("holidays", index, "workdays", number), "核对通知，删除或更正该日期")
                self._adjusted[workday] = period


def _overlap(period: HolidayPeriod, other: HolidayPeriod) -> str:
    return f"“{period.name}”放假期间{span_text(period)}与 {other.year} 年“{other.name}”放假期间{span_text(other)}重叠"


def _claimed(day: date, other: HolidayPeriod, off: bool) -> str:
    if off:
        return f"调休上班日 {day} 位于 {other.year} 年“{other.name}”放假期间{span_text(other)}之内"
    return f"调休上班日 {day} 已列在 {other.year} 年“{other.name}”之下"

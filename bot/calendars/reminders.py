"""Reminder offsets as people say them: 提前1个工作日 16:00 · 提前2天 09:00 · 提前2小时 · 提前30分钟 · 当天 08:30.

An offset turns a meeting's start into the instant its reminder is due. A reminder that would
land on a day off moves to the previous working day at the same time, except on the meeting's
own day (a meeting held on a day off is attended that day, so its same-day reminder stays).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol

ACCEPTED_REMINDERS = "“提前1个工作日 16:00”“提前2天 09:00”“提前2小时”“提前30分钟”“当天 08:30”"

_TIME = r"\s*(?P<hour>\d{1,2})[:：](?P<minute>\d{2})"
_FORMS = (
    ("workdays", re.compile(rf"提前(?P<n>\d+)个?工作日{_TIME}")),
    ("days", re.compile(rf"提前(?P<n>\d+)天{_TIME}")),
    ("same_day", re.compile(rf"当天{_TIME}")),
    ("hours", re.compile(r"提前(?P<n>\d+(?:\.\d+)?)\s*个?小时")),
    ("minutes", re.compile(r"提前(?P<n>\d+)\s*分钟")),
)


class DayOffCalendar(Protocol):
    def is_day_off(self, day: date) -> bool: ...
    def workday_before(self, day: date, n: int = 1) -> date: ...
    def workday_on_or_before(self, day: date) -> date: ...


class UnknownReminder(ValueError):
    """The phrase is not an accepted reminder offset; ``str()`` says why, in Chinese."""


@dataclass(frozen=True)
class ReminderOffset:
    """How long before a meeting its reminder is due: whole (working) days at a time, or minutes."""

    unit: str                 # workdays | days | minutes
    amount: int               # days, working days or minutes before the start
    at: time | None = None    # wall time for day-based offsets

    def __post_init__(self) -> None:
        if self.unit not in ("workdays", "days", "minutes"):
            raise ValueError(f"unknown unit {self.unit}")
        if (self.at is None) != (self.unit == "minutes"):
            raise ValueError("day-based offsets need a time, minute offsets none")

    @property
    def label(self) -> str:
        """A stable ASCII id, part of the reminder's occurrence key: '1wd@16:00', '120min'."""
        if self.unit == "minutes":
            return f"{self.amount}min"
        suffix = "wd" if self.unit == "workdays" else "d"
        return f"{self.amount}{suffix}@{self.at:%H:%M}"

    @property
    def words(self) -> str:
        """'提前1个工作日' / '提前2小时' / '当天' for reasons and reports."""
        if self.unit == "workdays":
            return f"提前{self.amount}个工作日"
        if self.unit == "days":
            return f"提前{self.amount}天" if self.amount else "当天"
        hours, minutes = divmod(self.amount, 60)
        return f"提前{hours}小时" + (f"{minutes}分钟" if minutes else "") if hours else f"提前{minutes}分钟"

    def due(self, start: datetime, calendar: DayOffCalendar) -> datetime:
        """The instant the reminder is due for a meeting starting at ``start`` (aware)."""
        if self.unit == "minutes":
            moment = start - timedelta(minutes=self.amount)
        elif self.unit == "workdays":
            moment = _at(calendar.workday_before(start.date(), self.amount), self.at, start)
        else:
            moment = _at(start.date() - timedelta(days=self.amount), self.at, start)
        if moment.date() != start.date() and calendar.is_day_off(moment.date()):
            moment = _at(calendar.workday_on_or_before(moment.date()), moment.timetz(), start)
        return moment


def parse_reminder(phrase: str) -> ReminderOffset:
    """'提前1个工作日 16:00' → ReminderOffset('workdays', 1, 16:00); UnknownReminder otherwise."""
    text = re.sub(r"\s+", "", str(phrase))
    for unit, pattern in _FORMS:
        if match := pattern.fullmatch(text):
            return _offset(unit, match, phrase)
    raise UnknownReminder(f"无法识别的提醒时间“{phrase}”")


def _offset(unit: str, match: re.Match[str], phrase: str) -> ReminderOffset:
    if unit == "hours":
        return ReminderOffset("minutes", round(float(match["n"]) * 60))
    if unit == "minutes":
        return ReminderOffset("minutes", int(match["n"]))
    hour, minute = int(match["hour"]), int(match["minute"])
    if hour > 23 or minute > 59:
        raise UnknownReminder(f"提醒时间“{phrase}”中的时刻不存在")
    amount = 0 if unit == "same_day" else int(match["n"])
    if unit == "workdays" and amount < 1:
        raise UnknownReminder(f"“{phrase}”：工作日数至少为 1")
    return ReminderOffset("days" if unit == "same_day" else unit, amount, time(hour, minute))


def _at(day: date, at: time | None, start: datetime) -> datetime:
    wall = at.replace(tzinfo=None) if at else time()
    return datetime.combine(day, wall, tzinfo=start.tzinfo)

"""One notice file (``schedules/holidays/<year>.yaml``): its records, their invariants, and reading it.

A ``HolidayPeriod`` checks its own days when it is built; reading a file turns every problem
into a ``ScheduleError`` that names the file, the line, the key and the fix. The calendar built
from the notices is ``bot.calendars.holidays``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from bot.errors import ScheduleError
from bot.yamlfile import KeyPath, LineMap, dotted

FESTIVAL_NAMES: dict[str, str] = {
    "new_year": "元旦", "spring_festival": "春节", "tomb_sweeping": "清明节", "labour_day": "劳动节",
    "dragon_boat": "端午节", "mid_autumn": "中秋节", "national_day": "国庆节",
}
FESTIVAL_IDS: tuple[str, ...] = tuple(FESTIVAL_NAMES)
WEEKDAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
README = "schedules/holidays/README.md"


def notice_span(year: int) -> tuple[date, date]:
    """The days a notice may arrange: its year and the December before (元旦 blocks)."""
    return date(year - 1, 12, 1), date(year, 12, 31)


class InvalidPeriod(ScheduleError):
    """A period breaks an invariant; ``path`` is the key path inside the period's entry."""

    def __init__(self, problem: str, path: KeyPath, fix: str) -> None:
        self.path = path
        super().__init__(problem, key=dotted(path), fix=fix)


@dataclass(frozen=True)
class HolidayPeriod:
    """One block of days off as the notice arranges it, with its adjusted working days."""

    name: str
    festivals: tuple[str, ...]
    year: int
    first_day: date
    last_day: date
    workdays: tuple[date, ...]
    notice_title: str

    def __post_init__(self) -> None:
        self._check_festivals()
        self._check_days()
        for index, workday in enumerate(self.workdays):
            self._check_workday(index, workday)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def key(self) -> str:
        """Stable id such as '2020-mid_autumn+national_day' (festivals in canonical order)."""
        ordered = sorted(self.festivals, key=FESTIVAL_IDS.index)
        return f"{self.year}-{'+'.join(ordered)}"

    def contains(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day

    def _check_festivals(self) -> None:
        if not self.festivals:
            raise InvalidPeriod("未填写节日标识", ("festivals",),
                                f"填写该放假期间包含的节日，可选：{_festival_list()}")
        for index, festival in enumerate(self.festivals):
            if festival not in FESTIVAL_NAMES:
                raise InvalidPeriod(f"未知的节日标识 {festival}", ("festivals", index),
                                    f"改为以下之一：{_festival_list()}")
        if len(set(self.festivals)) != len(self.festivals):
            raise InvalidPeriod("节日标识重复", ("festivals",), "每个节日标识只写一次")

    def _check_days(self) -> None:
        for key in ("first_day", "last_day"):
            self._check_in_span(getattr(self, key), (key,))
        if self.last_day < self.first_day:
            raise InvalidPeriod(f"放假结束日期 {self.last_day} 早于开始日期 {self.first_day}", ("last_day",),
                                "核对通知中的放假起止日期")

    def _check_workday(self, index: int, workday: date) -> None:
        path = ("workdays", index)
        self._check_in_span(workday, path)
        if workday.weekday() < 5:
            raise InvalidPeriod(f"调休上班日 {workday} 是{WEEKDAY_NAMES[workday.weekday()]}，不是周六或周日",
                                path, "核对通知，调休上班日只能是周六或周日，工作日无需列出")
        if self.contains(workday):
            raise InvalidPeriod(f"调休上班日 {workday} 位于本放假期间{span_text(self)}之内",
                                path, "核对通知，删除该日期或更正放假起止日期")
        if self.workdays.index(workday) != index:
            raise InvalidPeriod(f"调休上班日 {workday} 重复", path, "删除重复的日期")

    def _check_in_span(self, day: date, path: KeyPath) -> None:
        first, last = notice_span(self.year)
        if not first <= day <= last:
            raise InvalidPeriod(f"日期 {day} 不在 {self.year} 年或 {self.year - 1} 年 12 月之内", path,
                                f"核对年份，{self.year} 年的通知只安排 {first} 至 {last} 的日期")


def _festival_list() -> str:
    return "、".join(f"{key}（{name}）" for key, name in FESTIVAL_NAMES.items())


@dataclass(frozen=True)
class Amendment:
    published: date
    title: str
    summary: str


@dataclass(frozen=True)
class HolidayNotice:
    """One notice year: the notice, its amendments and its periods in file order (amended state)."""

    year: int
    title: str
    published: date
    amendments: tuple[Amendment, ...]
    periods: tuple[HolidayPeriod, ...]
    source: Path | None = None
    lines: LineMap | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for index, period in enumerate(self.periods):
            for number, festival in enumerate(period.festivals):
                if festival in seen:
                    raise self.error(f"节日 {festival}（{FESTIVAL_NAMES[festival]}）在本年度通知中出现两次",
                                     ("holidays", index, "festivals", number),
                                     "每个节日只属于一个放假期间，删除或更正重复的条目")
                seen.add(festival)

    def error(self, problem: str, path: KeyPath, fix: str) -> ScheduleError:
        line = self.lines.line_of(path) if self.lines else None
        return ScheduleError(problem, file=self.source, line=line, key=dotted(path), fix=fix)


def span_text(period: HolidayPeriod) -> str:
    """A period's days as the error messages show them."""
    return f"（{period.first_day} 至 {period.last_day}）"


# Checking a parsed file: every error names the file, the line, the key and the fix.

DATE_FIX = "按 YYYY-MM-DD 格式填写，如 2026-10-01"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PERIOD_KEYS = ("name", "festivals", "first_day", "last_day", "workdays")


def holiday_notice(data: Any, lines: LineMap, path: Path) -> HolidayNotice:
    """Validate one notice file (``<year>.yaml``) as ``bot.inputs`` parsed it."""
    reader = _Reader(path, lines)
    top = reader.mapping(data, (), ("year", "notice", "holidays"), optional=("amendments",))
    year = reader.year(top["year"])
    head = reader.mapping(top["notice"], ("notice",), ("title", "published"))
    title = reader.text(head["title"], ("notice", "title"))
    entries = reader.items(top["holidays"], ("holidays",))
    if not entries:
        raise reader.fail("未列出任何放假安排", ("holidays",), f"按通知逐项填写，格式见 {README}")
    periods = tuple(reader.period(e, ("holidays", i), year, title) for i, e in enumerate(entries))
    amendments = tuple(reader.amendment(a, ("amendments", i))
                       for i, a in enumerate(reader.items(top.get("amendments", []), ("amendments",))))
    published = reader.day(head["published"], ("notice", "published"))
    return HolidayNotice(year, title, published, amendments, periods, path, lines)


@dataclass(frozen=True)
class _Reader:
    file: Path
    lines: LineMap

    def fail(self, problem: str, path: KeyPath, fix: str) -> ScheduleError:
        return ScheduleError(problem, file=self.file, line=self.lines.line_of(path), key=dotted(path) or None,
                             fix=fix)

    def mapping(self, value: Any, path: KeyPath, required: tuple[str, ...],
                optional: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail("此处应为“键: 值”的映射", path, f"格式见 {README}")
        allowed = required + optional
        for key in value:
            if key not in allowed:
                raise self.fail(f"未知的键 {key}", (*path, key),
                                f"删除该键，或改为以下之一：{'、'.join(allowed)}")
        for key in required:
            if key not in value:
                raise self.fail(f"缺少键 {key}", path, f"添加 {key}，格式见 {README}")
        return value

    def items(self, value: Any, path: KeyPath) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail("此处应为列表", path, "用“- ”逐项列出，或写 [] 表示没有")
        return value

    def text(self, value: Any, path: KeyPath) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail("此处应为非空文字", path, "填写通知中的原文")
        return value.strip()

    def day(self, value: Any, path: KeyPath) -> date:
        if type(value) is date:
            return value
        if isinstance(value, str) and _ISO_DATE.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise self.fail(f"“{value}”不是有效的日期", path, DATE_FIX)

    def year(self, value: Any) -> int:
        if type(value) is not int:
            raise self.fail(f"“{value}”不是年份", ("year",), "填写通知所安排的年度，如 2027")
        if self.file.stem != str(value):
            raise self.fail(f"文件名 {self.file.name} 与 year: {value} 不一致", ("year",),
                            f"将文件改名为 {value}.yaml，或更正 year")
        return value

    def period(self, value: Any, path: KeyPath, year: int, title: str) -> HolidayPeriod:
        entry = self.mapping(value, path, _PERIOD_KEYS)
        festivals = self.items(entry["festivals"], (*path, "festivals"))
        workdays = self.items(entry["workdays"], (*path, "workdays"))
        try:
            return HolidayPeriod(
                name=self.text(entry["name"], (*path, "name")),
                festivals=tuple(self.text(f, (*path, "festivals", i)) for i, f in enumerate(festivals)),
                year=year,
                first_day=self.day(entry["first_day"], (*path, "first_day")),
                last_day=self.day(entry["last_day"], (*path, "last_day")),
                workdays=tuple(self.day(d, (*path, "workdays", i)) for i, d in enumerate(workdays)),
                notice_title=title)
        except InvalidPeriod as exc:
            raise self.fail(exc.problem, (*path, *exc.path), exc.fix or "") from None

    def amendment(self, value: Any, path: KeyPath) -> Amendment:
        entry = self.mapping(value, path, ("published", "title", "summary"))
        return Amendment(self.day(entry["published"], (*path, "published")),
                         self.text(entry["title"], (*path, "title")),
                         self.text(entry["summary"], (*path, "summary")))


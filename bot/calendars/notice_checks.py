"""Checks of an arrangement read from a notice, before anything is written.

Each check returns Chinese sentences naming what is wrong; an empty list means the text is a
complete, self-consistent arrangement: all seven holidays, each holiday's statutory days inside
its block, every 共N天 equal to the days counted, adjusted working days on weekends and outside
every block, and no two blocks overlapping.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from bot.calendars.holiday_file import FESTIVAL_IDS, FESTIVAL_NAMES, WEEKDAY_NAMES, HolidayNotice
from bot.calendars.holidays import HolidayCalendar
from bot.calendars.lunar import FIRST_YEAR, LAST_YEAR
from bot.calendars.notice_parse import ParsedItem
from bot.calendars.statutory import statutory_days
from bot.errors import BotError, ScheduleError

NOT_A_NOTICE = ("未找到“国务院办公厅关于××××年部分节假日安排的通知”或其调整通知的标题和正文，"
                "所给内容不是节假日安排通知")
FIX_TEXT = "粘贴或上传通知全文（从标题到落款“国务院办公厅”及日期），或保存通知网页后导入"


class NoticeRefused(BotError):
    """The text is not a complete, consistent notice; ``problems`` says what is missing."""

    def __init__(self, problems: list[str], fix: str = FIX_TEXT) -> None:
        self.problems, self.fix = problems, fix
        super().__init__(f"无法导入节假日安排通知：{'；'.join(problems)}。处理办法：{fix}")


def day_text(day: date) -> str:
    """2月14日（周六）, as the notices and the messages write a day."""
    return f"{day.month}月{day.day}日（{WEEKDAY_NAMES[day.weekday()]}）"


def missing_festivals(items: Iterable[ParsedItem]) -> list[str]:
    found = {festival for item in items for festival in item.festivals}
    missing = [FESTIVAL_NAMES[f] for f in FESTIVAL_IDS if f not in found]
    return [f"缺少{'、'.join(missing)}的放假安排（通知应列出全部七个节日）"] if missing else []


def item_problems(items: Iterable[ParsedItem], year: int) -> list[str]:
    problems: list[str] = []
    for item in items:
        problems += _count_problem(item) + _statutory_problems(item, year)
    return problems


def _count_problem(item: ParsedItem) -> list[str]:
    counted = (item.last_day - item.first_day).days + 1
    if item.stated_days is None or item.stated_days == counted:
        return []
    return [f"“{item.label}”写明共{item.stated_days}天，但{day_text(item.first_day)}至"
            f"{day_text(item.last_day)}是{counted}天"]


def _statutory_problems(item: ParsedItem, year: int) -> list[str]:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return []
    problems = []
    for festival in item.festivals:
        outside = [d for d in statutory_days(festival, year) if not item.first_day <= d <= item.last_day]
        if outside:
            problems.append(f"{FESTIVAL_NAMES[festival]}的法定假日{'、'.join(map(day_text, outside))}"
                            f"不在“{item.label}”的放假期间内")
    return problems


def calendar_problems(notice: HolidayNotice, neighbours: Iterable[HolidayNotice] = ()) -> list[str]:
    """Overlapping blocks, and working days inside a block, also across neighbouring years."""
    others = [n for n in neighbours if n.year != notice.year]
    try:
        HolidayCalendar([*others, notice])
    except ScheduleError as exc:
        return [exc.problem]
    return []

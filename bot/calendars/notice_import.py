"""Importing a State Council notice: text in, the year's ``schedules/holidays/<year>.yaml`` out.

``import_notice`` is pure: it takes the text and the notices already on file and returns the
notice the year file will hold, or raises ``NoticeRefused`` naming everything that is missing or
wrong. Nothing is written here (the CLI and the console do that, after showing the result).

    plain_text (notice_text) → parse_notice (notice_parse) → checks (notice_checks) → HolidayNotice
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from bot.calendars.holiday_file import Amendment, HolidayNotice, HolidayPeriod
from bot.calendars.notice_amend import apply_amendment, build_period
from bot.calendars.notice_checks import (
    NOT_A_NOTICE,
    NoticeRefused,
    calendar_problems,
    day_text,
    item_problems,
    missing_festivals,
)
from bot.calendars.notice_parse import ParsedNotice, parse_notice
from bot.calendars.notice_text import plain_text
from bot.errors import ScheduleError

NO_ITEMS = ("所给内容不含通知正文：未找到“一、元旦：……”等放假安排条目"
            "（新闻报道、解读文章不能代替通知全文）")


@dataclass(frozen=True)
class ImportResult:
    """The year file after the import, the one it replaces, and the amendment recorded (if any)."""

    notice: HolidayNotice
    previous: HolidayNotice | None
    amendment: Amendment | None = None

    @property
    def yaml(self) -> str:
        return notice_yaml(self.notice)

    @property
    def verb(self) -> str:
        """新增 or 更新, as the summaries and the audit log say it."""
        return "更新" if self.previous is not None else "新增"

    def summary(self) -> list[str]:
        head = self.amendment.title if self.amendment else self.notice.title
        published = self.amendment.published if self.amendment else self.notice.published
        lines = [f"已读取《{head}》（{published}）"]
        if self.amendment:
            lines.append(f"调整内容：{self.amendment.summary}")
        return lines + [period_line(p) for p in self.notice.periods]


def period_line(period: HolidayPeriod) -> str:
    """元旦：12月31日（周六）… with the year written out for a day of the December before."""
    def shown(day: date) -> str:
        return day_text(day) if day.year == period.year else f"{day.year}年{day_text(day)}"
    line = f"{period.name}：{shown(period.first_day)}至{shown(period.last_day)}，共{period.days}天"
    workdays = "、".join(shown(d) for d in period.workdays)
    return f"{line}；调休上班：{workdays}" if workdays else f"{line}；无调休上班日"


def import_notice(raw: str, existing: Mapping[int, HolidayNotice], published: date | None = None) -> ImportResult:
    """Read ``raw`` (text or HTML); ``published`` overrides the date found in the text."""
    parsed = parse_notice(plain_text(raw))
    if parsed is None:
        raise NoticeRefused([NOT_A_NOTICE])
    if published is not None:
        parsed.published = published
    if parsed.published is None:
        parsed.problems.append("未见落款日期（“国务院办公厅”及日期），无法确定通知的发布日期")
    previous = existing.get(parsed.year)
    if parsed.kind == "arrangement":
        notice, amendment = _arrangement(parsed, previous), None
    else:
        notice, amendment = apply_amendment(parsed, previous)
    problems = calendar_problems(notice, existing.values())
    if problems:
        raise NoticeRefused(problems, "核对通知原文；若原文无误，检查相邻年度的节假日安排文件")
    return ImportResult(notice, previous, amendment)


def _arrangement(parsed: ParsedNotice, previous: HolidayNotice | None) -> HolidayNotice:
    if not parsed.items:
        raise NoticeRefused([NO_ITEMS])
    problems = parsed.problems + missing_festivals(parsed.items) + item_problems(parsed.items, parsed.year)
    if problems:
        raise NoticeRefused(problems)
    if previous is not None and previous.amendments:
        raise NoticeRefused([f"{parsed.year} 年的安排已记录了{len(previous.amendments)}份调整通知，"
                             "重新导入原通知会丢失这些调整"],
                            f"无需重新导入；确需替换时，先删除 schedules/holidays/{parsed.year}.yaml")
    periods = tuple(build_period(item, parsed) for item in parsed.items)
    try:
        return HolidayNotice(parsed.year, parsed.title, parsed.published, (), periods)  # type: ignore[arg-type]
    except ScheduleError as exc:
        raise NoticeRefused([exc.problem]) from None


def notice_yaml(notice: HolidayNotice) -> str:
    """The year file, in the layout of the bundled files (see schedules/holidays/README.md)."""
    lines = [f"year: {notice.year}", "notice:", f"  title: {notice.title}", f"  published: {notice.published}"]
    lines.append("amendments:" if notice.amendments else "amendments: []")
    for a in notice.amendments:
        lines += [f"  - published: {a.published}", f"    title: {a.title}", f"    summary: {a.summary}"]
    lines.append("holidays:")
    for p in notice.periods:
        lines += [f"  - name: {p.name}", f"    festivals: [{', '.join(p.festivals)}]",
                  f"    first_day: {p.first_day}", f"    last_day: {p.last_day}",
                  f"    workdays: [{', '.join(str(d) for d in p.workdays)}]"]
    return "\n".join(lines) + "\n"

"""Amendment notices: a published year changed afterwards (2019's 劳动节, 2020's 春节 extension).

An amendment changes one holiday of a year already on file and is recorded in the file's
``amendments`` with a summary in the notice's own words, so the corrections the product sends
for notices already out (``holiday_plan``) name what changed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from bot.calendars.holiday_file import WEEKDAY_NAMES, Amendment, HolidayNotice, HolidayPeriod, InvalidPeriod
from bot.calendars.notice_checks import NoticeRefused, item_problems
from bot.calendars.notice_parse import ParsedItem, ParsedNotice


def build_period(item: ParsedItem, parsed: ParsedNotice, title: str | None = None) -> HolidayPeriod:
    try:
        return HolidayPeriod(item.label, item.festivals, parsed.year, item.first_day, item.last_day,
                             item.workdays, title or parsed.title)
    except InvalidPeriod as exc:
        raise NoticeRefused([f"“{item.label}”：{exc.problem}"]) from None


def apply_amendment(parsed: ParsedNotice, previous: HolidayNotice | None) -> tuple[HolidayNotice, Amendment]:
    """The year file with the amendment applied and recorded (again: replaces the same title)."""
    if parsed.problems:
        raise NoticeRefused(parsed.problems)
    if previous is None:
        raise NoticeRefused([f"尚无 {parsed.year} 年的节假日安排，无法应用《{parsed.title}》"],
                            f"先导入《国务院办公厅关于{parsed.year}年部分节假日安排的通知》，再导入本调整通知")
    if parsed.kind == "延长":
        period, summary = _extended(parsed, previous)
    else:
        period, summary = _adjusted(parsed, previous)
    amendment = Amendment(parsed.published, parsed.title, summary)  # type: ignore[arg-type]
    return _with_period(previous, period, amendment), amendment


def _adjusted(parsed: ParsedNotice, previous: HolidayNotice) -> tuple[HolidayPeriod, str]:
    item = parsed.items[0]
    problems = item_problems([item], parsed.year)
    if problems:
        raise NoticeRefused(problems)
    old = _period_of(previous, item.festivals[0], parsed)
    period = build_period(replace(item, label=old.name, festivals=old.festivals), parsed, previous.title)
    days = f"{_day(period.first_day)}至{_day(period.last_day, period.first_day)}"
    summary = f"{old.name}放假调整为{days}，共{period.days}天"
    if period.workdays:
        summary += f"；{'、'.join(_day_weekday(d) for d in period.workdays)}上班"
    return period, summary


def _extended(parsed: ParsedNotice, previous: HolidayNotice) -> tuple[HolidayPeriod, str]:
    festival = _festival_of_title(parsed)
    old = _period_of(previous, festival, parsed)
    last = parsed.extended_to
    if last is None or last <= old.last_day:
        raise NoticeRefused([f"《{parsed.title}》所写的日期 {last} 不晚于原定最后一天 {old.last_day}"])
    cancelled = [d for d in old.workdays if old.first_day <= d <= last]
    period = replace(old, last_day=last, workdays=tuple(d for d in old.workdays if d not in cancelled))
    summary = f"{old.name}假期延长至{_day(last)}（农历{_lunar(last)}，{_weekday(last)}）"
    summary += "".join(f"；{_day_weekday(d)}不再调休上班" for d in cancelled)
    return period, summary


def _festival_of_title(parsed: ParsedNotice) -> str:
    from bot.calendars.notice_parse import FESTIVAL_IDS_BY_NAME
    return next(key for name, key in FESTIVAL_IDS_BY_NAME.items() if f"年{name}假期" in parsed.title)


def _period_of(notice: HolidayNotice, festival: str, parsed: ParsedNotice) -> HolidayPeriod:
    for period in notice.periods:
        if festival in period.festivals:
            return period
    raise NoticeRefused([f"{notice.year} 年的安排中没有《{parsed.title}》所调整的节日"])


def _with_period(notice: HolidayNotice, period: HolidayPeriod, amendment: Amendment) -> HolidayNotice:
    periods = tuple(period if p.festivals == period.festivals else p for p in notice.periods)
    kept = tuple(a for a in notice.amendments if a.title != amendment.title)
    amendments = tuple(sorted((*kept, amendment), key=lambda a: a.published))
    return replace(notice, periods=periods, amendments=amendments, source=None, lines=None)


def _day(day: date, after: date | None = None) -> str:
    """5月1日; the month is left out when it repeats the first day's (5月1日至4日)."""
    return f"{day.day}日" if after and after.month == day.month else f"{day.month}月{day.day}日"


def _weekday(day: date) -> str:
    return WEEKDAY_NAMES[day.weekday()].replace("周", "星期")


def _day_weekday(day: date) -> str:
    return f"{_day(day)}（{_weekday(day)}）"


def _lunar(day: date) -> str:
    from lunar_python import Solar  # on use: most processes never need a lunar date
    lunar = Solar.fromYmd(day.year, day.month, day.day).getLunar()
    return f"{lunar.getMonthInChinese()}月{lunar.getDayInChinese()}"

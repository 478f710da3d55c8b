"""Readable Chinese cadences (每月第一个周五) → iCalendar RRULE strings for dateutil.

The administrator writes what the branch says; this module only translates the phrase into a
rule. Expansion is always dateutil's (``rrulestr``): we never compute recurrences by hand.

A phrase is one of::

    每天 · 每周X · 每两周X
    <period><day>   period: 每月 | 每季度第N个月 | 每季度最后一个月 | 每年N月
                    day:    N日 | 最后一天 | 第N个周X | 最后一个周X

A day that a month lacks (31日, 第五个周五, 2月29日) is skipped in that month, as RFC 5545 says.

Every rule is judged by ``bot.calendars.density`` before dateutil expands it.
"""

from __future__ import annotations

import re
from datetime import datetime

from dateutil.rrule import rrule, rrulestr

from bot.calendars.density import DENSE_FIX, rrule_parts, too_dense

WEEKDAYS = {"一": "MO", "二": "TU", "三": "WE", "四": "TH", "五": "FR", "六": "SA", "日": "SU", "天": "SU"}
QUARTER_MONTHS = {1: "1,4,7,10", 2: "2,5,8,11", 3: "3,6,9,12"}
ACCEPTED_FORMS = ("每天、每周五、每两周三、每月15日、每月最后一天、每月第一个周五、每月最后一个周四、"
                  "每季度第一个月10日、每季度最后一个月第二个周三、每年1月第三个周四、每年7月1日；"
                  "也可以直接写 rrule: \"FREQ=MONTHLY;BYDAY=1FR\"")

_NUM = r"(\d{1,2}|[一二三四五六七八九十]{1,3})"
_WEEKDAY = r"(?:周|星期)([一二三四五六日天])"
_DAY = rf"(?:{_NUM}[日号]|(最后一天)|(?:第{_NUM}个|(最后一)个){_WEEKDAY})"
_DAILY = re.compile(r"每天|每日")
_WEEKLY = re.compile(r"每(?:(?P<other>两|隔一)周|周|星期)(?:周|星期)?(?P<day>[一二三四五六日天])")
_MONTHLY = re.compile(rf"(每月|每季度(?:第{_NUM}个月|(最后一)个月)|每年{_NUM}月){_DAY}")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class UnknownCadence(ValueError):
    """The phrase is not one of the accepted forms; ``str()`` says why, in Chinese."""


def chinese_number(text: str) -> int:
    """'15' / '十五' / '三十一' / '二' → int; -1 when it is not a number."""
    if text.isdigit():
        return int(text)
    digits = "一二三四五六七八九"
    tens, ten, ones = text.rpartition("十") if "十" in text else ("", "", text)
    if (tens and tens not in digits) or (ones and ones not in digits) or len(ones) > 1 or len(tens) > 1:
        return -1
    value = ((digits.index(tens) + 1) if tens else 1) * 10 if ten else 0
    return value + (digits.index(ones) + 1 if ones else 0) if (ten or ones) else -1


def cadence_rrule(phrase: str) -> str:
    """The RRULE string (without 'RRULE:') for a readable cadence; UnknownCadence otherwise."""
    text = re.sub(r"\s+", "", phrase or "")
    if _DAILY.fullmatch(text):
        return "FREQ=DAILY"
    if match := _WEEKLY.fullmatch(text):
        return _weekly(match)
    if match := _MONTHLY.fullmatch(text):
        return _monthly(match)
    raise UnknownCadence(f"无法识别的重复规则“{phrase}”")


def build_rule(rule_text: str, first: datetime, until: datetime | None = None) -> rrule:
    """A dateutil rule from an RRULE string, starting at ``first`` (naive, Beijing wall time)."""
    body = rule_text.strip().removeprefix("RRULE:")
    if re.search(r"(^|;)(DTSTART|UNTIL|COUNT)=", body, re.I):
        raise UnknownCadence("rrule 中不要写 DTSTART、UNTIL 或 COUNT")
    if problem := too_dense(rrule_parts(body)):
        raise UnknownCadence(f"{problem}。{DENSE_FIX}")
    try:
        rule = rrulestr(body, dtstart=first, ignoretz=True)
    except (ValueError, TypeError) as exc:
        raise UnknownCadence(f"rrule “{rule_text}” 不合 iCalendar 规范（{exc}）") from None
    return rule.replace(until=until) if until else rule


def _weekly(match: re.Match[str]) -> str:
    every_other, day = match["other"], WEEKDAYS[match["day"]]
    return f"FREQ=WEEKLY;INTERVAL=2;BYDAY={day}" if every_other else f"FREQ=WEEKLY;BYDAY={day}"


def _monthly(match: re.Match[str]) -> str:
    period, q_nth, q_last, year_month, *day_groups = match.groups()
    if period == "每月":
        head = "FREQ=MONTHLY"
        months: tuple[int, ...] = tuple(range(1, 13))
    elif year_month:
        month = _bounded(chinese_number(year_month), 1, 12, f"{year_month}月")
        head, months = f"FREQ=YEARLY;BYMONTH={month}", (month,)
    else:
        nth = 3 if q_last else _bounded(chinese_number(q_nth), 1, 3, f"第{q_nth}个月（每季度只有三个月）")
        head = f"FREQ=MONTHLY;BYMONTH={QUARTER_MONTHS[nth]}"
        months = tuple(int(m) for m in QUARTER_MONTHS[nth].split(","))
    return f"{head};{_day_part(day_groups, months)}"


def _day_part(groups: list[str | None], months: tuple[int, ...]) -> str:
    day_number, last_day, nth, last_nth, weekday = groups
    if last_day:
        return "BYMONTHDAY=-1"
    if day_number:
        longest = max(_DAYS_IN_MONTH[m - 1] for m in months)
        return f"BYMONTHDAY={_bounded(chinese_number(day_number), 1, longest, f'{day_number}日')}"
    ordinal = -1 if last_nth else _bounded(chinese_number(nth or ""), 1, 5, f"第{nth}个（一个月最多五个同名星期）")
    return f"BYDAY={ordinal}{WEEKDAYS[weekday or '']}"


def _bounded(value: int, low: int, high: int, words: str) -> int:
    if not low <= value <= high:
        raise UnknownCadence(f"“{words}”超出范围")
    return value

"""How many meetings a rule or a calendar may hold, judged BEFORE anything is expanded.

A meeting calendar holds a few meetings a day at most. An every-second rule would take gigabytes
and minutes to expand, and many events each within the bound can still add up to millions, so:

- ``too_dense``: one RRULE may hold at most MAX_PER_DAY occurrences on a day (from FREQ, INTERVAL
  and the BYxxx lists; an upper bound);
- ``window_bound``: the occurrences a whole calendar may hold in a window, summed over its events
  from each rule's average rate (an upper bound), at most MAX_PER_DAY a day on average.

Both only read the rule's parts: what they refuse is refused within milliseconds, in little memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date

MAX_PER_DAY = 8  # meetings a day; more is a mistake (or an attack), not a meeting calendar
_SUB_DAILY = {"SECONDLY": 86_400, "MINUTELY": 1_440, "HOURLY": 24}
DENSE_FIX = ("会议日历按天、周、月重复：改用 FREQ=DAILY、WEEKLY 或 MONTHLY，"
             f"并在 BYHOUR、BYMINUTE 中只列出真正开会的时刻（每天不超过 {MAX_PER_DAY} 次）")

Parts = Mapping[str, Sequence[object]]


def rrule_parts(body: str) -> dict[str, list[str]]:
    """'FREQ=DAILY;BYHOUR=9,14' → {'FREQ': ['DAILY'], 'BYHOUR': ['9', '14']} (upper-case names)."""
    pairs = (item.partition("=") for item in body.split(";") if item.strip())
    return {name.strip().upper(): value.split(",") for name, _, value in pairs}


def too_dense(parts: Parts) -> str | None:
    """Why the rule may hold more than MAX_PER_DAY occurrences on one day; None when it is sane."""
    per_day = _per_day(parts)
    if per_day <= MAX_PER_DAY:
        return None
    return (f"重复规则（FREQ={_freq(parts) or '?'}，INTERVAL={_interval(parts)}）每天可能多达 {per_day} 次，"
            f"超过每天 {MAX_PER_DAY} 次的上限，未展开")


def rule_bound(parts: Parts, days: int) -> int:
    """At most how many occurrences the rule holds in ``days`` days (COUNT respected)."""
    bound = math.ceil(_per_day(parts) * _day_share(parts) * days) + 1
    count = _number(parts, "COUNT", 0)
    return min(bound, count) if count > 0 else bound


def window_limit(start: date, end: date) -> int:
    """MAX_PER_DAY on average, with a week's slack for the rounding of each event's bound."""
    return MAX_PER_DAY * ((end - start).days + 8)


def _per_day(parts: Parts) -> int:
    """Occurrences on a day the rule meets: the times of day it lists."""
    freq = _freq(parts)
    if freq in _SUB_DAILY:
        slots = math.ceil(_SUB_DAILY[freq] / _interval(parts))
        if freq == "HOURLY" and parts.get("BYHOUR"):
            slots = min(slots, len(parts["BYHOUR"]))
    else:
        slots = _size(parts, "BYHOUR")
    return slots * _size(parts, "BYMINUTE") * _size(parts, "BYSECOND")


def _day_share(parts: Parts) -> float:
    """The share of days the rule meets (sub-daily rules count every day)."""
    freq, interval = _freq(parts), _interval(parts)
    weekdays = len(parts.get("BYDAY") or [])
    in_month = min(31, len(parts.get("BYMONTHDAY") or []) or 5 * weekdays or 1)
    if freq == "WEEKLY":
        return min(1.0, max(1, weekdays) / (7 * interval))
    if freq == "MONTHLY":
        return min(1.0, in_month / (28 * interval))
    if freq == "YEARLY":
        in_year = (len(parts.get("BYYEARDAY") or []) or 7 * len(parts.get("BYWEEKNO") or [])
                   or (53 * weekdays if weekdays and not parts.get("BYMONTH") else 0)
                   or _size(parts, "BYMONTH") * in_month)
        return min(1.0, in_year / (365 * interval))
    return 1.0 / interval if freq == "DAILY" else 1.0


def _freq(parts: Parts) -> str:
    return str((parts.get("FREQ") or [""])[0]).upper()


def _interval(parts: Parts) -> int:
    return max(1, _number(parts, "INTERVAL", 1))


def _number(parts: Parts, name: str, default: int) -> int:
    try:
        return int(str((parts.get(name) or [default])[0]))
    except ValueError:
        return default  # dateutil refuses it later, in its own words


def _size(parts: Parts, name: str) -> int:
    return len(parts.get(name) or [0])

"""The days the law itself makes days off, known before any State Council notice.

《全国年节及纪念日放假办法》 as revised in 2024 (in force from 2025): 元旦 1月1日; 春节 除夕 and 正月初一至
初三; 清明节 the day of the 清明 solar term; 劳动节 5月1日、2日; 端午节; 中秋节; 国庆节 10月1日至3日. The
yearly notice adds the bridging days and the weekend days worked, which no rule can foresee: a
calendar built on these alone is still provisional, only less wrong than Monday–Friday.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

FIRST_YEAR = 2025  # earlier years have their notices bundled, and the older law had other days
LAW_OF_2014 = 2014  # the version before 2025: no 除夕, one day for 劳动节


@cache
def statutory_days_off(year: int) -> frozenset[date]:
    if year < FIRST_YEAR:
        return frozenset()
    # lunar_python only when a year lacks its notice
    from bot.calendars.lunar import LAST_YEAR
    if year > LAST_YEAR:
        return frozenset()

    return frozenset(day for festival in _FESTIVALS for day in statutory_days(festival, year))


_FESTIVALS = ("new_year", "spring_festival", "tomb_sweeping", "labour_day", "dragon_boat", "mid_autumn",
              "national_day")


def statutory_days(festival: str, year: int) -> tuple[date, ...]:
    """The days the law makes off for one festival (ids of ``holiday_file.FESTIVAL_NAMES``).

    Years from 2014 follow the 2013 version of the law until 2024 and the revised one from 2025;
    a notice must put each of these days inside the festival's block.
    """
    from bot.calendars.lunar import festival_date, qingming
    revised = year >= FIRST_YEAR
    if festival == "spring_festival":
        spring = festival_date("春节", year)
        return tuple(spring + timedelta(days=d) for d in ((-1, 0, 1, 2) if revised else (0, 1, 2)))
    fixed = {"new_year": ((1, 1),), "labour_day": ((5, 1), (5, 2)) if revised else ((5, 1),),
             "national_day": ((10, 1), (10, 2), (10, 3))}
    if festival in fixed:
        return tuple(date(year, month, day) for month, day in fixed[festival])
    if festival == "tomb_sweeping":
        return (qingming(year),)
    return (festival_date({"dragon_boat": "端午", "mid_autumn": "中秋"}[festival], year),)

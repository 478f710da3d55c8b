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


@cache
def statutory_days_off(year: int) -> frozenset[date]:
    if year < FIRST_YEAR:
        return frozenset()
    # lunar_python only when a year lacks its notice
    from bot.calendars.lunar import LAST_YEAR, festival_date, qingming
    if year > LAST_YEAR:
        return frozenset()

    spring = festival_date("春节", year)
    days = {date(year, 1, 1), qingming(year), date(year, 5, 1), date(year, 5, 2),
            festival_date("端午", year), festival_date("中秋", year),
            *(date(year, 10, d) for d in (1, 2, 3)),
            *(spring + timedelta(days=d) for d in (-1, 0, 1, 2))}
    return frozenset(days)

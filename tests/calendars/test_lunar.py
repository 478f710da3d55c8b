from __future__ import annotations

from datetime import date, timedelta

import pytest
from lunar_python import Solar

from bot.calendars.lunar import FESTIVALS, UnknownFestival, festival_date
from bot.errors import ScheduleError

D = date.fromisoformat

# Each date checked against lunar_python's own Lunar -> Solar conversion and the published calendars.
DATES = [
    ("除夕", 2023, "2023-01-21"),  # 腊月三十
    ("除夕", 2024, "2024-02-09"),  # 腊月三十
    ("除夕", 2025, "2025-01-28"),  # 腊月廿九
    ("除夕", 2026, "2026-02-16"),  # 腊月廿九
    ("春节", 2026, "2026-02-17"),
    ("元宵", 2026, "2026-03-03"),
    ("端午", 2020, "2020-06-25"),  # after 闰四月
    ("端午", 2025, "2025-05-31"),
    ("七夕", 2025, "2025-08-29"),  # after 闰六月
    ("七夕", 2026, "2026-08-19"),
    ("中秋", 2023, "2023-09-29"),  # after 闰二月
    ("中秋", 2024, "2024-09-17"),
    ("中秋", 2026, "2026-09-25"),
    ("重阳", 2026, "2026-10-18"),
]


@pytest.mark.parametrize(("festival", "year", "expected"), DATES, ids=[d[2] for d in DATES])
def test_festival_date(festival: str, year: int, expected: str) -> None:
    assert festival_date(festival, year) == D(expected)


@pytest.mark.parametrize("year", range(2019, 2041), ids=str)
def test_chuxi_is_the_last_day_of_the_lunar_year(year: int) -> None:
    chuxi = festival_date("除夕", year)
    assert chuxi == festival_date("春节", year) - timedelta(days=1)
    lunar = Solar.fromYmd(chuxi.year, chuxi.month, chuxi.day).getLunar()
    assert (lunar.getMonth(), lunar.getDay() in (29, 30)) == (12, True)


def test_festivals_fall_in_their_gregorian_year() -> None:
    assert all(festival_date(f, 2027).year == 2027 for f in FESTIVALS)


def test_unknown_festival_names_the_choices() -> None:
    with pytest.raises(UnknownFestival) as caught:
        festival_date("清明", 2026)
    assert "未知的农历节日“清明”" in str(caught.value) and "除夕、春节" in str(caught.value)


def test_year_out_of_range() -> None:
    with pytest.raises(ScheduleError, match="超出农历换算范围"):
        festival_date("中秋", 1800)

"""Gregorian dates of the lunar festivals, from lunar_python (never computed by hand).

lunar_python is imported by the functions that use it: most starts never need a lunar date.

These need no State Council notice, so they can be planned for any year.
"""

from __future__ import annotations

from datetime import date, timedelta

from bot.errors import ScheduleError

# Lunar month and day of each festival; 除夕 is derived from 春节 because 腊月 often has 29 days.
_LUNAR_DAYS: dict[str, tuple[int, int]] = {
    "春节": (1, 1), "元宵": (1, 15), "端午": (5, 5), "七夕": (7, 7), "中秋": (8, 15), "重阳": (9, 9),
}
FESTIVALS: tuple[str, ...] = ("除夕", *_LUNAR_DAYS)
FIRST_YEAR, LAST_YEAR = 1901, 2099


class UnknownFestival(ScheduleError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"未知的农历节日“{name}”", fix=f"改为以下之一：{'、'.join(FESTIVALS)}")


def festival_date(festival: str, year: int) -> date:
    """The Gregorian date of a lunar festival falling in Gregorian ``year``.

    除夕 is the last day of the lunar year that ends in that year's spring: the day before 春节.
    """
    if festival not in FESTIVALS:
        raise UnknownFestival(festival)
    _check_year(year)
    if festival == "除夕":
        return festival_date("春节", year) - timedelta(days=1)
    month, day = _LUNAR_DAYS[festival]
    from lunar_python import Lunar
    solar = Lunar.fromYmd(year, month, day).getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def qingming(year: int) -> date:
    """The day of the 清明 solar term in Gregorian ``year`` (a statutory day off)."""
    _check_year(year)
    from lunar_python import Lunar
    solar = Lunar.fromYmd(year, 1, 1).getJieQiTable()["清明"]
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def _check_year(year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ScheduleError(f"年份 {year} 超出农历换算范围（{FIRST_YEAR}–{LAST_YEAR} 年）",
                            fix="核对年份是否填写正确")

"""How loudly to say that a holiday arrangement is missing (pure: years and today): `check`, the
console and the administrators' alerts say it alike."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

# (month, day) from which each level applies, loudest last.
LEVELS = (((10, 1), "提示"), ((12, 1), "警告"), ((12, 15), "严重"))
CSS = {"提示": "info", "警告": "warning", "严重": "danger"}


@dataclass(frozen=True)
class HolidayAlert:
    level: str      # 提示 | 警告 | 严重
    year: int
    message: str

    @property
    def css(self) -> str:
        return CSS[self.level]


def holiday_alert(years: Collection[int], today: date) -> HolidayAlert | None:
    """None while nothing is missing that matters yet."""
    if today.year not in years:
        return HolidayAlert("严重", today.year, _message(today.year, current=True))
    nxt = today.year + 1
    if nxt in years:
        return None
    level = None
    for (month, day), name in LEVELS:
        if today >= date(today.year, month, day):
            level = name
    return HolidayAlert(level, nxt, _message(nxt, current=False)) if level else None


def _message(year: int, current: bool) -> str:
    when = "本年度" if current else "下一年度"
    return (f"{when}（{year}年）节假日安排尚未录入：{year}年法定节假日前的廉洁提醒无法按官方安排排定，"
            f"工作日暂按法定节日当天放假、其余周一至周五上班推算（调休未知）。处理办法：国务院办公厅通知发布后，在管理后台“日历与会议”页"
            f"导入通知全文（或运行 wecom-reminder holidays import 通知.txt），生成 schedules/holidays/{year}.yaml。")

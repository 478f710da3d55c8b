"""What a delivery is about, in words, for the delivery log and the overview: the meeting's name and
time, the study item, the holiday; not the category again."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from bot.calendars.holidays import HolidayCalendar
from bot.templates.render import cn_datetime

_HEADING = re.compile(r"^[#>*\s]+|\*\*")


def subject_of(row: Any, studies: Any, calendar: HolidayCalendar) -> str:
    meta = row.meta or {}
    if meta.get("title") and meta.get("meeting_start"):
        return f"{meta['title']}（{cn_datetime(meta['meeting_start'])}）"
    if row.item and studies is not None:
        item = studies.get(row.item)
        return item.title if item is not None else row.item
    holiday = _holiday(row, meta, calendar)
    return holiday or _first_line(row.text) or row.title


def _holiday(row: Any, meta: dict[str, Any], calendar: HolidayCalendar) -> str | None:
    if not row.kind.startswith("holiday"):
        return None
    if meta.get("first_day"):
        period = calendar.period_of(date.fromisoformat(meta["first_day"]))
        if period is not None:
            return f"{period.year}年{period.name}（{period.first_day.month}月{period.first_day.day}日起放假）"
    return None


def _first_line(text: str) -> str:
    """The message's first line without markdown marks ('## 端午节廉洁过节提醒' → '端午节廉洁过节提醒')."""
    line = next((x for x in (text or "").splitlines() if x.strip()), "")
    return _HEADING.sub("", line).strip()[:60]

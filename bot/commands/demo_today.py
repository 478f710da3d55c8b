"""What the demo shows, whatever day it starts: the next holiday's notice and a study item open now.

Pure functions of the calendar, the study schedule and ``now``. The shipped schedules cover a
couple of years with gaps between study items, so on a day when no item is open the demo adds one
(marked 演示) that is published now, and when the next holiday's arrangement is not published yet
the notice names the holiday by the law's own date, without the dates off it cannot know.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from bot.calendars.holidays import HolidayCalendar
from bot.calendars.lunar import festival_date, qingming
from bot.clock import BEIJING
from bot.rules.holidays import period_context
from bot.rules.studies import StudyItem, StudySchedule

DEMO_WORKDAYS = 5  # a demo item is due at 18:00 on the fifth working day after today


def law_holidays(year: int) -> list[tuple[str, date]]:
    """The statutory holidays of ``year`` by their first day in law (《全国年节及纪念日放假办法》)."""
    return [("元旦", date(year, 1, 1)), ("春节", festival_date("春节", year) - timedelta(days=1)),
            ("清明节", qingming(year)), ("劳动节", date(year, 5, 1)), ("端午节", festival_date("端午", year)),
            ("中秋节", festival_date("中秋", year)), ("国庆节", date(year, 10, 1))]


def next_holiday(calendar: HolidayCalendar, today: date) -> dict[str, Any]:
    """The holiday whose days off start after today, as templates see it (``holiday``)."""
    coming = [p for year in (today.year, today.year + 1) for p in calendar.periods(year) if p.first_day > today]
    if coming:
        return period_context(min(coming, key=lambda p: p.first_day))
    name, day = min((h for year in (today.year, today.year + 1) for h in law_holidays(year) if h[1] > today),
                    key=lambda h: h[1])
    # Not published yet: no dates off to state (days 0 leaves the sentence on the arrangement out).
    return {"name": name, "festivals": [], "first_day": day.isoformat(), "last_day": day.isoformat(), "days": 0,
            "workdays": [], "year": day.year, "statutory": True, "notice_title": ""}


def holiday_notice_context(calendar: HolidayCalendar, today: date, organisation: str) -> dict[str, Any]:
    return {"holiday": next_holiday(calendar, today), "organisation": {"name": organisation},
            "send_date": today.isoformat()}


def open_items(schedule: StudySchedule, now: datetime) -> list[StudyItem]:
    return [i for i in schedule.items if i.publish_at <= now < i.deadline]


def demo_item(schedule: StudySchedule, calendar: HolidayCalendar, now: datetime) -> StudyItem:
    """An item published at ``now``, like the next one in the schedule (its title, summary, link)."""
    upcoming = sorted((i for i in schedule.items if i.publish_at > now), key=lambda i: i.publish_at)
    model = upcoming[0] if upcoming else (schedule.items[-1] if schedule.items else None)
    due_day = calendar.workday_after(now.astimezone(BEIJING).date(), DEMO_WORKDAYS)
    title = f"{model.title}（演示）" if model else "《警示教育通报》演示期"
    return StudyItem(id=f"demo-{now.astimezone(BEIJING):%Y%m%d}", title=title, publish_at=now,
                     deadline=datetime.combine(due_day, time(18, 0), tzinfo=BEIJING), audience=None,
                     series=model.series if model else None, summary=model.summary if model else "",
                     link=model.link if model else None)

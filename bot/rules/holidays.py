"""Holiday rules → occurrences: integrity notices before each holiday, back-to-work notices after,
and one correction to those already told a holiday's dates when an amended notice changes them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from bot.calendars.holiday_file import HolidayPeriod
from bot.calendars.holidays import HolidayCalendar
from bot.config import HolidayRule, Settings
from bot.occurrence import Occurrence
from bot.templates.render import cn_date

# Lunar festivals as a notice names them.
FESTIVAL_NAMES = {"除夕": "除夕", "春节": "春节", "元宵": "元宵节", "端午": "端午节", "七夕": "七夕节",
                  "中秋": "中秋节", "重阳": "重阳节"}
# How far around the window to look for blocks whose notice may fall inside it.
_MARGIN = timedelta(days=45)
CORRECTION_TEMPLATE = "holiday_correction"


@dataclass(frozen=True)
class ToldHoliday:
    """The dates a sent pre-holiday notice (or correction) stated to one target."""

    rule: str
    first_day: date
    last_day: date
    workdays: tuple[date, ...]

    @classmethod
    def of_meta(cls, rule: str, meta: Mapping[str, Any]) -> ToldHoliday:
        return cls(rule, date.fromisoformat(meta["first_day"]), date.fromisoformat(meta["last_day"]),
                   tuple(date.fromisoformat(d) for d in meta["workdays"]))


Told = Mapping[str, Mapping[str, ToldHoliday]]  # holiday block key → target → what it was told


def plan_holiday_rules(settings: Settings, calendar: HolidayCalendar, start: date, end: date,
                       now: datetime | None = None, told: Told | None = None) -> list[Occurrence]:
    occurrences: list[Occurrence] = []
    for rule in settings.rules:
        if not rule.enabled:
            continue
        found = _festival_occurrences(rule, settings, calendar, start, end) if rule.festivals \
            else _statutory_occurrences(rule, settings, calendar, start, end)
        occurrences.extend(o for o in found if start <= o.due_at.date() <= end)
    if now is not None and told:
        occurrences.extend(_corrections(settings, calendar, told, now))
    return occurrences


def missing_holiday_notices(settings: Settings, calendar: HolidayCalendar, start: date, end: date) -> list[str]:
    """Chinese lines for the years whose arrangement is missing while statutory rules need it."""
    if not any(rule.enabled and rule.holidays for rule in settings.rules):
        return []
    # A notice year's 元旦 block can begin on 30 December of the year before.
    years = calendar.missing_years(start, end + timedelta(days=35))
    return [f"{year}年节假日安排尚未发布：{year}年各法定节假日的提醒待国务院通知后排定（待国务院通知）"
            for year in years]


def _statutory_occurrences(rule: HolidayRule, settings: Settings, calendar: HolidayCalendar,
                           start: date, end: date) -> Iterator[Occurrence]:
    for period in calendar.periods_between(start - _MARGIN, end + _MARGIN):
        if rule.holidays != "all" and not set(period.festivals) & set(rule.holidays or ()):
            continue
        if rule.kind == "holiday_notice":
            day = calendar.workday_before(period.first_day, max(rule.workdays_before, 1))
            what = f"放假前第{rule.workdays_before}个工作日" if rule.workdays_before > 1 else "放假前最后一个工作日"
        else:
            day = calendar.workday_after(period.last_day, 1)
            what = "假期结束后第一个工作日"
        reason = (f"规则 {rule.id}：{period.name}（{period.year}年）{cn_date(period.first_day)}至"
                  f"{cn_date(period.last_day)}放假，{what}{cn_date(day)}发送")
        # A notice before the holiday states its dates: remembered, so an amendment can be corrected.
        meta = told_meta(period) if rule.kind == "holiday_notice" else {}
        yield _occurrence(rule, settings, period.key, day, period_context(period), reason,
                          provisional=not calendar.covers(day), meta=meta)


def _festival_occurrences(rule: HolidayRule, settings: Settings, calendar: HolidayCalendar,
                          start: date, end: date) -> Iterator[Occurrence]:
    from bot.calendars.lunar import festival_date  # lunar_python only when a rule names a festival
    for year in range(start.year, end.year + 2):
        for festival in rule.festivals or ():
            day_of = festival_date(festival, year)
            if rule.workdays_before:
                day = calendar.workday_before(day_of, rule.workdays_before)
            else:
                day = calendar.workday_on_or_before(day_of)
            name = FESTIVAL_NAMES.get(festival, festival)
            context = {"name": name, "festivals": [festival], "first_day": day_of.isoformat(),
                       "last_day": day_of.isoformat(), "days": 0, "workdays": [], "year": year,
                       "statutory": False, "notice_title": ""}
            reason = f"规则 {rule.id}：{name}（农历，{cn_date(day_of)}），于{cn_date(day)}发送"
            yield _occurrence(rule, settings, f"{year}-{festival}", day, context, reason,
                              provisional=not calendar.covers(day))


def period_context(period: HolidayPeriod) -> dict[str, Any]:
    """What a holiday template sees for a block (the plan and the console's previews alike)."""
    return {"name": period.name, "festivals": list(period.festivals),
            "first_day": period.first_day.isoformat(), "last_day": period.last_day.isoformat(),
            "days": period.days, "workdays": [d.isoformat() for d in period.workdays],
            "year": period.year, "statutory": True, "notice_title": period.notice_title}


def told_meta(period: HolidayPeriod) -> dict[str, Any]:
    return {"holiday_period": period.key, "first_day": period.first_day.isoformat(),
            "last_day": period.last_day.isoformat(), "workdays": [d.isoformat() for d in period.workdays]}


def _occurrence(rule: HolidayRule, settings: Settings, about: str, day: date, holiday: dict[str, Any],
                reason: str, provisional: bool, meta: Mapping[str, Any] | None = None) -> Occurrence:
    due_at = datetime.combine(day, rule.at, tzinfo=settings.zone)
    context = {"holiday": holiday, "organisation": {"name": settings.organisation.name},
               "send_date": day.isoformat()}
    return Occurrence(rule=rule.id, kind=rule.kind, occurrence=about, due_at=due_at,
                      targets=settings.resolve_targets(rule.to), template=rule.template,
                      context=context, reason=reason, provisional=provisional, meta=dict(meta or {}))


# ---- corrections --------------------------------------------------------------------------------


def _corrections(settings: Settings, calendar: HolidayCalendar, told: Told, now: datetime) -> Iterator[Occurrence]:
    """One correction, due now, to the targets told other dates than the notices now give, while the
    holiday is not over. Keyed by the new dates: a second amendment is corrected again, never one twice."""
    periods = {p.key: p for p in calendar.periods()}
    today = now.astimezone(settings.zone).date()
    for key, by_target in told.items():
        period = periods.get(key)
        if period is None or period.last_day < today:
            continue
        stale: dict[ToldHoliday, list[str]] = {}
        for target, said in by_target.items():
            if (said.first_day, said.last_day, said.workdays) != (period.first_day, period.last_day, period.workdays):
                stale.setdefault(said, []).append(target)
        for said, targets in stale.items():
            yield _correction(settings, period, said, tuple(sorted(targets)), now)


def _correction(settings: Settings, period: HolidayPeriod, said: ToldHoliday, targets: tuple[str, ...],
                now: datetime) -> Occurrence:
    new = f"{period.first_day}~{period.last_day}~{'+'.join(d.isoformat() for d in period.workdays)}"
    context = {"holiday": period_context(period), "organisation": {"name": settings.organisation.name},
               "told": {"first_day": said.first_day.isoformat(), "last_day": said.last_day.isoformat(),
                        "workdays": [d.isoformat() for d in said.workdays]},
               "send_date": now.astimezone(settings.zone).date().isoformat()}
    reason = (f"{period.name}（{period.year}年）放假安排已调整：此前提醒为{cn_date(said.first_day)}至"
              f"{cn_date(said.last_day)}，现为{cn_date(period.first_day)}至{cn_date(period.last_day)}"
              f"{'，调休上班日期有变' if said.workdays != period.workdays else ''}，向已收到提醒的对象发送一次更正")
    return Occurrence(rule=said.rule, kind="holiday_correction", occurrence=f"{period.key}!correction:{new}",
                      due_at=now, targets=targets, template=CORRECTION_TEMPLATE, context=context, reason=reason,
                      meta=told_meta(period))

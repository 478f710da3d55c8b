"""Meeting series and iCalendar sources → meeting occurrences: the model and its expansion.

``expand_meetings`` is pure: series, the holiday calendar, a window and the .ics texts the
runtime fetched → every meeting in the window, with the day-off policy and the exceptions applied.
The file these series come from, schedules/meetings.yaml, is read by ``bot.calendars.meeting_file``.

An occurrence's ``uid`` is keyed on its *original* start, so a moved meeting keeps its identity:
its reminders follow it, and an announced meeting that moves can be told apart from a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol

from bot.calendars.ics import IcsEvent, ics_events, redact_url
from bot.calendars.recurrence import build_rule
from bot.calendars.reminders import ReminderOffset
from bot.clock import BEIJING

PAD = timedelta(days=31)  # a day-off shift never crosses more than one holiday block


class WorkdayCalendar(Protocol):
    """The part of ``HolidayCalendar`` meetings need."""

    def is_workday(self, day: date) -> bool: ...
    def is_day_off(self, day: date) -> bool: ...
    def workday_on_or_after(self, day: date) -> date: ...
    def workday_on_or_before(self, day: date) -> date: ...
    def workday_before(self, day: date, n: int = 1) -> date: ...
    def covers(self, day: date) -> bool: ...


@dataclass(frozen=True)
class MeetingException:
    action: str                            # skip | move
    original: date
    to_day: date | None = None             # None: the same day
    to_time: time | None = None            # None: the series' time
    overrides: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MeetingSeries:
    id: str
    kind: str
    title: str
    branch: str | None
    targets: tuple[str, ...]
    start_time: time
    duration: timedelta
    location: str
    video: str
    host: str
    agenda: str
    rule: str | None                       # RRULE; None for a one-off meeting on ``first``
    first: date
    until: date | None
    reminders: tuple[ReminderOffset, ...]
    on_day_off: str
    exceptions: tuple[MeetingException, ...] = ()
    source: str = "meetings.yaml"          # the file it comes from, for reasons and reports
    repeat: str | None = None              # the cadence as written ("每月第一个周五"), for display


@dataclass(frozen=True)
class CalendarSource:
    source_name: str                       # the file as written, or the URL: the key of ics_texts
    path: Path | None
    url: str | None
    kind: str
    branch: str | None
    targets: tuple[str, ...]
    reminders: tuple[ReminderOffset, ...]

    @property
    def shown(self) -> str:
        return self.source_name if self.url is None else redact_url(self.url)


@dataclass(frozen=True)
class MeetingSchedule:
    series: tuple[MeetingSeries, ...]
    calendars: tuple[CalendarSource, ...]
    source: str = "meetings.yaml"


@dataclass(frozen=True)
class MeetingOccurrence:
    uid: str
    series_id: str
    kind: str
    title: str
    branch: str | None
    targets: tuple[str, ...]
    start: datetime
    end: datetime
    location: str
    video: str
    host: str
    agenda: str
    status: str                            # confirmed | cancelled
    original_start: datetime
    moved_from: date | None
    source: str
    reminders: tuple[ReminderOffset, ...]
    all_day: bool = False
    merged: tuple[tuple[str, date], ...] = ()  # (uid, original day) of occurrences held as this one

    def __post_init__(self) -> None:
        if self.status not in ("confirmed", "cancelled"):
            raise ValueError(f"unknown status {self.status}")
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("meeting times must be aware")


# --- expansion ------------------------------------------------------------------------------------


def expand_meetings(schedule: MeetingSchedule, calendar: WorkdayCalendar, start: date, end: date,
                    ics_texts: Mapping[str, str]) -> list[MeetingOccurrence]:
    """Every meeting held, or originally due, between start and end (both included), by start.

    Both ends count so that a meeting moved across the window's edge is still seen, and an
    announced meeting that moved is not mistaken for one that is gone. A calendar source missing
    from ``ics_texts`` (never fetched) contributes nothing; the runtime has told the administrators.
    """
    found = [o for s in schedule.series for o in _series_occurrences(s, calendar, start - PAD, end + PAD)]
    for source in schedule.calendars:
        if source.source_name in ics_texts:
            events = ics_events(ics_texts[source.source_name], source.shown, start - PAD, end + PAD)
            found.extend(_from_ics(event, source) for event in events)
    found = [o for o in found if _touches(o, start, end)]
    return sorted(found, key=lambda o: (o.start, o.uid))


# The last expansion: (schedule, calendar, ics_texts, first, last) → occurrences.
_REMEMBERED: list[tuple[tuple[Any, ...], list[MeetingOccurrence]]] = []


def meetings_between(schedule: MeetingSchedule, calendar: WorkdayCalendar, start: date, end: date,
                     ics_texts: Mapping[str, str]) -> list[MeetingOccurrence]:
    """``expand_meetings`` for the plan, expanded a whole month or two at a time and remembered.

    Every confirmation asks for a re-plan, and expanding a hundred branches' series with dateutil
    was about a quarter of the service's CPU in the year benchmark. The schedule, the calendar and the .ics
    texts are replaced on reload, never changed, so the same three objects mean the same meetings.
    The wider window gives the same occurrences in [start, end]: a day-off shift never reaches past
    PAD, which both windows add.
    """
    first, last = start.replace(day=1), _month_end(end)
    key = (schedule, calendar, ics_texts, first, last)
    remembered = _REMEMBERED[0] if _REMEMBERED else None
    if remembered is None or not _same(remembered[0], key):
        remembered = (key, expand_meetings(schedule, calendar, first, last, ics_texts))
        _REMEMBERED[:] = [remembered]
    return [o for o in remembered[1] if _touches(o, start, end)]


def _same(one: tuple[Any, ...], other: tuple[Any, ...]) -> bool:
    return all(a is b for a, b in zip(one[:3], other[:3], strict=True)) and one[3:] == other[3:]


def _month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def _touches(occurrence: MeetingOccurrence, start: date, end: date) -> bool:
    held, original = occurrence.start.astimezone(BEIJING).date(), occurrence.original_start.date()
    return start <= held <= end or start <= original <= end


def _series_occurrences(series: MeetingSeries, calendar: WorkdayCalendar, start: date,
                        end: date) -> list[MeetingOccurrence]:
    exceptions = {e.original: e for e in series.exceptions}
    days = set(_original_days(series, start, end)) | set(exceptions)  # a move may come from far away
    held = (_held(series, day, exceptions.get(day), calendar) for day in sorted(days))
    return _merged([occurrence for occurrence in held if occurrence is not None])


def _merged(held: list[MeetingOccurrence]) -> list[MeetingOccurrence]:
    """Occurrences of one series moved onto the same start are one meeting, not two reminders.

    The holiday Mondays 2026-02-16 and 02-23 both shift to Tuesday 02-24: the earlier keeps its
    uid (its reminders are the ones already planned) and records the later one as merged.
    """
    by_start: dict[datetime, MeetingOccurrence] = {}
    for occurrence in held:  # in original order
        first = by_start.get(occurrence.start)
        if first is None:
            by_start[occurrence.start] = occurrence
        else:
            merged = (*first.merged, (occurrence.uid, occurrence.original_start.date()))
            by_start[occurrence.start] = replace(first, merged=merged)
    return list(by_start.values())


def _original_days(series: MeetingSeries, start: date, end: date) -> list[date]:
    return rule_days(series.rule, series.first, series.until, start, end, series.start_time)


def rule_days(rule_text: str | None, first: date, until: date | None, start: date, end: date,
               at: time = time()) -> list[date]:
    """The original days of a rule (None: the one-off ``first``) within [start, end]."""
    if rule_text is None:
        return [first] if start <= first <= end else []
    last = datetime.combine(until, time.max) if until else None
    rule = build_rule(rule_text, datetime.combine(first, at), last)
    found = rule.between(datetime.combine(start, time()), datetime.combine(end, time.max), inc=True)
    return [moment.date() for moment in found]


def _held(series: MeetingSeries, day: date, exception: MeetingException | None,
          calendar: WorkdayCalendar) -> MeetingOccurrence | None:
    occurrence = _occurrence(series, datetime.combine(day, series.start_time, tzinfo=BEIJING))
    if exception is not None:
        return _excepted(occurrence, exception)
    if not calendar.is_day_off(day) or series.on_day_off == "keep":
        return occurrence
    if series.on_day_off == "skip":
        return None
    moved = calendar.workday_on_or_after(day)
    return _shifted(occurrence, datetime.combine(moved, series.start_time, tzinfo=BEIJING), day)


def _excepted(occurrence: MeetingOccurrence, exception: MeetingException) -> MeetingOccurrence | None:
    if exception.action == "skip":
        return None
    start = occurrence.start
    moved = datetime.combine(exception.to_day or start.date(), exception.to_time or start.time(), tzinfo=BEIJING)
    return replace(_shifted(occurrence, moved, None), **dict(exception.overrides))


def _shifted(occurrence: MeetingOccurrence, start: datetime, moved_from: date | None) -> MeetingOccurrence:
    return replace(occurrence, start=start, end=start + (occurrence.end - occurrence.start), moved_from=moved_from)


def _occurrence(series: MeetingSeries, original: datetime) -> MeetingOccurrence:
    return MeetingOccurrence(
        uid=f"{series.id}@{original:%Y-%m-%dT%H:%M}", series_id=series.id, kind=series.kind,
        title=series.title, branch=series.branch, targets=series.targets, start=original,
        end=original + series.duration, location=series.location, video=series.video, host=series.host,
        agenda=series.agenda, status="confirmed", original_start=original, moved_from=None,
        source=series.source, reminders=series.reminders)


def _from_ics(event: IcsEvent, source: CalendarSource) -> MeetingOccurrence:
    return MeetingOccurrence(
        uid=event.uid, series_id="ics", kind=source.kind, title=event.summary or source.kind,
        branch=source.branch, targets=source.targets, start=event.start, end=event.end,
        location=event.location, video=event.video, host=event.organizer, agenda=event.description,
        status="cancelled" if event.cancelled else "confirmed", original_start=event.original_start,
        moved_from=None, source=source.shown, reminders=source.reminders, all_day=event.all_day)

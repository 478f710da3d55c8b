"""iCalendar (.ics) files and URLs → meeting events, with icalendar + recurring_ical_events.

Handles what Outlook, Google and WeCom / Tencent Meeting export: RRULE with EXDATE and
RECURRENCE-ID overrides, VTIMEZONE and Windows zone names ("China Standard Time"), all-day
events and STATUS:CANCELLED. Every time becomes Beijing time: floating times and TZIDs nobody
knows (tools write "Asia/Beijing") are read as Beijing wall time, the zone they were meant in.

``fetch_ics`` is the only part that touches the network; it keeps the last good copy on disk.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot.calendars.density import DENSE_FIX, MAX_PER_DAY, rule_bound, too_dense, window_limit
from bot.clock import BEIJING

if TYPE_CHECKING:  # loaded only when a calendar is read: most deployments have no .ics
    import icalendar
from bot.errors import ScheduleError

log = logging.getLogger(__name__)

MAX_BYTES = 5_000_000
ICS_FIX = "用日历软件重新导出该日历（iCalendar .ics 格式），或改正所指的行"
_URL = re.compile(r"https?://[^\s<>\"'，。；）]+")


@dataclass(frozen=True)
class IcsEvent:
    """One occurrence of one VEVENT, in Beijing time."""

    uid: str                  # UID@original start: stable across moves of this occurrence
    event_uid: str
    original_start: datetime
    start: datetime
    end: datetime
    all_day: bool
    summary: str
    location: str
    description: str
    video: str
    organizer: str            # the organiser's display name (CN), if any
    cancelled: bool


def parse_ics(text: str, source: str) -> icalendar.Calendar:
    """The calendar in ``text``; ScheduleError naming ``source``, the line and the fix if broken."""
    import icalendar
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        # icalendar words its errors in English: we say where, and what the line holds
        line = _quoted_line(text, str(exc))
        holds = next((f"：该行内容为“{content[:60]}”" for n, content in _logical_lines(text) if n == line), "")
        raise ScheduleError(f"无法解析的日历内容，不符合 iCalendar（.ics）格式{holds}", file=source, line=line,
                            fix=ICS_FIX) from None
    for component in calendar.walk():
        _check_component(component, text, source)
    return calendar


def ics_events(text: str, source: str, start: date, end: date) -> list[IcsEvent]:
    """Every occurrence starting between start and end (both included), ordered by start."""
    import recurring_ical_events
    calendar = parse_ics(text, source)
    cancelled_all = str(calendar.get("METHOD", "")).upper() == "CANCEL"
    try:
        _check_window(calendar, source, start, end)
        found = recurring_ical_events.of(calendar).between(start, end + timedelta(days=1))
    except (ValueError, TypeError):
        raise ScheduleError("日历中某个会议的重复规则（RRULE）无法展开，可能写法有误或日期格式不一致",
                            file=source, fix=ICS_FIX) from None
    events = [_event(component, cancelled_all) for component in found]
    return sorted(events, key=lambda e: (e.start, e.uid))


def _check_window(calendar: icalendar.Calendar, source: str, start: date, end: date) -> None:
    """Refuse, before expanding, a calendar whose events may add up to more than a sane number."""
    limit = window_limit(start, end)
    total = sum(_event_bound(component, start, end) for component in calendar.walk("VEVENT"))
    if total > limit:
        raise ScheduleError(f"日历在 {start} 至 {end} 间可能多达 {total} 次会议（平均每天超过 {MAX_PER_DAY} 次），"
                            "未展开", file=source, fix=DENSE_FIX)


def _event_bound(component: icalendar.cal.Component, start: date, end: date) -> int:
    """At most how many occurrences of this event fall between start and end."""
    first = to_beijing(component["DTSTART"].dt).date()
    extra = sum(len(getattr(item, "dts", ())) for item in _listed(component.get("RDATE")))
    if not _rules(component):
        return extra + (1 if start <= first <= end else 0)
    days = (end - max(first, start)).days + 1
    live = [rule for rule in _rules(component) if not _ended(rule, start)]
    return extra + (sum(rule_bound(rule, days) for rule in live) if days > 0 else 0)


def _ended(rule: icalendar.vRecur, start: date) -> bool:
    until = rule.get("UNTIL")
    return bool(until) and to_beijing(until[0]).date() < start


def _listed(value: object) -> list[object]:
    return [] if value is None else value if isinstance(value, list) else [value]


def _check_component(component: icalendar.cal.Component, text: str, source: str) -> None:
    for name, _message in getattr(component, "errors", []):  # icalendar's message is English: the line says it
        line = _property_line(text, name)
        holds = next((f"，该行内容为“{content[:60]}”" for n, content in _logical_lines(text) if n == line), "")
        raise ScheduleError(f"{_describe(component)}的 {name} 无法识别{holds}", file=source,
                            line=line, key=name, fix=ICS_FIX)
    for rule in _rules(component):
        if problem := too_dense(rule):
            raise ScheduleError(f"{_describe(component)}的{problem}", file=source,
                                line=_property_line(text, "RRULE"), key="RRULE", fix=DENSE_FIX)
    if component.name == "VEVENT" and "DTSTART" not in component:
        raise ScheduleError(f"{_describe(component)}缺少开始时间 DTSTART", file=source,
                            line=_property_line(text, "UID", str(component.get("UID", ""))), fix=ICS_FIX)


def _rules(component: icalendar.cal.Component) -> list[icalendar.vRecur]:
    return _listed(component.get("RRULE")) if component.name == "VEVENT" else []  # type: ignore[return-value]


def _describe(component: icalendar.cal.Component) -> str:
    summary, uid = component.get("SUMMARY"), component.get("UID")
    if component.name != "VEVENT":
        return f"{component.name} 组件"
    return f"日程“{summary or '（无标题）'}”（UID {uid or '无'}）"


def _event(component: icalendar.cal.Component, cancelled_all: bool) -> IcsEvent:
    start_value = component["DTSTART"].dt
    start = to_beijing(start_value)
    end = to_beijing(component["DTEND"].dt) if "DTEND" in component else start
    original = component.get("RECURRENCE-ID")
    original_start = to_beijing(original.dt) if original is not None else start
    event_uid = str(component.get("UID", "")) or f"{component.get('SUMMARY', '')}@{start:%Y%m%d}"
    location = str(component.get("LOCATION", "")).strip()
    description = str(component.get("DESCRIPTION", "")).strip()
    status = str(component.get("STATUS", "")).upper()
    return IcsEvent(
        uid=f"{event_uid}@{original_start:%Y-%m-%dT%H:%M}", event_uid=event_uid,
        original_start=original_start, start=start, end=max(end, start),
        all_day=not isinstance(start_value, datetime), summary=str(component.get("SUMMARY", "")).strip(),
        location="" if _URL.fullmatch(location) else location, description=description,
        video=_video_link(component, location, description), organizer=_organizer(component),
        cancelled=cancelled_all or status == "CANCELLED",
    )


def to_beijing(value: date | datetime) -> datetime:
    """An aware Beijing datetime; dates become midnight, naive times are Beijing wall time."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), tzinfo=BEIJING)
    if value.tzinfo is None:
        return value.replace(tzinfo=BEIJING)
    return value.astimezone(BEIJING)


def _video_link(component: icalendar.cal.Component, location: str, description: str) -> str:
    if "URL" in component:
        return str(component["URL"])
    match = _URL.search(location) or _URL.search(description)
    return match.group(0) if match else ""


def _organizer(component: icalendar.cal.Component) -> str:
    organizer = component.get("ORGANIZER")
    return str(organizer.params.get("CN", "")).strip() if organizer is not None else ""


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Unfolded content lines, each with the number of its first physical line."""
    lines: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] = (lines[-1][0], lines[-1][1] + raw[1:])
        else:
            lines.append((number, raw))
    return lines


def _property_line(text: str, name: str, value: str = "") -> int | None:
    for number, line in _logical_lines(text):
        head = re.split(r"[;:]", line, maxsplit=1)[0].strip().upper()
        if head == name.upper() and value in line:
            return number
    return None


def _quoted_line(text: str, message: str) -> int | None:
    match = re.search(r"'([^']+)'", message)
    if not match:
        return None
    return next((n for n, line in _logical_lines(text) if match.group(1)[:40] in line), None)


def redact_url(url: str) -> str:
    """Private calendar URLs carry secrets in their path or query: show the host only."""
    parts = urlsplit(url)
    if not parts.netloc:
        return "（日历地址）"
    last = parts.path.rsplit("/", 1)[-1]
    return f"{parts.scheme}://{parts.netloc}/…" + (f"/{last}" if 0 < len(last) <= 40 else "")

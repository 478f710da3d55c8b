"""Meeting series (schedules/meetings.yaml) and iCalendar sources → meeting occurrences.

``load_meetings`` reads and checks the file (errors name the file, the line and the fix);
``expand_meetings`` is pure: series, the holiday calendar, a window and the .ics texts the
runtime fetched → every meeting in the window, with the day-off policy and the exceptions applied.

An occurrence's ``uid`` is keyed on its *original* start, so a moved meeting keeps its identity:
its reminders follow it, and an announced meeting that moves can be told apart from a new one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol

from bot.calendars.ics import IcsEvent, ics_events, parse_ics, redact_url
from bot.calendars.recurrence import ACCEPTED_FORMS, UnknownCadence, build_rule, cadence_rrule
from bot.calendars.reminders import ACCEPTED_REMINDERS, ReminderOffset, UnknownReminder, parse_reminder
from bot.clock import BEIJING
from bot.errors import ScheduleError
from bot.yamlfile import KeyPath, LineMap, dotted, load_yaml

POLICIES = {"keep": "照常召开", "skip": "不开", "next_workday": "顺延到下一个工作日"}
DEFAULT_REMINDERS = ("提前1个工作日 16:00", "提前2小时")
PAD = timedelta(days=31)  # a day-off shift never crosses more than one holiday block
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)\s*(?:h|小时|个小时))?\s*(?:(\d+)\s*(?:m|min|分钟|分))?")
SERIES_KEYS = {"id", "kind", "title", "branch", "to", "start", "duration", "location", "video", "host",
               "agenda", "repeat", "rrule", "date", "from", "until", "reminders", "on_day_off", "exceptions"}
OVERRIDE_KEYS = ("title", "location", "video", "host", "agenda")


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


def _touches(occurrence: MeetingOccurrence, start: date, end: date) -> bool:
    held, original = occurrence.start.astimezone(BEIJING).date(), occurrence.original_start.date()
    return start <= held <= end or start <= original <= end


def _series_occurrences(series: MeetingSeries, calendar: WorkdayCalendar, start: date,
                        end: date) -> list[MeetingOccurrence]:
    exceptions = {e.original: e for e in series.exceptions}
    days = set(_original_days(series, start, end)) | set(exceptions)  # a move may come from far away
    held = (_held(series, day, exceptions.get(day), calendar) for day in sorted(days))
    return [occurrence for occurrence in held if occurrence is not None]


def _original_days(series: MeetingSeries, start: date, end: date) -> list[date]:
    return _rule_days(series.rule, series.first, series.until, start, end, series.start_time)


def _rule_days(rule_text: str | None, first: date, until: date | None, start: date, end: date,
               at: time = time()) -> list[date]:
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


def read_ics_files(schedule: MeetingSchedule) -> dict[str, str]:
    """The texts of the file sources, keyed like ``expand_meetings`` wants them (runtime helper)."""
    return {s.source_name: s.path.read_text(encoding="utf-8") for s in schedule.calendars if s.path is not None}


# --- loading --------------------------------------------------------------------------------------


def load_meetings(path: Path, schedules_dir: Path) -> MeetingSchedule:
    """Read schedules/meetings.yaml; ScheduleError (file, line, key, fix) for anything wrong."""
    data, lines = load_yaml(path)
    reader = _Reader(Path(path), lines, Path(schedules_dir))
    return reader.schedule(data if data is not None else {})


class _Reader:
    """Turns the parsed YAML into a schedule, naming the line of whatever is wrong."""

    def __init__(self, path: Path, lines: LineMap, schedules_dir: Path) -> None:
        self.path, self.lines, self.schedules_dir = path, lines, schedules_dir

    def error(self, problem: str, at: KeyPath, fix: str) -> ScheduleError:
        return ScheduleError(problem, file=self.path, line=self.lines.line_of(at), key=dotted(at) or None, fix=fix)

    def schedule(self, data: Any) -> MeetingSchedule:
        self.mapping(data, (), {"defaults", "series", "calendars"})
        defaults = self.defaults(data.get("defaults") or {})
        series = tuple(self.series(item, ("series", i), defaults)
                       for i, item in enumerate(self.sequence(data.get("series"), ("series",))))
        self.unique_ids(series)
        calendars = tuple(self.calendar(item, ("calendars", i), defaults)
                          for i, item in enumerate(self.sequence(data.get("calendars"), ("calendars",))))
        return MeetingSchedule(series, calendars, self.path.name)

    def defaults(self, data: Any) -> dict[str, Any]:
        at = ("defaults",)
        self.mapping(data, at, {"reminders", "on_day_off", "duration"})
        return {
            "reminders": self.reminders(data.get("reminders", list(DEFAULT_REMINDERS)), (*at, "reminders")),
            "on_day_off": self.policy(data.get("on_day_off", "next_workday"), (*at, "on_day_off")),
            "duration": self.duration(data.get("duration", "60m"), (*at, "duration")),
        }

    def series(self, data: Any, at: KeyPath, defaults: dict[str, Any]) -> MeetingSeries:
        self.mapping(data, at, SERIES_KEYS)
        rule, first, until = self.recurrence(data, at)
        policy = data.get("on_day_off", defaults["on_day_off"] if rule else "keep")
        branch, targets = self.audience(data, at)
        return MeetingSeries(
            id=self.series_id(data.get("id"), (*at, "id")), kind=self.text(data, at, "kind", required=True),
            title=self.text(data, at, "title", required=True), branch=branch, targets=targets,
            start_time=self.clock_time(data.get("start"), (*at, "start")),
            duration=self.duration(data["duration"], (*at, "duration")) if "duration" in data else defaults["duration"],
            location=self.text(data, at, "location"), video=self.video(data, at), host=self.text(data, at, "host"),
            agenda=self.text(data, at, "agenda"), rule=rule, first=first, until=until,
            reminders=self.reminders(data["reminders"], (*at, "reminders")) if "reminders" in data
            else defaults["reminders"],
            on_day_off=self.policy(policy, (*at, "on_day_off")),
            exceptions=self.exceptions(data.get("exceptions"), (*at, "exceptions"), rule, first, until),
            source=self.path.name)

    def recurrence(self, data: Mapping[str, Any], at: KeyPath) -> tuple[str | None, date, date | None]:
        given = [key for key in ("repeat", "rrule", "date") if key in data]
        if len(given) != 1:
            raise self.error("重复规则写法不明确" if given else "缺少会议日期或重复规则", at,
                             "repeat（如“每月第一个周五”）、rrule 和 date（一次性会议）三者只写一个")
        if given == ["date"]:
            return None, self.day(data["date"], (*at, "date")), None
        if "from" not in data:
            raise self.error("重复的会议缺少 from（第一次可能召开的日期）", at, "添加 from: 2026-01-01 这样的日期")
        first = self.day(data["from"], (*at, "from"))
        until = self.day(data["until"], (*at, "until")) if data.get("until") is not None else None
        if until is not None and until < first:
            raise self.error(f"until（{until}）早于 from（{first}）", (*at, "until"), "核对起止日期")
        return self.rule(data, at, given[0], first, until), first, until

    def rule(self, data: Mapping[str, Any], at: KeyPath, key: str, first: date, until: date | None) -> str:
        phrase = str(data[key])
        try:
            rule = cadence_rrule(phrase) if key == "repeat" else phrase.strip().removeprefix("RRULE:")
            last = datetime.combine(until, time.max) if until else None
            # refused here because dateutil spins to year 9999 on a rule that never matches
            never = build_rule(rule, datetime.combine(first, time()), last).after(datetime.min) is None
        except UnknownCadence as exc:
            raise self.error(str(exc), (*at, key), f"改为以下写法之一：{ACCEPTED_FORMS}") from None
        if never:
            raise self.error(f"按“{phrase}”从 {first} 起{f'到 {until} ' if until else ''}没有任何会议日期",
                             (*at, key), "核对重复规则与 from、until")
        return rule

    def exceptions(self, data: Any, at: KeyPath, rule: str | None, first: date,
                   until: date | None) -> tuple[MeetingException, ...]:
        items = tuple(self.exception(item, (*at, i)) for i, item in enumerate(self.sequence(data, at)))
        for i, item in enumerate(items):
            if not _rule_days(rule, first, until, item.original, item.original):
                nearby = _rule_days(rule, first, until, item.original - timedelta(days=45),
                                    item.original + timedelta(days=45))
                listed = "、".join(d.isoformat() for d in nearby[:4]) or "无（检查 from、until 与重复规则）"
                raise self.error(f"{item.original} 不是该系列原定的会议日期", (*at, i),
                                 f"填写原定日期（顺延前的日期）；附近的原定日期：{listed}")
        if len({item.original for item in items}) != len(items):
            raise self.error("同一日期有多条例外", at, "每个原定日期只写一条 skip 或 move")
        return items

    def exception(self, data: Any, at: KeyPath) -> MeetingException:
        self.mapping(data, at, {"skip", "move", "to", *OVERRIDE_KEYS})
        if ("skip" in data) == ("move" in data):
            raise self.error("例外需写 skip（取消某次）或 move（调整某次）之一", at,
                             "写成 - skip: 2026-02-06 或 - move: 2026-10-02 加 to: 2026-10-09 15:00")
        if "skip" in data:
            if len(data) > 1:
                raise self.error("skip 例外不能带其他字段", at, "只写 - skip: 日期")
            return MeetingException("skip", self.day(data["skip"], (*at, "skip")))
        overrides = tuple((k, self.text(data, at, k)) for k in OVERRIDE_KEYS if k in data)
        if "to" not in data and not overrides:
            raise self.error("move 例外没有写调整到何时（to）或改动的内容", at, "添加 to: 2026-10-09 15:00 或 location: …")
        to_day, to_time = self.moment(data["to"], (*at, "to")) if "to" in data else (None, None)
        return MeetingException("move", self.day(data["move"], (*at, "move")), to_day, to_time, overrides)

    def calendar(self, data: Any, at: KeyPath, defaults: dict[str, Any]) -> CalendarSource:
        self.mapping(data, at, {"file", "url", "kind", "branch", "to", "reminders"})
        if ("file" in data) == ("url" in data):
            raise self.error("日历来源需写 file 或 url 之一", at, "写 file: 文件名.ics（相对 schedules 目录）或 url: https://…")
        branch, targets = self.audience(data, at)
        reminders = self.reminders(data["reminders"], (*at, "reminders")) if "reminders" in data else defaults["reminders"]
        kind = self.text(data, at, "kind") or "会议"
        if "url" in data:
            url = str(data["url"]).strip()
            if not url.startswith(("http://", "https://")):
                raise self.error(f"日历地址 {url} 不是网址", (*at, "url"), "写成 https:// 开头的完整地址")
            return CalendarSource(url, None, url, kind, branch, targets, reminders)
        file = str(data["file"])
        return CalendarSource(file, self.ics_file(file, (*at, "file")), None, kind, branch, targets, reminders)

    def ics_file(self, name: str, at: KeyPath) -> Path:
        path = self.schedules_dir / name
        if not path.is_file():
            raise self.error(f"日历文件 {path} 不存在", at, "检查文件名；路径相对于 schedules 目录")
        parse_ics(path.read_text(encoding="utf-8"), str(path))
        return path

    # --- fields

    def mapping(self, data: Any, at: KeyPath, allowed: set[str]) -> None:
        if not isinstance(data, dict):
            raise self.error("此处应为“键: 值”形式的映射", at, "检查缩进；每项以“- ”开头，其下各字段对齐")
        for key in data:
            if key not in allowed:
                raise self.error(f"未知的字段 {key}", (*at, key), f"可用的字段：{'、'.join(sorted(allowed))}")

    def sequence(self, data: Any, at: KeyPath) -> list[Any]:
        if data is None:
            return []
        if not isinstance(data, list):
            raise self.error("此处应为列表", at, "每一项另起一行，以“- ”开头")
        return data

    def text(self, data: Mapping[str, Any], at: KeyPath, key: str, required: bool = False) -> str:
        value = data.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise self.error(f"缺少 {key}", at, f"填写 {key}")
            return ""
        if isinstance(value, (dict, list)):
            raise self.error(f"{key} 应为一段文字", (*at, key), "写在同一行，必要时加引号")
        return str(value).strip()

    def series_id(self, value: Any, at: KeyPath) -> str:
        if not isinstance(value, str) or not _ID.fullmatch(value):
            raise self.error(f"系列标识 {value!r} 无效", at, "用英文字母、数字、- 和 _ 组成，如 b1-committee；定下后不要再改")
        return value

    def unique_ids(self, series: tuple[MeetingSeries, ...]) -> None:
        seen: set[str] = set()
        for i, item in enumerate(series):
            if item.id in seen:
                raise self.error(f"系列标识 {item.id} 重复", ("series", i, "id"), "每个系列用不同的 id")
            seen.add(item.id)

    def audience(self, data: Mapping[str, Any], at: KeyPath) -> tuple[str | None, tuple[str, ...]]:
        branch = self.text(data, at, "branch") or None
        targets = data.get("to", [])
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
            raise self.error("to 应为推送对象名称的列表", (*at, "to"), "写成 to: [all_groups] 这样的列表")
        if branch is None and not targets:
            raise self.error("没有指定推送给谁", at, "写 branch: 支部标识（推送到该支部的群），或 to: [推送对象名称]")
        return branch, tuple(targets)

    def video(self, data: Mapping[str, Any], at: KeyPath) -> str:
        link = self.text(data, at, "video")
        if link and not link.startswith(("http://", "https://")):
            raise self.error(f"视频会议链接 {link} 不是网址", (*at, "video"), "写成 https:// 开头的完整链接")
        return link

    def policy(self, value: Any, at: KeyPath) -> str:
        if value not in POLICIES:
            choices = "；".join(f"{k}（{v}）" for k, v in POLICIES.items())
            raise self.error(f"未知的节假日处理方式 {value}", at, f"改为以下之一：{choices}")
        return str(value)

    def reminders(self, value: Any, at: KeyPath) -> tuple[ReminderOffset, ...]:
        items = self.sequence(value, at)
        try:
            offsets = tuple(parse_reminder(item) for item in items)
        except UnknownReminder as exc:
            raise self.error(str(exc), at, f"改为以下写法之一：{ACCEPTED_REMINDERS}") from None
        return tuple(dict.fromkeys(offsets))

    def clock_time(self, value: Any, at: KeyPath) -> time:
        if isinstance(value, int) and value >= 60:  # YAML 1.1 reads an unquoted 14:30 as 870 (base 60)
            value = f"{value // 60}:{value % 60:02d}"
        match = re.fullmatch(r"(\d{1,2})[:：](\d{2})", str(value).strip()) if value is not None else None
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            raise self.error(f"开始时间 {value} 无效" if value is not None else "缺少开始时间 start", at,
                             "写成 start: \"14:30\"（24 小时制，加引号）")
        return time(int(match[1]), int(match[2]))

    def duration(self, value: Any, at: KeyPath) -> timedelta:
        if isinstance(value, int) and value > 0:
            return timedelta(minutes=value)
        match = _DURATION.fullmatch(str(value).strip().lower())
        if not match or not any(match.groups()):
            raise self.error(f"时长 {value} 无法识别", at, "写成 90m、1.5h、2小时 或 1小时30分钟")
        minutes = float(match[1] or 0) * 60 + int(match[2] or 0)
        return timedelta(minutes=round(minutes))

    def day(self, value: Any, at: KeyPath) -> date:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        try:
            return date.fromisoformat(str(value).strip())
        except ValueError:
            raise self.error(f"日期 {value} 无效", at, "写成 2026-03-06 这样的日期") from None

    def moment(self, value: Any, at: KeyPath) -> tuple[date | None, time | None]:
        """'2026-10-09 15:00' / '2026-10-09' (same time) / '15:00' (same day)."""
        if isinstance(value, datetime):
            return value.date(), value.time().replace(second=0, microsecond=0)
        if isinstance(value, date):
            return value, None
        if isinstance(value, int):
            return None, self.clock_time(value, at)
        match = re.fullmatch(r"(\d{4}-\d{1,2}-\d{1,2})?\s*(\d{1,2}[:：]\d{2})?", str(value).strip())
        if not match or not any(match.groups()):
            raise self.error(f"调整后的时间 {value} 无效", at,
                             "写成 to: 2026-10-09 15:00（只写日期则时间不变，只写时间则日期不变）")
        day = self.day(match[1], at) if match[1] else None
        return day, self.clock_time(match[2], at) if match[2] else None

"""schedules/meetings.yaml → a ``MeetingSchedule``: reading and checking the file.

Every error names the file, the line, the key and the fix (``ScheduleError``). Expanding the
schedule into meetings is ``bot.calendars.meetings``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from bot.calendars.ics import parse_ics
from bot.calendars.meetings import CalendarSource, MeetingException, MeetingSchedule, MeetingSeries, rule_days
from bot.calendars.recurrence import ACCEPTED_FORMS, UnknownCadence, build_rule, cadence_rrule
from bot.calendars.reminders import ACCEPTED_REMINDERS, ReminderOffset, UnknownReminder, parse_reminder
from bot.errors import ScheduleError
from bot.yamlfile import KeyPath, LineMap, dotted

POLICIES = {"keep": "照常召开", "skip": "不开", "next_workday": "顺延到下一个工作日"}
DEFAULT_REMINDERS = ("提前1个工作日 16:00", "提前2小时")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)\s*(?:h|小时|个小时))?\s*(?:(\d+)\s*(?:m|min|分钟|分))?")
SERIES_KEYS = {"id", "kind", "title", "branch", "to", "start", "duration", "location", "video", "host",
               "agenda", "repeat", "rrule", "date", "from", "until", "reminders", "on_day_off", "exceptions"}
OVERRIDE_KEYS = ("title", "location", "video", "host", "agenda")


def meeting_schedule(data: Any, lines: LineMap, path: Path, schedules_dir: Path,
                     ics_files: Mapping[str, str]) -> MeetingSchedule:
    """Check meetings.yaml as ``bot.inputs`` parsed it, with the texts of the .ics files it names
    (keyed as written; a name not there does not exist); ScheduleError (file, line, key, fix)."""
    reader = _Reader(Path(path), lines, Path(schedules_dir), ics_files)
    return reader.schedule(data if data is not None else {})


def ics_file_names(data: Any) -> list[str]:
    """The .ics files a parsed meetings.yaml names, for ``bot.inputs`` to read (shape unchecked)."""
    calendars = data.get("calendars") if isinstance(data, dict) else None
    if not isinstance(calendars, list):
        return []
    return [str(item["file"]) for item in calendars if isinstance(item, dict) and "file" in item]


class _Reader:
    """Turns the parsed YAML into a schedule, naming the line of whatever is wrong."""

    def __init__(self, path: Path, lines: LineMap, schedules_dir: Path, ics_files: Mapping[str, str]) -> None:
        self.path, self.lines, self.schedules_dir, self.ics_files = path, lines, schedules_dir, ics_files

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
            source=self.path.name, repeat=str(data["repeat"]).strip() if "repeat" in data else None)

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
            if not rule_days(rule, first, until, item.original, item.original):
                nearby = rule_days(rule, first, until, item.original - timedelta(days=45),
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
        if name not in self.ics_files:
            raise self.error(f"日历文件 {path} 不存在", at, "检查文件名；路径相对于 schedules 目录")
        parse_ics(self.ics_files[name], str(path))
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

"""One-off messages at a given time to given targets: schedules/announcements.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.errors import ScheduleError
from bot.occurrence import Occurrence
from bot.yamlfile import LineMap, dotted

_FIELDS = {"id", "at", "to", "title", "body", "template"}


@dataclass(frozen=True)
class Announcement:
    id: str
    at: datetime
    to: tuple[str, ...]
    title: str
    body: str
    template: str = "announcement"


def announcements_from(data: Any, lines: LineMap, path: Path, settings: Settings) -> list[Announcement]:
    """Check the file as ``bot.inputs`` parsed it; every error names the file, the line and the fix."""
    entries = (data or {}).get("announcements", []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ScheduleError("顶层应为 announcements: 列表", file=path, line=1,
                            fix="写成 announcements: 后逐条以 - 开头")
    known = set(settings.all_targets()) | set(settings.groups)
    result = [_announcement(entry, i, path, lines, settings, known) for i, entry in enumerate(entries)]
    ids = [a.id for a in result]
    for i, ident in enumerate(ids):
        if ids.count(ident) > 1:
            raise ScheduleError(f"通知编号 {ident} 重复", file=path, line=lines.line_of(("announcements", i, "id")),
                                fix="每条通知使用不同的 id")
    return result


def _announcement(entry: Any, i: int, path: Path, lines: LineMap, settings: Settings,
                  known: set[str]) -> Announcement:
    where = ("announcements", i)

    def fail(problem: str, key: str | None, fix: str) -> ScheduleError:
        loc = (*where, key) if key else where
        return ScheduleError(problem, file=path, line=lines.line_of(loc), key=dotted(loc), fix=fix)

    if not isinstance(entry, dict):
        raise fail("每条通知应为键值映射", None, "参照 README 中的示例")
    for key in sorted(set(entry) - _FIELDS):
        raise fail(f"未知的项 {key}", key, f"可用的项：{'、'.join(sorted(_FIELDS))}")
    for key in ("id", "at", "to", "title", "body"):
        if key not in entry:
            raise fail(f"缺少 {key}", None, f"补上 {key}")
    try:
        at = _parse_time(entry["at"], settings)
    except ValueError:
        raise fail("时间格式不正确", "at", "写成 2026-12-01 09:00") from None
    to = entry["to"] if isinstance(entry["to"], list) else [entry["to"]]
    for name in to:
        if name not in known:
            raise fail(f"推送对象 {name} 未定义", "to", f"使用已定义的推送对象或分组：{'、'.join(sorted(known))}")
    return Announcement(id=str(entry["id"]), at=at, to=settings.resolve_targets(to), title=str(entry["title"]),
                        body=str(entry["body"]).strip(), template=str(entry.get("template", "announcement")))


def _parse_time(value: Any, settings: Settings) -> datetime:
    if isinstance(value, date) and not isinstance(value, datetime):
        raise ValueError("a date without a time")
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip())
    return moment.replace(tzinfo=settings.zone) if moment.tzinfo is None else moment.astimezone(settings.zone)


def plan_announcements(announcements: list[Announcement], settings: Settings, start: date,
                       end: date) -> list[Occurrence]:
    return [Occurrence(rule="announcement", kind="announcement", occurrence=a.id, due_at=a.at,
                       targets=a.to, template=a.template,
                       context={"announcement": {"title": a.title, "body": a.body},
                                "organisation": {"name": settings.organisation.name}},
                       reason=f"schedules/announcements.yaml 中的通知 {a.id}")
            for a in announcements if start <= a.at.date() <= end]

"""Study items (schedules/studies.yaml) and their prompts, nudges and overdue notices.

Pure: ``study_schedule`` validates the file ``bot.inputs`` read; ``plan_studies`` turns items into occurrences
for a window of days, given the branches that have already confirmed. Publish times on a day off
move to the next working day; nudges on a day off move to the previous one.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol

from bot.clock import BEIJING
from bot.config import Branch, Settings
from bot.errors import ScheduleError
from bot.occurrence import Occurrence
from bot.templates.render import cn_date
from bot.yamlfile import KeyPath, LineMap, dotted

RULE = "study"
README = "schedules/studies.yaml 开头的说明"
ITEM_KEYS = ("id", "title", "number", "series", "summary", "link", "attachment", "audience",
             "publish_at", "deadline", "nudges")
REQUIRED_KEYS = ("id", "title", "publish_at", "deadline")
DEFAULT_KEYS = ("audience", "series", "nudges")
NUDGE_FORMS = "“截止前2个工作日 09:00”“截止前3天 15:00”“截止当天 09:00”"
_ID = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")
_MOMENT = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{2})$")
_NUDGE = re.compile(r"^截止(?:前\s*(\d+)\s*(个工作日|天)|当天)\s+(\d{1,2}):(\d{2})$")


class WorkdayCalendar(Protocol):
    def is_workday(self, day: date) -> bool: ...
    def workday_on_or_after(self, day: date) -> date: ...
    def workday_on_or_before(self, day: date) -> date: ...
    def workday_before(self, day: date, n: int = 1) -> date: ...
    def covers(self, day: date) -> bool: ...


@dataclass(frozen=True)
class Nudge:
    """'截止前2个工作日 09:00' → days=2, workdays=True, at=09:00; '截止当天 09:00' → days=0."""

    days: int
    workdays: bool
    at: time
    label: str

    @property
    def slug(self) -> str:
        unit = "w" if self.workdays else "d"
        return f"{unit}{self.days}-{self.at:%H%M}"

    def nominal_day(self, deadline: date, calendar: WorkdayCalendar) -> date:
        if self.days and self.workdays:
            return calendar.workday_before(deadline, self.days)
        return deadline - timedelta(days=self.days)


@dataclass(frozen=True)
class StudyItem:
    id: str
    title: str
    publish_at: datetime
    deadline: datetime
    audience: tuple[str, ...] | None  # None: every branch
    nudges: tuple[Nudge, ...] = ()
    number: int | None = None
    series: str | None = None
    summary: str = ""
    link: str | None = None
    attachment: str | None = None

    def __post_init__(self) -> None:
        if self.publish_at.tzinfo is None or self.deadline.tzinfo is None:
            raise ValueError("study times must be aware")
        if self.deadline <= self.publish_at:
            raise ValueError("deadline must be after publish_at")

    def branches(self, settings: Settings) -> list[Branch]:
        """The audience as configured branches, in the configuration's order."""
        every = settings.organisation.branches
        return list(every) if self.audience is None else [b for b in every if b.id in self.audience]

    def context(self, publish_at: datetime | None = None) -> dict[str, Any]:
        """The item as templates see it: plain strings, ISO times."""
        return {
            "id": self.id, "title": self.title, "number": "" if self.number is None else str(self.number),
            "series": self.series or "", "summary": self.summary, "link": self.link or self.attachment or "",
            "attachment": self.attachment or "",
            "publish_at": (publish_at or self.publish_at).isoformat(), "deadline": self.deadline.isoformat(),
        }


@dataclass(frozen=True)
class StudySchedule:
    items: tuple[StudyItem, ...]
    source: Path | None = None

    def get(self, item_id: str) -> StudyItem | None:
        return next((item for item in self.items if item.id == item_id), None)

    def for_branch(self, branch_id: str) -> list[StudyItem]:
        return [i for i in self.items if i.audience is None or branch_id in i.audience]


# ---- checking --------------------------------------------------------------------------------


def study_schedule(data: Any, lines: LineMap, path: Path,
                   branches: Collection[str] | None = None) -> StudySchedule:
    """Validate studies.yaml as ``bot.inputs`` parsed it; ``branches`` (ids), when given, checks
    every audience."""
    reader = _Reader(path, lines, None if branches is None else frozenset(branches))
    top = reader.mapping(data or {}, (), ("defaults", "items"))
    defaults = reader.mapping(top.get("defaults") or {}, ("defaults",), DEFAULT_KEYS)
    entries = top.get("items") or []
    if not isinstance(entries, list):
        raise reader.fail("items 应为列表", ("items",), "用“- ”逐项列出学习内容")
    items = tuple(reader.item({**defaults, **e} if isinstance(e, dict) else e, ("items", i))
                  for i, e in enumerate(entries))
    _check_unique(items, reader)
    return StudySchedule(items, path)


def _check_unique(items: tuple[StudyItem, ...], reader: _Reader) -> None:
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item.id in seen:
            raise reader.fail(f"学习内容 id {item.id} 重复", ("items", index, "id"), "每项学习内容使用不同的 id")
        seen.add(item.id)


def parse_moment(value: Any) -> datetime:
    """'2026-05-11 09:00' (Beijing time) → aware datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=BEIJING)
    match = _MOMENT.match(str(value).strip())
    if not match:
        raise ValueError(value)
    year, month, day, hour, minute = map(int, match.groups())
    return datetime(year, month, day, hour, minute, tzinfo=BEIJING)


def parse_nudge(value: Any) -> Nudge:
    text = re.sub(r"\s+", " ", str(value).strip())
    match = _NUDGE.match(text)
    if not match or int(match.group(3)) > 23 or int(match.group(4)) > 59:
        raise ValueError(value)
    days = int(match.group(1) or 0)
    return Nudge(days, match.group(2) == "个工作日", time(int(match.group(3)), int(match.group(4))), text)


@dataclass(frozen=True)
class _Reader:
    file: Path
    lines: LineMap
    branches: frozenset[str] | None

    def fail(self, problem: str, path: KeyPath, fix: str) -> ScheduleError:
        return ScheduleError(problem, file=self.file, line=self.lines.line_of(path), key=dotted(path) or None,
                             fix=fix)

    def mapping(self, value: Any, path: KeyPath, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail("此处应为“键: 值”的映射", path, f"格式见 {README}")
        for key in value:
            if key not in allowed:
                raise self.fail(f"未知的键 {key}", (*path, key), f"删除该键，或改为以下之一：{'、'.join(allowed)}")
        return value

    def item(self, value: Any, path: KeyPath) -> StudyItem:
        entry = self.mapping(value, path, ITEM_KEYS)
        for key in REQUIRED_KEYS:
            if key not in entry:
                raise self.fail(f"缺少键 {key}", path, f"为该学习内容填写 {key}，格式见 {README}")
        item_id = str(entry["id"])
        if not _ID.match(item_id):
            raise self.fail(f"id “{item_id}”格式不正确", (*path, "id"),
                            "只使用英文字母、数字、下划线或连字符，如 jsjy-2026-05；发布后不要再改")
        publish_at, deadline = self.moment(entry, path, "publish_at"), self.moment(entry, path, "deadline")
        if deadline <= publish_at:
            raise self.fail(f"截止时间 {deadline:%Y-%m-%d %H:%M} 早于或等于发布时间 {publish_at:%Y-%m-%d %H:%M}",
                            (*path, "deadline"), "核对截止时间，应晚于发布时间")
        return StudyItem(
            id=item_id, title=self.text(entry["title"], (*path, "title")), publish_at=publish_at,
            deadline=deadline, audience=self.audience(entry.get("audience", "all"), (*path, "audience")),
            nudges=self.nudges(entry.get("nudges", []), (*path, "nudges")),
            number=self.number(entry.get("number"), (*path, "number")),
            series=self.optional(entry.get("series"), (*path, "series")),
            summary=self.optional(entry.get("summary"), (*path, "summary")) or "",
            link=self.optional(entry.get("link"), (*path, "link")),
            attachment=self.optional(entry.get("attachment"), (*path, "attachment")))

    def moment(self, entry: dict[str, Any], path: KeyPath, key: str) -> datetime:
        try:
            return parse_moment(entry[key])
        except ValueError:
            raise self.fail(f"“{entry[key]}”不是有效的时间", (*path, key),
                            "按“YYYY-MM-DD HH:MM”填写北京时间，如 \"2026-05-11 09:00\"（加引号）") from None

    def text(self, value: Any, path: KeyPath) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail("此处应为非空文字", path, "填写学习内容的标题")
        return value.strip()

    def optional(self, value: Any, path: KeyPath) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str | int):
            raise self.fail("此处应为文字", path, "填写文字，或删除该项")
        return str(value).strip() or None

    def number(self, value: Any, path: KeyPath) -> int | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
            return int(value)
        raise self.fail(f"期号“{value}”不是正整数", path, "填写阿拉伯数字，如 5；没有期号时删除该项")

    def audience(self, value: Any, path: KeyPath) -> tuple[str, ...] | None:
        if value == "all":
            return None
        if not isinstance(value, list) or not value:
            raise self.fail("audience 应为 all 或支部编号列表", path, "写 all，或写成 [b1, b2]")
        for index, branch in enumerate(value):
            if self.branches is not None and str(branch) not in self.branches:
                known = "、".join(sorted(self.branches)) or "（配置中没有支部）"
                raise self.fail(f"未知的支部 {branch}", (*path, index), f"使用配置文件中已有的支部编号：{known}")
        return tuple(str(b) for b in value)

    def nudges(self, value: Any, path: KeyPath) -> tuple[Nudge, ...]:
        if not isinstance(value, list):
            raise self.fail("nudges 应为列表", path, f"写成列表，如 [{NUDGE_FORMS}]")
        result = []
        for index, text in enumerate(value):
            try:
                result.append(parse_nudge(text))
            except ValueError:
                raise self.fail(f"无法识别的催办时间“{text}”", (*path, index), f"可用的写法：{NUDGE_FORMS}") from None
        return tuple(result)


# ---- planning -------------------------------------------------------------------------------


def plan_studies(schedule: StudySchedule, settings: Settings, calendar: WorkdayCalendar, start: date,
                 end: date, now: datetime, confirmed: Collection[tuple[str, str]]) -> list[Occurrence]:
    """Prompts, nudges and overdue notices due on days start..end (Beijing), in time order.

    ``confirmed`` holds (item, branch) pairs: those branches get no nudge and are not listed as
    missing. ``now`` does not change what is planned (the window does); it is here so that every
    planner has the same shape.
    """
    done = frozenset(confirmed)
    # Everything an item sends lies between its publication and its deadline (a holiday shift
    # moves a prompt by at most a couple of weeks): items far outside the window are skipped.
    margin = timedelta(days=31)
    relevant = [item for item in schedule.items
                if item.publish_at.date() <= end + margin and item.deadline.date() >= start - margin]
    found = [o for item in relevant for o in _item_occurrences(item, settings, calendar, done)]
    return sorted((o for o in found if start <= o.due_at.astimezone(BEIJING).date() <= end),
                  key=lambda o: (o.due_at, o.occurrence))


def effective_publish(item: StudyItem, calendar: WorkdayCalendar) -> datetime:
    """The publish time, moved to the next working day (same time of day) when it falls on a day off."""
    local = item.publish_at.astimezone(BEIJING)
    day = calendar.workday_on_or_after(local.date())
    return datetime.combine(day, local.timetz())


def _item_occurrences(item: StudyItem, settings: Settings, calendar: WorkdayCalendar,
                      done: frozenset[tuple[str, str]]) -> Iterator[Occurrence]:
    publish = effective_publish(item, calendar)
    provisional = _provisional(item, calendar)
    org = {"name": settings.organisation.name}
    for branch in item.branches(settings):
        context = prompt_context(item, branch, settings, calendar)
        yield from _prompts(item, branch, settings, context, publish, calendar, provisional)
        if (item.id, branch.id) not in done:
            yield from _nudges(item, branch, settings, context, publish, calendar, provisional)
    if settings.admin_chain():
        yield _overdue(item, settings, done, org, publish, provisional)


def confirm_key(item_id: str) -> str:
    """The key of a study card's button: a click on it confirms the item (see bot.responder)."""
    return f"confirm:{item_id}"


def _provisional(item: StudyItem, calendar: WorkdayCalendar) -> bool:
    days = (item.publish_at.astimezone(BEIJING).date(), item.deadline.astimezone(BEIJING).date())
    return not all(calendar.covers(day) for day in days)


def _branch_context(item: StudyItem, branch: Branch, org: dict[str, str], publish: datetime) -> dict[str, Any]:
    return {"item": item.context(publish), "branch": {"id": branch.id, "name": branch.name},
            "secretary": {"name": branch.secretary.name, "userid": branch.secretary.userid},
            "organisation": org}


def _prompts(item: StudyItem, branch: Branch, settings: Settings, context: dict[str, Any], publish: datetime,
             calendar: WorkdayCalendar, provisional: bool) -> Iterator[Occurrence]:
    reason = f"{item.title}发布，提醒{branch.name}书记组织学习"
    nominal = item.publish_at.astimezone(BEIJING)
    if publish != nominal:
        reason += f"（原定发布日 {cn_date(nominal)} 为休息日，顺延至下一个工作日 {cn_date(publish)}）"
    template = settings.studies.prompt_template
    # The card's parts come from the template; the button's key is ours: a click confirms this item.
    yield Occurrence(RULE, "study_prompt", f"{item.id}@prompt:{branch.id}", publish, (branch.secretary_target,),
                     template, context, reason, item.id, provisional,
                     {"branch": branch.id, "button_key": confirm_key(item.id)})
    if settings.studies.group_notice and branch.group:
        yield Occurrence(RULE, "study_prompt", f"{item.id}@group:{branch.id}", publish, (branch.group,),
                         template, context, f"{item.title}发布，通知{branch.name}群", item.id, provisional,
                         {"branch": branch.id})


def prompt_context(item: StudyItem, branch: Branch, settings: Settings, calendar: WorkdayCalendar) -> dict[str, Any]:
    """What the study prompt's template sees for one branch: the app's card and the AI bot's group card
    are rendered from the same context."""
    org = {"name": settings.organisation.name}
    return _branch_context(item, branch, org, effective_publish(item, calendar))


def _nudges(item: StudyItem, branch: Branch, settings: Settings, context: dict[str, Any], publish: datetime,
            calendar: WorkdayCalendar, provisional: bool) -> Iterator[Occurrence]:
    deadline = item.deadline.astimezone(BEIJING)
    for nudge in item.nudges:
        nominal = nudge.nominal_day(deadline.date(), calendar)
        day = calendar.workday_on_or_before(nominal)
        due = datetime.combine(day, nudge.at, tzinfo=BEIJING)
        if not publish < due < deadline:
            continue  # after the deadline (or before publication) a nudge makes no sense
        reason = f"{nudge.label}催办尚未确认的{branch.name}"
        if day != nominal:
            reason += f"（{cn_date(nominal)} 为休息日，提前至前一个工作日 {cn_date(day)}）"
        yield Occurrence(RULE, "study_nudge", f"{item.id}@nudge-{nudge.slug}:{branch.id}", due,
                         (branch.secretary_target,), settings.studies.nudge_template, context, reason, item.id,
                         provisional, {"branch": branch.id, "button_key": confirm_key(item.id)})


def _overdue(item: StudyItem, settings: Settings, done: frozenset[tuple[str, str]], org: dict[str, str],
             publish: datetime, provisional: bool) -> Occurrence:
    branches = item.branches(settings)
    missing = [b for b in branches if (item.id, b.id) not in done]
    context = {"item": item.context(publish), "organisation": org, "total": len(branches),
               "confirmed_count": len(branches) - len(missing),
               "missing": [{"name": b.name, "secretary": b.secretary.name} for b in missing]}
    reason = f"{item.title}学习截止，向管理员通报未确认的支部（{len(missing)}个）"
    return Occurrence(RULE, "study_overdue", f"{item.id}@overdue", item.deadline.astimezone(BEIJING),
                      settings.admin_chain()[:1], settings.studies.overdue_template, context, reason, item.id,
                      provisional, {"missing": [b.id for b in missing]})

"""The plan: a pure function of (rules, calendars, window, now, state) → the messages that will be sent.

`wecom-reminder plan` prints exactly this, and the scheduler fills the outbox from exactly this, so
an administrator can check a year ahead what will happen.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bot.calendars.holidays import HolidayCalendar
from bot.config import AppTarget, RobotTarget, Settings
from bot.errors import UnknownTarget
from bot.occurrence import Occurrence, PlannedMessage
from bot.rules.announcements import Announcement, plan_announcements
from bot.rules.holidays import missing_holiday_notices, plan_holiday_rules
from bot.templates.limits import card_problems, channel_of, markdown_mention_problem
from bot.templates.render import RenderedMessage, TemplateLibrary, size_problems


@dataclass(frozen=True)
class PlanInputs:
    """Everything the plan reads, already loaded and validated."""

    settings: Settings
    calendar: HolidayCalendar
    templates: TemplateLibrary
    meetings: Any = None            # bot.calendars.meetings.MeetingSchedule
    ics_texts: Mapping[str, str] = field(default_factory=dict)
    studies: Any = None             # bot.rules.studies.StudySchedule
    announcements: tuple[Announcement, ...] = ()


@dataclass(frozen=True)
class PlanState:
    """What has happened that the plan depends on (read from the database by the runtime)."""

    confirmed: Collection[tuple[str, str]] = frozenset()   # (item, branch)
    announced: Mapping[str, Any] = field(default_factory=dict)  # meeting uid → AnnouncedMeeting
    told_holidays: Mapping[str, Any] = field(default_factory=dict)  # block key → target → ToldHoliday


@dataclass(frozen=True)
class Plan:
    messages: list[PlannedMessage]
    notices: list[str]  # Chinese lines: missing holiday data and the like


def plan_occurrences(inputs: PlanInputs, start: date, end: date, now: datetime,
                     state: PlanState = PlanState()) -> list[Occurrence]:
    """All occurrences due within [start, end] (Beijing dates), ordered by due time."""
    settings, calendar = inputs.settings, inputs.calendar
    found = plan_holiday_rules(settings, calendar, start, end, now, state.told_holidays)
    found += plan_announcements(list(inputs.announcements), settings, start, end)
    if inputs.meetings is not None:
        found += _plan_meetings(inputs, start, end, now, state)
    if inputs.studies is not None:
        from bot.rules.studies import plan_studies
        found += plan_studies(inputs.studies, settings, calendar, start, end, now, state.confirmed)
    return sorted(found, key=lambda o: (o.due_at, o.rule, o.occurrence))


def _plan_meetings(inputs: PlanInputs, start: date, end: date, now: datetime,
                   state: PlanState) -> list[Occurrence]:
    from bot.calendars.meetings import meetings_between
    from bot.rules.meetings import plan_meetings
    settings = inputs.settings
    branches = settings.organisation.branches
    meetings = meetings_between(inputs.meetings, inputs.calendar, start, end, inputs.ics_texts)
    return plan_meetings(meetings, now=now, start=start, end=end, calendar=inputs.calendar,
                         branch_names={b.id: b.name for b in branches},
                         branch_targets={b.id: (b.group,) if b.group else () for b in branches},
                         announced=state.announced, resolve=settings.resolve_targets)


def build_plan(inputs: PlanInputs, start: date, end: date, now: datetime,
               state: PlanState = PlanState()) -> Plan:
    occurrences = plan_occurrences(inputs, start, end, now, state)
    notices = missing_holiday_notices(inputs.settings, inputs.calendar, start, end)
    return Plan(messages=expand(occurrences, inputs.settings, inputs.templates), notices=notices)


def expand(occurrences: list[Occurrence], settings: Settings, templates: TemplateLibrary) -> list[PlannedMessage]:
    """One message per (occurrence, target), rendering each distinct text once."""
    targets = settings.all_targets()
    rendered: dict[tuple[str, str], RenderedMessage] = {}
    messages = []
    for occ in occurrences:
        cache_key = (occ.template, json.dumps(occ.context, sort_keys=True, ensure_ascii=False, default=str))
        if cache_key not in rendered:
            rendered[cache_key] = templates.render(occ.template, occ.context)
        message = rendered[cache_key]
        for name in occ.targets:
            if name not in targets:
                raise UnknownTarget(name, f"{occ.reason}")
            card = _card_for(occ, message, targets[name])
            problems = message_problems(message, targets[name], card)
            messages.append(PlannedMessage(
                key=occ.key_for(name), due_at=occ.due_at, kind=occ.kind, rule=occ.rule,
                occurrence=occ.occurrence, target=name,
                template=occ.template, msgtype=message.msgtype, title=message.title, text=message.text,
                reason=occ.reason, item=occ.item, provisional=occ.provisional, meta=dict(occ.meta),
                card=card, problems=problems))
    return messages


def message_problems(message: RenderedMessage, target: Any, card: dict[str, Any] | None) -> tuple[str, ...]:
    """What WeCom would refuse or garble for this target's channel: size, card fields, mentions."""
    problems = size_problems(message, (channel_of(target),)) + (card_problems(card) if card else [])
    if isinstance(target, RobotTarget) and message.msgtype == "markdown":
        mention = markdown_mention_problem(target.mentioned_list, target.mentioned_mobile_list)
        problems += [mention] if mention else []
    return tuple(problems)


def _card_for(occ: Occurrence, message: RenderedMessage, target: Any) -> dict[str, Any] | None:
    """A template card where the rule gives its button a key and the template has a card; only through
    the app to people (robots and app group chats cannot carry buttons)."""
    button_key = occ.meta.get("button_key")
    if not button_key or message.card is None or not isinstance(target, AppTarget):
        return None
    return message.card.as_dict(str(button_key))


# --- what a new holiday arrangement changes: the same window planned before and after ----------
# Occurrences keep their identity across re-planning (a meeting's key is its original start, a
# holiday notice's is its block), so comparing by (rule, occurrence) says which messages appear,
# go, move to another time, or change their words.

ADDED, REMOVED, MOVED, REWORDED = "新增", "取消", "改期", "内容变化"


@dataclass(frozen=True)
class PlanChange:
    """One occurrence (all its targets) that the new arrangement changes."""

    change: str
    kind: str
    title: str
    reason: str
    targets: tuple[str, ...]
    before: datetime | None
    after: datetime | None
    was_provisional: bool

    @property
    def when(self) -> datetime:
        return self.after or self.before  # type: ignore[return-value]


@dataclass(frozen=True)
class PlanChanges:
    changes: list[PlanChange]
    resolved: list[str]  # plan notices (待国务院通知 …) the arrangement settles
    remaining: list[str]


def _by_occurrence(plan: Plan) -> dict[tuple[str, str], list[PlannedMessage]]:
    grouped: dict[tuple[str, str], list[PlannedMessage]] = {}
    for message in plan.messages:
        grouped.setdefault((message.rule, message.occurrence), []).append(message)
    return grouped


def _change(kind: str, old: list[PlannedMessage] | None, new: list[PlannedMessage] | None) -> PlanChange:
    shown = (new or old)[0]  # type: ignore[index]
    targets = tuple(sorted({m.target for m in (new or old or [])}))
    return PlanChange(kind, shown.kind, shown.title, shown.reason, targets,
                      old[0].due_at if old else None, new[0].due_at if new else None,
                      bool(old and old[0].provisional))


def _compare(old: list[PlannedMessage], new: list[PlannedMessage]) -> str | None:
    if old[0].due_at != new[0].due_at:
        return MOVED
    if {(m.target, m.text) for m in old} != {(m.target, m.text) for m in new}:
        return REWORDED
    return None


def plan_changes(before: Plan, after: Plan) -> PlanChanges:
    old, new = _by_occurrence(before), _by_occurrence(after)
    changes = [_change(ADDED, None, new[key]) for key in new if key not in old]
    changes += [_change(REMOVED, old[key], None) for key in old if key not in new]
    for key in old.keys() & new.keys():
        if kind := _compare(old[key], new[key]):
            changes.append(_change(kind, old[key], new[key]))
    changes.sort(key=lambda c: (c.when, c.title))
    resolved = [line for line in before.notices if line not in after.notices]
    return PlanChanges(changes, resolved, list(after.notices))

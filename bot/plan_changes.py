"""What a new holiday arrangement changes in the plan: the same window planned before and after.

Pure: both plans come from ``bot.plan.build_plan`` over the same inputs, the second with the new
notice in the calendar. Occurrences keep their identity across re-planning (a meeting's key is
its original start, a holiday notice's is its block), so comparing by (rule, occurrence) says
which messages appear, go, move to another time, or change their words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.plan import Plan, PlannedMessage

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

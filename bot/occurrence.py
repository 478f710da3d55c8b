"""What the plan produces: occurrences of messages, and their expansion into one delivery per target."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

KINDS = (
    "holiday_notice", "holiday_return", "holiday_correction", "meeting_reminder", "meeting_change",
    "study_prompt", "study_nudge", "study_overdue", "announcement",
)

KIND_LABELS = {
    "holiday_notice": "节前廉洁提醒",
    "holiday_return": "节后收心提醒",
    "holiday_correction": "放假安排更正",
    "meeting_reminder": "会议提醒",
    "meeting_change": "会议变更通知",
    "study_prompt": "学习提醒",
    "study_nudge": "学习催办",
    "study_overdue": "逾期未学通报",
    "announcement": "通知",
    "alert": "告警",  # to the administrators (bot.delivery.alerts), never planned
    "reply": "回复",  # a callback's answer sent as an app message when it came too late to be passive
}


@dataclass(frozen=True)
class Occurrence:
    """One message that is due at one instant, to one or more targets.

    ``occurrence`` identifies what it is about within its rule (a holiday block, a meeting
    occurrence and reminder offset, a study item and nudge); with the rule and a target it makes
    the delivery key, which is unique in the outbox. The due instant is deliberately not part of
    the key: when an amended holiday or a moved meeting shifts a message that is still pending,
    re-planning moves the pending row instead of adding a second one, and a message already sent
    is never sent again because its time moved.
    """

    rule: str
    kind: str
    occurrence: str
    due_at: datetime
    targets: tuple[str, ...]
    template: str
    context: Mapping[str, Any]
    reason: str
    item: str | None = None
    provisional: bool = False
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind}")
        if self.due_at.tzinfo is None:
            raise ValueError("due_at must be aware")

    def key_for(self, target: str) -> str:
        return delivery_key(self.rule, self.occurrence, target)


@dataclass(frozen=True)
class PlannedMessage:
    """One message to one target: the outbox row it becomes (``bot.store.outbox.sync_plan``, ``enqueue``)."""

    key: str
    due_at: datetime
    kind: str
    rule: str
    occurrence: str
    target: str           # a name in the config: the channel looks its address up when it sends
    msgtype: str
    title: str
    text: str
    reason: str
    item: str | None = None
    provisional: bool = False
    meta: Mapping[str, Any] = field(default_factory=dict)
    card: dict[str, Any] | None = None
    template: str = ""    # empty for alerts and late callback answers, which no template plans
    problems: tuple[str, ...] = ()  # e.g. over WeCom's size limit

    def __post_init__(self) -> None:
        if self.due_at.tzinfo is None:
            raise ValueError("due_at must be aware")

    def as_json(self) -> dict[str, Any]:
        data = {"key": self.key, "due_at": self.due_at.isoformat(), "kind": self.kind, "rule": self.rule,
                "target": self.target, "template": self.template,
                "msgtype": self.msgtype, "title": self.title, "text": self.text, "reason": self.reason,
                "provisional": self.provisional}
        if self.item is not None:
            data["item"] = self.item
        if self.problems:
            data["problems"] = list(self.problems)
        return data



def delivery_key(rule: str, occurrence: str, target: str) -> str:
    """The outbox's unique key: (rule, occurrence, target)."""
    return f"{rule}|{occurrence}|{target}"

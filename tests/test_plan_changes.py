"""plan_changes: the same window planned without and with an arrangement."""

from __future__ import annotations

from datetime import datetime

from bot.clock import BEIJING
from bot.plan import ADDED, MOVED, REMOVED, REWORDED, Plan, PlannedMessage, plan_changes


def message(occurrence: str, due: datetime, target: str = "group-a", text: str = "正文",
            provisional: bool = False) -> PlannedMessage:
    return PlannedMessage(key=f"r|{occurrence}|{target}", due_at=due, kind="meeting_reminder", rule="r",
                          occurrence=occurrence, target=target, template="t", msgtype="markdown",
                          title="会议提醒", text=text, reason="依据", item=None, provisional=provisional, meta={},
                          card=None)


DAY = datetime(2026, 1, 2, 8, tzinfo=BEIJING)
LATER = datetime(2026, 1, 4, 8, tzinfo=BEIJING)


def test_each_kind_of_change_is_found_once_per_occurrence() -> None:
    before = Plan([message("moved", DAY, provisional=True), message("gone", DAY), message("words", DAY),
                   message("same", DAY), message("same", DAY, target="group-b")], ["待国务院通知"])
    after = Plan([message("moved", LATER), message("new", LATER), message("new", LATER, target="group-b"),
                  message("words", DAY, text="新的正文"), message("same", DAY), message("same", DAY, target="group-b")],
                 [])
    found = {(c.change, c.targets) for c in plan_changes(before, after).changes}
    assert found == {(MOVED, ("group-a",)), (REMOVED, ("group-a",)), (REWORDED, ("group-a",)),
                     (ADDED, ("group-a", "group-b"))}
    moved = next(c for c in plan_changes(before, after).changes if c.change == MOVED)
    assert (moved.before, moved.after, moved.was_provisional) == (DAY, LATER, True)
    assert plan_changes(before, after).resolved == ["待国务院通知"]


def test_no_change_when_the_plans_agree() -> None:
    plan = Plan([message("same", DAY)], ["x"])
    changes = plan_changes(plan, plan)
    assert changes.changes == [] and changes.resolved == [] and changes.remaining == ["x"]

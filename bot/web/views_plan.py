"""The plan: what will be sent in the next days, a fortnight a page, one entry per occurrence.

An occurrence's targets are summarised and listed (with skip and send-now) when expanded; only
the page's days are planned, so a page costs the same whether the range is 30 days or a year.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from flask import abort, g, redirect, render_template, request, url_for

from bot.errors import BotError
from bot.formatting import STATUS_LABELS, target_title
from bot.occurrence import KIND_LABELS, PlannedMessage
from bot.plan import Plan
from bot.store.queries import statuses_by_key
from bot.web.common import (
    Page,
    actor,
    console,
    mask_secrets,
    notice,
    now,
    page_of,
    parse_day,
    parse_int,
    record,
    runtime,
    settings,
    today,
)
from bot.web.plan_actions import send_now, skip

log = logging.getLogger(__name__)
DEFAULT_DAYS = 90
PAGE_DAYS = 14
ACTIONS = {"skip": "跳过", "send": "立即发送"}
NOT_IN_OUTBOX = "未写入发件箱"
SKIPPABLE = frozenset({None, "pending", "retry", "failed", "missed"})
SENDABLE = SKIPPABLE | {"unknown"}


@dataclass
class TargetRow:
    title: str
    status: str | None
    label: str
    skip_url: str | None
    send_url: str | None


@dataclass
class OccurrenceView:
    due_at: datetime
    kind: str
    reason: str
    text: str
    title: str
    provisional: bool
    problems: tuple[str, ...]
    targets: list[TargetRow] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """'第一党支部群 等 3 个对象'"""
        first = self.targets[0].title
        return first if len(self.targets) == 1 else f"{first} 等 {len(self.targets)} 个对象"

    @property
    def tally(self) -> str:
        """'待发送 98，已跳过 2'"""
        return "，".join(f"{label} {n}" for label, n in Counter(t.label for t in self.targets).items())


def window(days: int, raw_page: str | None) -> tuple[Page, date, date]:
    """The page of [today, today + days] asked for, and its first and last day."""
    page = page_of(raw_page, days + 1, PAGE_DAYS)
    first = today() + timedelta(days=page.offset)
    return page, first, min(first + timedelta(days=PAGE_DAYS - 1), today() + timedelta(days=days))


def page_number(day: date) -> int:
    return (day - today()).days // PAGE_DAYS + 1


def build(first: date, last: date) -> tuple[Plan | None, str | None]:
    try:
        return runtime().build_plan(first, last), None
    except BotError as exc:
        return None, mask_secrets(exc)
    except Exception as exc:  # the page must still open and say what went wrong
        log.exception("管理后台生成发送计划失败")
        return None, f"生成发送计划时出现内部错误（{type(exc).__name__}），请查看服务日志。"


class RowMaker:
    """Target rows with their action links, built without a url_for or urlencode per row."""

    def __init__(self, days: int) -> None:
        self.base, self.days = url_for("console.plan_confirm"), days
        self.targets, self.can_change = settings().all_targets(), g.user.can_change

    def row(self, message: PlannedMessage, day: date, status: str | None) -> TargetRow:
        label = STATUS_LABELS.get(status, status) if status else NOT_IN_OUTBOX
        link = f"{self.base}?key={quote(message.key, safe='')}&days={self.days}&day={day.isoformat()}&action="
        return TargetRow(target_title(message.target, self.targets), status, label,
                         link + "skip" if self.can_change and status in SKIPPABLE else None,
                         link + "send" if self.can_change and status in SENDABLE else None)


def group_by_day(messages: list[PlannedMessage], statuses: dict[str, tuple[int, str]],
                 rows: RowMaker) -> list[tuple[date, list[OccurrenceView]]]:
    zone = settings().zone
    days: dict[date, list[OccurrenceView]] = {}
    views: dict[tuple[Any, ...], OccurrenceView] = {}
    for m in messages:
        key = (m.due_at, m.rule, m.occurrence)
        view = views.get(key)
        if view is None:
            view = views[key] = OccurrenceView(m.due_at.astimezone(zone), m.kind, m.reason, m.text, m.title,
                                               m.provisional, m.problems)
            days.setdefault(view.due_at.date(), []).append(view)
        view.targets.append(rows.row(m, view.due_at.date(), statuses.get(m.key, (0, None))[1]))
    return sorted(days.items())


@console.get("/plan")
def plan_page() -> Any:
    days = parse_int(request.args.get("days"), DEFAULT_DAYS, 1, 366)
    page, first, last = window(days, request.args.get("page"))
    plan, error = build(first, last)
    messages = plan.messages if plan else []
    statuses = statuses_by_key(runtime().store, [m.key for m in messages])
    grouped = group_by_day(messages, statuses, RowMaker(days))
    return render_template("plan.html", days=days, error=error, notices=plan.notices if plan else [],
                           grouped=grouped, total=len(messages), occurrences=sum(len(o) for _, o in grouped),
                           page=page, first=first, last=last, start=today(), end=today() + timedelta(days=days))


def _find(key: str, days: int, day: date | None) -> PlannedMessage:
    """The planned message with this key: on its day first (cheap to plan), else over the whole range."""
    start, end = today(), today() + timedelta(days=days)
    windows = [(day, day)] if day is not None and start <= day <= end else []
    for first, last in [*windows, (start, end)]:
        plan, error = build(first, last)
        if plan is None:
            abort(409, error or "无法生成发送计划。")
        found = next((m for m in plan.messages if m.key == key), None)
        if found is not None:
            return found
    abort(404, "该消息已不在发送计划中（计划可能已变更），请返回发送计划页面刷新后再操作。")


def _action(raw: str | None) -> str:
    if raw not in ACTIONS:
        abort(400, "未知的操作。")
    return raw


def _back(message: PlannedMessage, days: int) -> str:
    """The plan page that shows this message."""
    day = message.due_at.astimezone(settings().zone).date()
    return url_for("console.plan_page", days=days, page=page_number(day))


@console.get("/plan/confirm")
def plan_confirm() -> Any:
    action = _action(request.args.get("action"))
    days = parse_int(request.args.get("days"), DEFAULT_DAYS, 1, 366)
    message = _find(request.args.get("key", ""), days, parse_day(request.args.get("day")))
    title = target_title(message.target, settings().all_targets())
    due_at = message.due_at.astimezone(settings().zone)
    return render_template("plan_confirm.html", action=action, label=ACTIONS[action], message=message,
                           target=title, days=days, due_at=due_at, day=due_at.date().isoformat(),
                           back=_back(message, days))


def _subject(message: PlannedMessage) -> str:
    title = target_title(message.target, settings().all_targets())
    when = message.due_at.astimezone(settings().zone).strftime("%Y-%m-%d %H:%M")
    return f"{KIND_LABELS.get(message.kind, message.kind)}“{message.title}” → {title}（原定 {when}）"


@console.post("/plan/action")
def plan_action() -> Any:
    action = _action(request.form.get("action"))
    days = parse_int(request.form.get("days"), DEFAULT_DAYS, 1, 366)
    message = _find(request.form.get("key", ""), days, parse_day(request.form.get("day")))
    rt, at = runtime(), now()
    if action == "skip":
        done, before = skip(rt, message, at, actor())
        after, verb = "skipped", "跳过"
    else:
        done, before = send_now(rt, message, at)
        after, verb = "pending（立即发送）", "立即发送"
    label = STATUS_LABELS.get(before, before)
    if not done:
        notice(f"该消息当前状态为“{label}”，不能{verb}。", "danger")
        return redirect(_back(message, days))
    record(f"{verb}计划消息", _subject(message), before=label, after=after)
    done_text = "已跳过该消息，不会发送。" if action == "skip" else "已安排立即发送，发送结果见“发送记录”。"
    notice(done_text, "success")
    return redirect(_back(message, days))

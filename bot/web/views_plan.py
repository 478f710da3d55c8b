"""The plan: what will be sent in the next days, grouped by day, with skip and send-now."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask import abort, redirect, render_template, request, url_for

from bot.errors import BotError
from bot.formatting import STATUS_LABELS, target_title
from bot.occurrence import KIND_LABELS
from bot.plan import Plan, PlannedMessage
from bot.web.common import (
    actor,
    console,
    mask_secrets,
    notice,
    now,
    parse_int,
    record,
    runtime,
    settings,
    today,
)
from bot.web.plan_actions import send_now, skip, statuses_by_key

log = logging.getLogger(__name__)
DEFAULT_DAYS = 90
ACTIONS = {"skip": "跳过", "send": "立即发送"}


@dataclass
class TargetRow:
    key: str
    name: str
    title: str
    status: str | None


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


def build(days: int) -> tuple[Plan | None, str | None]:
    start = today()
    try:
        return runtime().build_plan(start, start + timedelta(days=days)), None
    except BotError as exc:
        return None, mask_secrets(exc)
    except Exception as exc:  # the page must still open and say what went wrong
        log.exception("building the plan for the console failed")
        return None, f"生成发送计划时出现内部错误（{type(exc).__name__}），请查看服务日志。"


def group_by_day(messages: list[PlannedMessage], statuses: dict[str, tuple[int, str]]) -> list[tuple[date, list[OccurrenceView]]]:
    targets = settings().all_targets()
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
        status = statuses.get(m.key, (0, None))[1]
        view.targets.append(TargetRow(m.key, m.target, target_title(m.target, targets), status))
    return sorted(days.items())


@console.get("/plan")
def plan_page() -> Any:
    days = parse_int(request.args.get("days"), DEFAULT_DAYS, 1, 366)
    plan, error = build(days)
    messages = plan.messages if plan else []
    statuses = statuses_by_key(runtime(), [m.key for m in messages])
    return render_template("plan.html", days=days, error=error, notices=plan.notices if plan else [],
                           grouped=group_by_day(messages, statuses), total=len(messages),
                           start=today(), end=today() + timedelta(days=days), kinds=KIND_LABELS,
                           status_labels=STATUS_LABELS)


def _find(key: str, days: int) -> PlannedMessage:
    plan, error = build(days)
    if plan is None:
        abort(409, error or "无法生成发送计划。")
    found = next((m for m in plan.messages if m.key == key), None)
    if found is None:
        abort(404, "该消息已不在发送计划中（计划可能已变更），请返回发送计划页面刷新后再操作。")
    return found


def _action(raw: str | None) -> str:
    if raw not in ACTIONS:
        abort(400, "未知的操作。")
    return raw


@console.get("/plan/confirm")
def plan_confirm() -> Any:
    action = _action(request.args.get("action"))
    days = parse_int(request.args.get("days"), DEFAULT_DAYS, 1, 366)
    message = _find(request.args.get("key", ""), days)
    title = target_title(message.target, settings().all_targets())
    return render_template("plan_confirm.html", action=action, label=ACTIONS[action], message=message,
                           target=title, days=days, due_at=message.due_at.astimezone(settings().zone))


def _subject(message: PlannedMessage) -> str:
    title = target_title(message.target, settings().all_targets())
    when = message.due_at.astimezone(settings().zone).strftime("%Y-%m-%d %H:%M")
    return f"{KIND_LABELS.get(message.kind, message.kind)}“{message.title}” → {title}（原定 {when}）"


@console.post("/plan/action")
def plan_action() -> Any:
    action = _action(request.form.get("action"))
    days = parse_int(request.form.get("days"), DEFAULT_DAYS, 1, 366)
    message = _find(request.form.get("key", ""), days)
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
        return redirect(url_for("console.plan_page", days=days))
    record(f"{verb}计划消息", _subject(message), before=label, after=after)
    done_text = "已跳过该消息，不会发送。" if action == "skip" else "已安排立即发送，发送结果见“发送记录”。"
    notice(done_text, "success")
    return redirect(url_for("console.plan_page", days=days))

"""Readable Chinese text for the terminal: the plan, check results, deliveries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from itertools import groupby
from typing import Any

from bot.occurrence import KIND_LABELS
from bot.templates.render import cn_date_full

STATUS_LABELS = {
    "pending": "待发送", "sending": "发送中", "sent": "已发送", "retry": "等待重试", "failed": "发送失败",
    "unknown": "结果不明", "missed": "已错过", "cancelled": "已取消", "skipped": "已跳过",
}


def target_title(name: str, targets: Mapping[str, Any]) -> str:
    target = targets.get(name)
    return getattr(target, "title", None) or name


def first_line(text: str, width: int = 36, skip: str = "") -> str:
    """The first meaningful line of a message (markdown marks removed; a line equal to `skip` passed over)."""
    lines = (part.strip("# *>").strip() for part in text.splitlines())
    line = next((part for part in lines if part and part != skip), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def format_plan(messages: list[Any], notices: list[str], targets: Mapping[str, Any]) -> str:
    """One line per occurrence (its targets joined), grouped by day."""
    lines: list[str] = []
    for notice in notices:
        lines.append(f"【注意】{notice}")
    if notices:
        lines.append("")
    by_occurrence = groupby(messages, key=lambda m: (m.due_at, m.rule, m.occurrence))
    current_day = None
    count = 0
    for (due_at, _rule, _occ), group in by_occurrence:
        group = list(group)
        day = due_at.date()
        if day != current_day:
            lines.append(cn_date_full(day))
            current_day = day
        first = group[0]
        flag = "（节假日安排未发布，暂按法定节日和周末推算）" if first.provisional else ""
        names = "、".join(target_title(m.target, targets) for m in group)
        lines.append(f"  {due_at:%H:%M}  {KIND_LABELS.get(first.kind, first.kind)}  {first_line(first.text, skip=first.title)}{flag}")
        lines.append(f"         发送对象：{names}")
        lines.append(f"         依据：{first.reason}")
        count += len(group)
    if not messages:
        lines.append("该时间段内没有计划发送的消息。")
    else:
        lines.append("")
        lines.append(f"共 {count} 条消息。")
    return "\n".join(lines)


def format_deliveries(rows: Iterable[Any], zone: Any) -> str:
    lines = [f"{'计划时间':<17}{'状态':<8}{'类别':<10}{'对象':<16}说明"]
    for row in rows:
        due = row.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        status = STATUS_LABELS.get(row.status, row.status)
        if row.late and row.status == "sent":
            status += "（迟发）"
        detail = row.last_error or first_line(row.text, 30)
        lines.append(f"{due:<19}{status:<8}{KIND_LABELS.get(row.kind, row.kind):<10}{row.target:<18}{detail}")
    return "\n".join(lines)


def iso(value: datetime | None, zone: Any) -> str | None:
    return value.astimezone(zone).isoformat() if value else None

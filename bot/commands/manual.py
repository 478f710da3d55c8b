"""Messages sent by hand (`wecom-reminder send`, the console's 立即发送): through the same outbox."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.config import Settings
from bot.errors import TemplateError, UnknownTarget
from bot.formatting import STATUS_LABELS, target_title
from bot.occurrence import PlannedMessage
from bot.runtime import Runtime
from bot.store.outbox import enqueue
from bot.templates.samples import TEMPLATE_KINDS, sample_context

LOOKAHEAD = timedelta(days=400)
RECENT = timedelta(days=60)


def enqueue_manual(runtime: Runtime, template: str, to: list[str], at: datetime | None,
                   latest: bool = False, context: dict[str, Any] | None = None) -> list[str]:
    """Queue `template` for each target, rendered as its next planned occurrence (else its sample).

    With `latest`, the most recent occurrence up to now is used instead (the demo re-sends the
    study prompt of the item that is open now); with `context`, that context is rendered (the demo's
    notice of the next holiday).
    """
    settings = runtime.settings()
    targets = settings.all_targets()
    names = settings.resolve_targets(to)
    for name in names:
        if name not in targets:
            raise UnknownTarget(name, "--to")
    if template not in runtime.templates().names():
        raise TemplateError(f"模板 {template} 不存在", fix=f"可用的模板：{'、'.join(runtime.templates().names())}")
    now = runtime.clock.now()
    due = at or now
    if context is not None:
        planned = []
    elif latest:
        planned = [m for m in runtime.build_plan((now - RECENT).date(), now.date()).messages if m.due_at <= now]
        planned.reverse()
    else:
        planned = runtime.build_plan(now.date(), (now + LOOKAHEAD).date()).messages
    messages = [_message_for(runtime, planned, template, name, due, context) for name in names]
    enqueue(runtime.store, messages, now)
    return [message.key for message in messages]


def _message_for(runtime: Runtime, planned: list[PlannedMessage], template: str, target: str,
                 due: datetime, context: dict[str, Any] | None) -> PlannedMessage:
    same = [m for m in planned if m.template == template and m.target == target]
    key = f"manual|{template}@{due:%Y%m%dT%H%M%S}|{target}"
    if same:
        m = same[0]
        return PlannedMessage(key=key, due_at=due, kind=m.kind, rule="manual", occurrence=f"{template}@{due:%Y%m%dT%H%M%S}",
                              target=target, template=template, msgtype=m.msgtype,
                              title=m.title, text=m.text, reason=f"手动发送（内容同计划中的：{m.reason}）",
                              item=m.item, provisional=False, meta=m.meta, card=m.card)
    rendered = runtime.templates().render(template, context or sample_context(template))
    reason = "手动发送（演示）" if context else "手动发送（计划中没有该模板的消息，使用示例内容）"
    return PlannedMessage(key=key, due_at=due, kind=_kind_of(template), rule="manual",
                          occurrence=f"{template}@{due:%Y%m%dT%H%M%S}", target=target, template=template,
                          msgtype=rendered.msgtype, title=rendered.title, text=rendered.text,
                          reason=reason, item=None,
                          provisional=False, meta={}, card=None)


def _kind_of(template: str) -> str:
    return TEMPLATE_KINDS.get(template, "announcement")


def send_outcome_text(rows: list[Any], settings: Settings) -> str:
    targets = settings.all_targets()
    lines = []
    for row in rows:
        status = STATUS_LABELS.get(row.status, row.status)
        detail = f"：{row.last_error}" if row.last_error and row.status != "sent" else ""
        if row.status in ("pending", "sending", "retry"):
            detail += "（尚未发送完毕，运行中的服务会继续发送；可用 wecom-reminder deliveries 查看结果）"
        lines.append(f"{target_title(row.target, targets)}：{status}{detail}")
    return "\n".join(lines)

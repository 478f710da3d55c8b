"""Alerts to the administrators: a delivery of kind 'alert', rendered from messages/alert.j2.

An alert goes through the outbox like any message (so it is retried and recorded), to
``settings.admins.target``. A failed alert is never alerted about: that would loop.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime

from jinja2 import TemplateNotFound

from bot.config import Settings
from bot.errors import BotError
from bot.formatting import target_title
from bot.occurrence import KIND_LABELS, PlannedMessage, delivery_key
from bot.store.db import Store
from bot.store.outbox import enqueue
from bot.store.queries import DeliveryRow
from bot.templates.render import RenderedMessage, TemplateLibrary

log = logging.getLogger(__name__)

ALERT_KIND = "alert"
MAX_LINES = 20
FAILED_ADVICE = "核对失败原因；群机器人密钥或应用配置有误的，更正配置后在管理后台重新发送"
UNKNOWN_ADVICE = "请到相应群聊确认消息是否已送达；未送达的，在管理后台重新发送"
MISSED_ADVICE = "服务停止期间错过的消息不会自动补发；如仍需通知，请在管理后台重新发送"


def problem_line(row: DeliveryRow, reason: str | None, settings: Settings) -> str:
    label = KIND_LABELS.get(row.kind, row.kind)
    return f"{label} → {target_title(row.target, settings.all_targets())}：{reason or '原因不明'}"


def raise_alert(store: Store, settings: Settings, now: datetime, title: str, lines: Sequence[str],
                advice: str, about: Sequence[DeliveryRow]) -> int:
    """Queue one alert per admin target, due now; the number queued (0 without an admin target)."""
    admin = settings.admins.target
    if not admin:
        log.warning("未配置 admins.target，告警未发送：%s（%d 条）", title, len(lines))
        return 0
    message = render_alert(settings, title, lines, advice)
    seed = ",".join(f"{row.id}:{row.attempts}:{row.status}" for row in about) + title + "\n".join(lines)
    occurrence = "alert:" + hashlib.sha256(seed.encode()).hexdigest()[:20]
    targets = settings.all_targets()
    planned = [_alert_message(name, occurrence, message, now)
               for name in settings.resolve_targets([admin]) if name in targets]
    inserted = enqueue(store, planned, now)
    if inserted:  # the same alert again (same title, lines and rows) is not queued twice
        log.info("已加入告警，发往 %s：%s", admin, title)
    return inserted


def _alert_message(name: str, occurrence: str, message: RenderedMessage, now: datetime) -> PlannedMessage:
    return PlannedMessage(key=delivery_key(ALERT_KIND, occurrence, name), rule=ALERT_KIND, kind=ALERT_KIND,
                          occurrence=occurrence, target=name, msgtype=message.msgtype, title=message.title,
                          text=message.text, due_at=now, reason="发送异常告警")


def render_alert(settings: Settings, title: str, lines: Sequence[str], advice: str) -> RenderedMessage:
    shown = list(lines[:MAX_LINES])
    if len(lines) > MAX_LINES:
        shown.append(f"……另有 {len(lines) - MAX_LINES} 条，详见管理后台")
    context = {"alert": {"title": title, "lines": shown, "advice": advice},
               "organisation": {"name": settings.organisation.name}}
    try:
        return TemplateLibrary(settings.path("messages")).render("alert", context)
    except (BotError, TemplateNotFound):
        # A broken alert template must not hide the alert itself.
        log.warning("告警模板无法渲染，改发纯文本", exc_info=True)
        text = "\n".join([f"【wecom-reminder 告警】{title}", *(f"- {line}" for line in shown), f"处理建议：{advice}"])
        return RenderedMessage("text", "发送异常告警", text)

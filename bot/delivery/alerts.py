"""Alerts to the administrators: a delivery of kind 'alert', rendered from messages/alert.j2.

An alert goes through the outbox like any message (so it is recorded), to the first of the
administrators' targets (``admins.targets``, in order); when it fails there it goes to the next one
(``forwarded_alert``), so an alert survives the channel that failed. A failed alert is never alerted
about: that would loop. A configuration error is alerted once per cause, target and day, however
many messages it stops (``raise_configuration_alert``).
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from jinja2 import TemplateNotFound

from bot.clock import BEIJING
from bot.config import Settings
from bot.errors import BotError
from bot.formatting import target_title
from bot.occurrence import KIND_LABELS, PlannedMessage, delivery_key
from bot.store.db import Store
from bot.store.outbox import enqueue
from bot.store.queries import DeliveryRow
from bot.templates.pool import shared_pool
from bot.templates.render import RenderedMessage, TemplateLibrary, size_problems
from bot.wecom.callback_crypto import truncate_utf8
from bot.wecom.outcomes import Outcome

log = logging.getLogger(__name__)

ALERT_KIND = "alert"
# Messages addressed to the administrators' chain (admins.targets): one that fails at a target goes to
# the next at once, so the office hears of failures and overdue studies when its app is blocked.
ADMIN_KINDS = frozenset({ALERT_KIND, "study_overdue"})
MAX_LINES = 20
PART_BYTES = 1400  # of problem lines in one alert; WeCom's text limit is 2,048 bytes
LINE_BYTES = 600   # of one problem line (a long error message is cut, its file and line come first)
TEXT_BYTES = 2048
ADMIN_CHANNELS = ("robot", "app", "appchat")  # an alert may be forwarded along the chain to any of them
FAILED_ADVICE = "核对失败原因；群机器人密钥或应用配置有误的，更正配置后在管理后台重新发送"
UNKNOWN_ADVICE = "请到相应群聊确认消息是否已送达；未送达的，在管理后台重新发送"
CONFIGURATION_ADVICE = "按上面的处理办法更正企业微信后台或配置文件后，在管理后台「发送记录」中重新发送；同一原因当天不再重复告警"
MISSED_ADVICE = "服务停止期间错过的消息不会自动补发；如仍需通知，请在管理后台重新发送"


def problem_line(row: DeliveryRow, reason: str | None, settings: Settings) -> str:
    label = KIND_LABELS.get(row.kind, row.kind)
    if row.title and row.title != label:  # the title names which message it was
        label += f"“{row.title}”"
    return f"{label} → {target_title(row.target, settings.all_targets())}：{reason or '原因不明'}"


def raise_alert(store: Store, settings: Settings, now: datetime, title: str, lines: Sequence[str],
                advice: str, about: Sequence[DeliveryRow], occurrence: str | None = None) -> int:
    """Queue one alert to the first admin target, due now; the number queued (0 without one, or
    when this occurrence was alerted already)."""
    messages = alert_messages(settings, now, title, lines, advice, about, occurrence)
    inserted = enqueue(store, messages, now) if messages else 0
    if inserted:  # the same alert again (same title, lines and rows) is not queued twice
        log.info("已加入告警，发往 %s：%s", messages[0].target, title)
    return inserted


def alert_messages(settings: Settings, now: datetime, title: str, lines: Sequence[str], advice: str,
                   about: Sequence[DeliveryRow], occurrence: str | None = None) -> list[PlannedMessage]:
    """The alert as messages to queue (none without an admin target), each within WeCom's 2,048 bytes.

    Keyed by its content (no ``occurrence``), it names every line, in parts: the same title, lines
    and row attempts give the same keys, so queueing it again is a no-op. Keyed by ``occurrence``
    (once per cause and day), it is one message, cut to "……另有 N 条" if it must be."""
    chain = [name for name in settings.admin_chain() if name in settings.all_targets()]
    if not chain:
        log.warning("未配置 admins.targets，告警未发送：%s（%d 条）", title, len(lines))
        return []
    shorts = [short for line in lines for short in _short_lines(line)]
    parts = _parts(shorts)
    if occurrence is not None:  # once per cause and day: one message
        shown = parts[0] if parts else []
        if cut := len(shorts) - len(shown):
            shown = [*shown, f"……另有 {cut} 条，详见管理后台"]
        return [_alert_message(chain[0], occurrence, render_alert(settings, title, shown, advice), now)]
    messages = []
    for number, part in enumerate(parts or [[]], 1):
        named = f"{title}（{number}/{len(parts)}）" if len(parts) > 1 else title
        seed = ",".join(f"{row.id}:{row.attempts}:{row.status}" for row in about) + named + "\n".join(part)
        key = "alert:" + hashlib.sha256(seed.encode()).hexdigest()[:20]
        messages.append(_alert_message(chain[0], key, render_alert(settings, named, part, advice), now))
    return messages


def problem_alerts(settings: Settings, now: datetime, title: str, problems: Sequence[tuple[DeliveryRow, str | None]],
                   advice: str) -> list[PlannedMessage]:
    """Alerts naming every row, in parts that each fit one message (none without a row)."""
    if not problems:
        return []
    lines = [problem_line(row, reason, settings) for row, reason in problems]
    return alert_messages(settings, now, f"{len(problems)} {title}", lines, advice, [row for row, _ in problems])


def _short_lines(text: str) -> list[str]:
    """A problem's text as lines of at most LINE_BYTES (an error message may span lines)."""
    return [truncate_utf8(line, LINE_BYTES - 3) + "…" if len(line.encode()) > LINE_BYTES else line
            for line in text.splitlines() if line.strip()] or [text]


def _parts(lines: Sequence[str]) -> list[list[str]]:
    """Up to MAX_LINES lines and PART_BYTES bytes a part: the title and advice fit in the rest of 2,048."""
    parts: list[list[str]] = [[]]
    for line in lines:
        size = sum(len(kept.encode()) + 3 for kept in parts[-1])
        if parts[-1] and (len(parts[-1]) == MAX_LINES or size + len(line.encode()) > PART_BYTES):
            parts.append([])
        parts[-1].append(line)
    return parts if lines else []


def outcome_alerts(settings: Settings, now: datetime,
                   problems: Sequence[tuple[DeliveryRow, str, str | None, Outcome | None]]) -> list[PlannedMessage]:
    """The alerts about failed and unknown outcomes (row, status, reason, outcome) of one record."""
    messages = [m for row, _, reason, _ in problems if row.kind in ADMIN_KINDS
                if (m := forwarded_alert(settings, row, reason, now)) is not None]
    problems = [p for p in problems if p[0].kind not in ADMIN_KINDS]  # never an alert about an alert
    configuration = [(row, reason, o.errcode) for row, _, reason, o in problems if o and o.configuration]
    messages += configuration_alerts(settings, now, configuration)
    problems = [p for p in problems if not (p[3] and p[3].configuration)]
    for status, title, advice in (("failed", "条消息发送失败", FAILED_ADVICE),
                                  ("unknown", "条消息发送结果不明", UNKNOWN_ADVICE)):
        messages += problem_alerts(settings, now, title, [(r, why) for r, s, why, _ in problems if s == status],
                                   advice)
    return messages


def configuration_alerts(settings: Settings, now: datetime,
                         failures: Sequence[tuple[DeliveryRow, str | None, int | None]]) -> list[PlannedMessage]:
    """Failures (row, reason, errcode) that retrying cannot cure: one alert per (cause, target)."""
    by_cause: dict[tuple[int | None, str], list[tuple[DeliveryRow, str | None]]] = defaultdict(list)
    for row, reason, errcode in failures:
        by_cause[(errcode, row.target)].append((row, reason))
    return [message for (errcode, target), chosen in by_cause.items()
            for message in configuration_alert(settings, now, target, chosen[0][1] or "", errcode,
                                               [row for row, _ in chosen])]


def configuration_alert(settings: Settings, now: datetime, target: str, reason: str,
                        errcode: int | None, rows: Sequence[DeliveryRow]) -> list[PlannedMessage]:
    """One alert per (cause, target) and day: fifty messages stopped by one untrusted IP are one alert."""
    title = f"推送对象「{target_title(target, settings.all_targets())}」配置有误，消息无法发送"
    lines = [problem_line(row, reason, settings) for row in rows]
    occurrence = f"config:{errcode}:{target}:{now.astimezone(BEIJING):%Y-%m-%d}"
    return alert_messages(settings, now, title, lines, CONFIGURATION_ADVICE, rows, occurrence)


def next_admin(settings: Settings, target: str) -> str | None:
    """The admin target after ``target`` in the chain, if any."""
    chain = [name for name in settings.admin_chain() if name in settings.all_targets()]
    return chain[chain.index(target) + 1] if target in chain[:-1] else None


def forwarded_alert(settings: Settings, row: DeliveryRow, reason: str | None, now: datetime) -> PlannedMessage | None:
    """A message to the administrators that failed at one of their targets goes to the next: the
    message to it, if there is one."""
    following = next_admin(settings, row.target)
    if following is None:
        log.error("告警消息未能送达任何管理员推送对象（最后为 %s）：%s", row.target, reason)
        return None
    log.warning("告警未能送达 %s（%s），改发 %s", row.target, reason, following)
    return PlannedMessage(key=delivery_key(row.rule, row.occurrence, following), rule=row.rule,
                          kind=row.kind, occurrence=row.occurrence, item=row.item, target=following,
                          msgtype=row.msgtype, title=row.title, text=row.text, due_at=now,
                          reason=f"未能送达 {row.target}，改发下一个管理员推送对象")


def _alert_message(name: str, occurrence: str, message: RenderedMessage, now: datetime) -> PlannedMessage:
    return PlannedMessage(key=delivery_key(ALERT_KIND, occurrence, name), rule=ALERT_KIND, kind=ALERT_KIND,
                          occurrence=occurrence, target=name, msgtype=message.msgtype, title=message.title,
                          text=message.text, due_at=now, reason="发送异常告警")


def render_alert(settings: Settings, title: str, lines: Sequence[str], advice: str) -> RenderedMessage:
    """One part of an alert, from messages/alert.j2; plain text where the template fails or runs
    past the size WeCom accepts (an alert nobody receives is worse than a plain one)."""
    context = {"alert": {"title": title, "lines": list(lines), "advice": advice},
               "organisation": {"name": settings.organisation.name}}
    try:
        message = TemplateLibrary(settings.path("messages"), pool=shared_pool()).render("alert", context)
    except (BotError, TemplateNotFound):
        # A broken or runaway alert template (stopped by the pool) must not hide the alert itself.
        log.warning("告警模板无法渲染，改发纯文本", exc_info=True)
    else:
        if not size_problems(message, ADMIN_CHANNELS):
            return message
        log.warning("告警模板渲染后超过企业微信长度上限，改发纯文本：%s", title)
    text = "\n".join([f"【wecom-reminder 告警】{title}", *(f"- {line}" for line in lines), f"处理建议：{advice}"])
    return RenderedMessage("text", "发送异常告警", truncate_utf8(text, TEXT_BYTES))

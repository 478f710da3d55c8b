"""WeCom's size limits per channel, and which channels each template is sent through.

A template is judged by the channels of the targets that use it (issue 10): the same 3,000-byte
markdown is fine in a group robot (4,096 bytes) and refused by the app (2,048 bytes). ``check``,
the template editor and the sender all ask ``size_problems`` with those channels.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.config import AppChatTarget, AppTarget, RobotTarget, Settings
from bot.templates.card import FIELD_NAME_CHARS, FIELD_VALUE_CHARS, MAX_FIELDS, is_link

# UTF-8 bytes (wecom.md §2, §4, §6; app markdown confirmed 2,048 by issue 10).
CHANNEL_LIMITS: dict[str, dict[str, int]] = {
    "robot": {"text": 2048, "markdown": 4096},
    "app": {"text": 2048, "markdown": 2048},
    "appchat": {"text": 2048, "markdown": 2048},
}
CHANNEL_NAMES = {"robot": "群机器人", "app": "应用消息", "appchat": "应用群聊", "console": "控制台"}


def channel_of(target: Any) -> str:
    match target:
        case RobotTarget():
            return "robot"
        case AppTarget():
            return "app"
        case AppChatTarget():
            return "appchat"
    return "console"


def limit_for(msgtype: str, channels: Iterable[str]) -> tuple[int, str] | None:
    """The strictest byte limit for ``msgtype`` over ``channels`` and the channel that sets it."""
    limits = [(CHANNEL_LIMITS[c][msgtype], c) for c in channels if msgtype in CHANNEL_LIMITS.get(c, {})]
    return min(limits) if limits else None


def template_channels(settings: Settings, name: str) -> frozenset[str]:
    """The channels template ``name`` goes through, from the targets the config sends it to."""
    targets = settings.all_targets()
    names = _targets_using(settings, name)
    chosen = targets.values() if names is None else [targets[n] for n in names if n in targets]
    return frozenset(channel_of(t) for t in chosen) or frozenset({"robot"})


def _targets_using(settings: Settings, name: str) -> tuple[str, ...] | None:
    """The targets the config sends ``name`` to; None when the config does not say (schedules do)."""
    studies = settings.studies
    secretaries = [b.secretary_target for b in settings.organisation.branches]
    found: list[str] = []
    for rule in settings.rules:
        if rule.template == name:
            found += settings.resolve_targets(rule.to)
    if name in (studies.prompt_template, studies.nudge_template) or name.startswith("reply_"):
        found += secretaries  # replies go back to the secretary, passively or as an app message
    if name == studies.prompt_template and studies.group_notice:
        found += [b.group for b in settings.organisation.branches if b.group]
    if name in (studies.overdue_template, "alert"):
        found += settings.admin_chain()
    return tuple(found) or None


def markdown_mention_problem(mentioned_list: list[str], mobiles: list[str]) -> str | None:
    """Why a robot's mentions cannot ride on a markdown message, if they cannot."""
    if "@all" in mentioned_list or mobiles:
        return ("群机器人的 markdown 消息不能 @所有人，也不能按手机号 @成员（只有 text 消息可以）。"
                "处理办法：把该推送对象的 mentioned_list 改为成员账号（userid，将以 <@userid> 写入消息），"
                "删去 @all 和 mentioned_mobile_list；或改用 text 类型的模板")
    return None


# Template card fields (doc path 90236: "建议不超过" in characters; task_id and key in bytes).
CARD_LIMITS = {"title": ("标题", 36), "description": ("说明", 160), "button_text": ("按钮文字", 10)}


def card_problems(card: dict[str, Any]) -> list[str]:
    """The fields of a button card over WeCom's documented lengths, in words."""
    problems = [f"模板卡片的{label}共 {len(str(card.get(field, '')))} 个字，超过企业微信建议的 {limit} 个字。"
                f"处理办法：缩短{label}" for field, (label, limit) in CARD_LIMITS.items()
                if len(str(card.get(field, ""))) > limit]
    if len(str(card.get("button_key", "")).encode("utf-8")) > 1024:
        problems.append("模板卡片的按钮 key 超过 1024 字节。处理办法：缩短学习事项的编号")
    return problems + field_problems(card.get("fields") or [])


def field_problems(fields: list[Any]) -> list[str]:
    """A card's rows (template front matter ``card.fields``) over WeCom's count and lengths."""
    problems = []
    if len(fields) > MAX_FIELDS:
        problems.append(f"模板卡片的字段共 {len(fields)} 项，超过企业微信 {MAX_FIELDS} 项的上限。处理办法：删去部分字段，或写进正文")
    for name, value in fields:
        if len(name) > FIELD_NAME_CHARS:
            problems.append(f"模板卡片的字段名称“{name}”超过 {FIELD_NAME_CHARS} 个字。处理办法：缩短名称")
        if not is_link(value) and len(value) > FIELD_VALUE_CHARS:  # a link shows as “点击查看”
            problems.append(f"模板卡片的字段“{name}”共 {len(value)} 个字，超过企业微信建议的 {FIELD_VALUE_CHARS} 个字。"
                            "处理办法：缩短内容，较长的内容可移到正文")
    return problems

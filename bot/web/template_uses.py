"""Which rules send a template, to which targets, through which channels: the editor shows it next
to the preview, so an administrator sees every place an edit will reach and each channel's limit."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings

REPLIES = "应用自动回复（发给发来消息的支部书记）"


@dataclass(frozen=True)
class TemplateUse:
    rule: str                  # in words: "规则 holiday_integrity：节前廉洁提醒"
    targets: tuple[str, ...]   # target names
    card: bool = False         # app targets get the template's card (study prompts and nudges)


def template_uses(settings: Settings, name: str) -> list[TemplateUse]:
    uses = [TemplateUse(f"规则 {r.id}", settings.resolve_targets(r.to)) for r in settings.rules if r.template == name]
    return uses + _study_uses(settings, name) + _other_uses(settings, name)


def _study_uses(settings: Settings, name: str) -> list[TemplateUse]:
    studies, branches = settings.studies, settings.organisation.branches
    secretaries = tuple(b.secretary_target for b in branches)
    admins = settings.admin_chain()
    uses = []
    if name == studies.prompt_template:
        uses.append(TemplateUse("学习提醒：学习内容发布时发给各支部书记", secretaries, card=True))
        if studies.group_notice:
            uses.append(TemplateUse("学习提醒：同时通知各支部群", tuple(b.group for b in branches if b.group)))
        if settings.aibot is not None:  # the same card, pushed by the AI bot (bot.inbox.group_bot)
            uses.append(TemplateUse("学习提醒：智能机器人向已绑定的支部群推送同一张卡片（超长部分截断）", (), card=True))
    if name == studies.nudge_template:
        uses.append(TemplateUse("学习催办：截止前发给尚未确认的支部书记", secretaries, card=True))
    if name == studies.overdue_template:
        uses.append(TemplateUse("逾期未学通报：截止时发给管理员（按顺序，送达第一个能送达的）", admins))
    return uses


def _other_uses(settings: Settings, name: str) -> list[TemplateUse]:
    groups = tuple(b.group for b in settings.organisation.branches if b.group)
    if name in ("meeting_reminder", "meeting_change"):
        return [TemplateUse("会议提醒：schedules/meetings.yaml 和日历文件中的会议，发往各会议的群", groups)]
    if name == "announcement":
        return [TemplateUse("通知：schedules/announcements.yaml 中各条通知指定的对象", ())]
    if name == "alert":
        return [TemplateUse("发送异常告警：发给管理员（按顺序，送达第一个能送达的）", settings.admin_chain())]
    if name.startswith("reply_"):
        return [TemplateUse(REPLIES, tuple(b.secretary_target for b in settings.organisation.branches))]
    return []

"""A template's card: the parts of a WeCom template card (模板卡片) that an administrator writes in
the template's front matter, next to title and msgtype:

    card:
      title: 学习提醒
      fields:
        截止时间: "{{ item.deadline | cn_datetime }}"
      button: 已完成学习

The body of the template is the card's text (sub_title_text); ``fields`` become the card's rows
(horizontal_content_list; a value that is a link opens it); ``button`` is the button's text. The
button's key stays with the program (it is what a click confirms). Where a card cannot go (a group
robot, an app group chat), the message is the body followed by one line per field, so nothing is
lost. Lengths are WeCom's documented ones for button_interaction cards (message/send, 模板卡片).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.errors import TemplateError

TITLE_CHARS = 36
TEXT_CHARS = 160
MAX_FIELDS = 6
FIELD_NAME_CHARS = 5
FIELD_VALUE_CHARS = 30
BUTTON_CHARS = 10
CARD_KEYS = ("title", "fields", "button")
QUOTE_FIX = "按“card:”下逐行写 title、fields、button；含 {{ }} 的值请用英文双引号括起来"

# What goes where, for the editor: (part of the card, where it comes from, WeCom's limit).
PLACES = (
    ("卡片标题", "元数据 card.title", f"不超过 {TITLE_CHARS} 个字"),
    ("卡片正文", "模板正文（--- 之后的全部内容）", f"不超过 {TEXT_CHARS} 个字"),
    ("卡片字段", "元数据 card.fields，每行“名称: 内容”；内容为链接时可点击打开",
     f"不超过 {MAX_FIELDS} 项，名称不超过 {FIELD_NAME_CHARS} 个字，内容不超过 {FIELD_VALUE_CHARS} 个字"),
    ("按钮文字", "元数据 card.button（按钮点击后由程序记录确认）", f"不超过 {BUTTON_CHARS} 个字"),
    ("发往群聊时", "群机器人和应用群聊不能发送卡片：发送模板正文，其后逐行附上“名称：内容”", "按文字消息的字节上限"),
)


@dataclass(frozen=True)
class CardSpec:
    """The card as written: Jinja strings, rendered with the template's context."""

    title: str
    fields: tuple[tuple[str, str], ...]
    button: str


@dataclass(frozen=True)
class RenderedCard:
    title: str
    text: str
    fields: tuple[tuple[str, str], ...]
    button: str

    def as_dict(self, button_key: str) -> dict[str, Any]:
        """The delivery's card (stored with the outbox row; bot.wecom.api builds the JSON)."""
        return {"title": self.title, "description": self.text, "fields": [list(f) for f in self.fields],
                "button_text": self.button, "button_key": button_key}


def parse_card(value: Any, origin: str) -> CardSpec | None:
    """The front matter's ``card`` mapping, checked; None when the template has no card."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(CARD_KEYS) or not value.get("title"):
        raise TemplateError("元数据 card 的格式不正确", file=origin, line=2, key="card", fix=QUOTE_FIX)
    fields = value.get("fields") or {}
    if not isinstance(fields, dict):
        raise TemplateError("card.fields 应为“名称: 内容”逐行列出", file=origin, line=2, key="card.fields",
                            fix=QUOTE_FIX)
    return CardSpec(title=str(value["title"]), fields=tuple((str(k), str(v)) for k, v in fields.items()),
                    button=str(value.get("button") or "已完成"))


def render_card(spec: CardSpec, text: str, render: Callable[[str], str]) -> RenderedCard:
    """The card for one context; a field whose value renders empty is left out."""
    fields = tuple((name, value) for name, value in ((n, render(v).strip()) for n, v in spec.fields) if value)
    return RenderedCard(title=render(spec.title).strip(), text=text, fields=fields, button=render(spec.button).strip())


def within_limits(card: Mapping[str, Any]) -> dict[str, Any]:
    """A stored card cut to WeCom's lengths, for a channel that cannot refuse it beforehand (the AI bot's
    push to a group has nobody to tell): the editor and ``check`` already warn of anything cut here."""
    rows = [(_clip(str(n), FIELD_NAME_CHARS), str(v) if is_link(str(v)) else _clip(str(v), FIELD_VALUE_CHARS))
            for n, v in card_rows(card)[:MAX_FIELDS]]
    return {**card, "title": _clip(str(card.get("title", "")), TITLE_CHARS),
            "description": _clip(str(card.get("description", "")), TEXT_CHARS),
            "button_text": _clip(str(card.get("button_text", "")), BUTTON_CHARS), "fields": [list(r) for r in rows]}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def text_with_fields(text: str, card: RenderedCard | None) -> str:
    """The message where no card can go: the body, then one line per field."""
    if card is None or not card.fields:
        return text
    return "\n".join([text, *(f"{name}：{value}" for name, value in card.fields)])


def is_link(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def card_rows(card: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A stored card's rows as (name, value) pairs (older rows have none)."""
    return [(str(f[0]), str(f[1])) for f in card.get("fields") or [] if len(f) == 2]

"""The 智能机器人's long-connection frames (wecom.md §11): building ours, reading WeCom's.

Every frame is JSON ``{cmd, headers: {req_id}, body}``; WeCom acknowledges ours with
``{headers: {req_id}, errcode, errmsg}``. A reply reuses the callback's req_id (a text's takes
``aibot_respond_msg``, a card click's only ``aibot_respond_update_msg``); a push takes a fresh one.
Callbacks are read into the fields the reply path knows from the app's XML callback (``MsgType``,
``Content``, ``EventKey`` …), so that both are answered by the same code.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from bot.templates.card import within_limits
from bot.wecom.api import button_card
from bot.wecom.callback_crypto import truncate_utf8

Frame = dict[str, Any]
REPLY_MAX_BYTES = 20480          # a stream's content
_LEADING_MENTIONS = re.compile(r"^\s*(?:@\S+\s+)+")
_TRAILING_MENTIONS = re.compile(r"(?:\s+@\S+)+\s*$")


def new_req_id(cmd: str) -> str:
    return f"{cmd}_{secrets.token_hex(8)}"


def frame(cmd: str, body: dict[str, Any] | None = None, req_id: str | None = None) -> Frame:
    message: Frame = {"cmd": cmd, "headers": {"req_id": req_id or new_req_id(cmd)}}
    if body is not None:
        message["body"] = body
    return message


def req_id_of(message: Frame) -> str:
    headers = message.get("headers")
    return str(headers.get("req_id", "")) if isinstance(headers, dict) else ""


def event_type(message: Frame) -> str:
    event = (message.get("body") or {}).get("event")
    return str(event.get("eventtype", "")) if isinstance(event, dict) else ""


def is_ping_answer(message: Frame) -> bool:
    return "cmd" not in message and req_id_of(message).startswith("ping_")


def strip_mentions(content: str) -> str:
    """"@机器人 已学习" → "已学习": WeCom includes the @mention in the content."""
    return _TRAILING_MENTIONS.sub("", _LEADING_MENTIONS.sub("", content or "")).strip()


# ---- reading callbacks ----------------------------------------------------------------------


def callback_fields(message: Frame) -> tuple[dict[str, str], str, str] | None:
    """(fields, dedupe key, raw body) of a text or card-click callback; None for the rest (enter_chat …)."""
    body = message.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("from"), dict):
        return None
    fields = {"FromUserName": str(body["from"].get("userid", "")), "ChatId": str(body.get("chatid") or ""),
              "ChatType": str(body.get("chattype") or "single")}
    msgid, raw = str(body.get("msgid") or ""), json.dumps(body, ensure_ascii=False)
    if message.get("cmd") == "aibot_msg_callback" and msgid:
        text = _text_of(body)
        if text is None:
            return None
        fields.update(MsgType="text", Content=strip_mentions(text))
        return fields, f"aibot:{msgid}", raw
    if event_type(message) == "template_card_event":
        click = body["event"].get("template_card_event") or {}
        fields.update(MsgType="event", Event="template_card_event", EventKey=str(click.get("event_key", "")),
                      TaskId=str(click.get("task_id", "")))
        key = msgid or ":".join((fields["FromUserName"], str(body.get("create_time", "")), fields["TaskId"],
                                 fields["EventKey"]))
        return fields, f"aibot:{key}", raw
    return None


def _text_of(body: dict[str, Any]) -> str | None:
    if body.get("msgtype") == "text":
        return str((body.get("text") or {}).get("content", ""))
    if body.get("msgtype") == "mixed":
        items = (body.get("mixed") or {}).get("msg_item") or []
        return " ".join(str((i.get("text") or {}).get("content", "")) for i in items if i.get("msgtype") == "text")
    return None


# ---- our frames ---------------------------------------------------------------------------------


def subscribe(bot_id: str, secret: str) -> Frame:
    return frame("aibot_subscribe", {"bot_id": bot_id, "secret": secret})


def text_reply(req_id: str, text: str) -> Frame:
    """The answer to a text callback: one finished stream (markdown)."""
    stream = {"id": secrets.token_hex(8), "finish": True, "content": truncate_utf8(text, REPLY_MAX_BYTES)}
    return frame("aibot_respond_msg", {"msgtype": "stream", "stream": stream}, req_id)


def study_card(card: dict[str, Any], task_id: str) -> dict[str, Any]:
    """A button card from a rendered card's {title, description, fields, button_text, button_key}, cut
    to the card's lengths (a push has no sender to refuse it to)."""
    return button_card(within_limits(card), task_id)["template_card"]


def card_update(req_id: str, userid: str, card: dict[str, Any] | None, task_id: str, reply: str,
                done_label: str | None) -> Frame:
    """The clicked card as the clicker sees it next: the answer under the title, the button done."""
    updated = study_card(card, task_id) if card else {"card_type": "button_interaction", "task_id": task_id,
                                                      "main_title": {"title": "学习提醒"}, "button_list": []}
    updated["sub_title_text"] = truncate_utf8(reply, 1024)
    if done_label:
        updated["button_list"] = [{"text": done_label, "style": 2, "key": "done"}]
    body = {"response_type": "update_template_card", "userids": [userid], "template_card": updated}
    return frame("aibot_respond_update_msg", body, req_id)


def card_push(chatid: str, card: dict[str, Any], task_id: str) -> Frame:
    """A button card pushed to a group (chat_type 2) the bot has heard in."""
    body = {"chatid": chatid, "chat_type": 2, "msgtype": "template_card", "template_card": study_card(card, task_id)}
    return frame("aibot_send_msg", body)

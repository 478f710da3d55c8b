"""App group chats: /cgi-bin/appchat/create|update|get|send (wecom.md §6).

The 86xxx errcodes follow WeCom's global error table as remembered, unconfirmed against real WeCom.
"""

from __future__ import annotations

import re
from typing import Any

from bot.simulator.app_api import validate_app_payload
from bot.simulator.state import ApiError, check_length
from bot.simulator.world import Call, World

CHATID = re.compile(r"[0-9a-zA-Z]{1,32}")
CHAT_MSGTYPES = ("text", "image", "voice", "video", "file", "textcard", "news", "mpnews", "markdown")
MIN_MEMBERS, MAX_MEMBERS = 2, 2000


def create(world: World, call: Call) -> dict[str, Any]:
    world.check_token(call)
    body = call.json_body()
    name = str(body.get("name", ""))
    if len(name) > 50:
        raise ApiError(86004)
    members = check_members(world, body.get("userlist"))
    owner = str(body.get("owner") or members[0])
    if owner not in members:
        raise ApiError(86216, "owner not in userlist")
    chatid = str(body.get("chatid") or world.new_id(12).replace("-", "a").replace("_", "b"))
    if not CHATID.fullmatch(chatid):
        raise ApiError(86001)
    if chatid in world.chats:
        raise ApiError(86215)
    world.chats[chatid] = {"chatid": chatid, "name": name, "owner": owner, "userlist": members}
    return {"errcode": 0, "errmsg": "ok", "chatid": chatid}


def check_members(world: World, userlist: Any) -> list[str]:
    if not isinstance(userlist, list):
        raise ApiError(86006)
    members = list(dict.fromkeys(str(u) for u in userlist))
    if not MIN_MEMBERS <= len(members) <= MAX_MEMBERS:
        raise ApiError(86006)
    if any(u not in world.settings.users for u in members):
        raise ApiError(86216)
    return members


def known_chat(world: World, chatid: Any) -> dict[str, Any]:
    chat = world.chats.get(str(chatid or ""))
    if chat is None:
        raise ApiError(86003)
    return chat


def get(world: World, call: Call) -> dict[str, Any]:
    world.check_token(call)
    chat = known_chat(world, call.query.get("chatid"))
    return {"errcode": 0, "errmsg": "ok", "chat_info": dict(chat, userlist=list(chat["userlist"]))}


def update(world: World, call: Call) -> dict[str, Any]:
    world.check_token(call)
    body = call.json_body()
    chat = known_chat(world, body.get("chatid"))
    added = [str(u) for u in body.get("add_user_list") or []]
    removed = {str(u) for u in body.get("del_user_list") or []}
    members = [u for u in chat["userlist"] + added if u not in removed]
    chat["userlist"] = check_members(world, members)
    if body.get("name"):
        chat["name"] = str(body["name"])[:50]
    if body.get("owner"):
        chat["owner"] = str(body["owner"])
    return {"errcode": 0, "errmsg": "ok"}


def send(world: World, call: Call) -> dict[str, Any]:
    world.check_token(call)
    body = call.json_body()
    chat = known_chat(world, body.get("chatid"))
    msgtype = body.get("msgtype")
    if msgtype not in CHAT_MSGTYPES or not isinstance(body.get(msgtype), dict):
        raise ApiError(40008)
    if msgtype == "text":
        check_length("text", str(body[msgtype].get("content", "")), 2048)
    payload = validate_app_payload(msgtype, dict(body[msgtype]))
    drop_over_quota(world, chat)
    world.chat_messages[chat["chatid"]].append(world.stamp({"msgtype": msgtype, msgtype: payload}))
    return {"errcode": 0, "errmsg": "ok"}


def drop_over_quota(world: World, chat: dict[str, Any]) -> None:
    """Members over 200/min from this app miss the message; the API still answers 0."""
    now, settings = world.clock(), world.settings
    for user in chat["userlist"]:
        if world.chat_member_windows.allows(user, now, settings.appchat_member_limit_per_minute,
                                            settings.minute_seconds):
            world.chat_member_windows.add(user, now)
        else:
            world.drop("/cgi-bin/appchat/send", "member_minute_quota", userid=user, chatid=chat["chatid"])

"""The self-built app: gettoken, message/send, update_template_card, recall (wecom.md §3–§5)."""

from __future__ import annotations

import json
import re
from typing import Any

from bot.simulator.state import ApiError, check_length, truncate_utf8
from bot.simulator.world import Call, World

APP_MSGTYPES = ("text", "image", "voice", "video", "file", "textcard", "news", "mpnews", "markdown",
                "miniprogram_notice", "template_card")
CARD_TYPES = ("text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction")
INTERACTIVE_CARDS = ("button_interaction", "vote_interaction", "multiple_interaction")
TASK_ID = re.compile(r"[0-9a-zA-Z_\-@]{1,128}")
ROOT_PARTY = "1"
RESPONSE_CODE_LIFETIME = 72 * 3600
RECALL_LIFETIME = 24 * 3600
MAX_DUPLICATE_INTERVAL = 4 * 3600


def gettoken(world: World, call: Call) -> dict[str, Any]:
    settings = world.settings
    if call.query.get("corpid") != settings.corp_id:
        raise ApiError(40013)
    if call.query.get("corpsecret") != settings.secret:
        raise ApiError(40001)
    token, expires_in = world.issue_token()
    return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": expires_in}


def check_agent(world: World, body: dict[str, Any]) -> None:
    agentid = body.get("agentid")
    if isinstance(agentid, bool) or not isinstance(agentid, int) or agentid != world.settings.agent_id:
        raise ApiError(40056)


def message_send(world: World, call: Call) -> dict[str, Any]:
    world.check_token(call)
    body = call.json_body()
    check_agent(world, body)
    msgtype = body.get("msgtype")
    if msgtype not in APP_MSGTYPES or not isinstance(body.get(msgtype), dict):
        raise ApiError(40008)
    world.tenant.check_length(msgtype)
    payload = validate_app_payload(msgtype, dict(body[msgtype]))
    users, answer = resolve_recipients(world, body)
    duplicate = find_duplicate(world, body)
    if duplicate is not None:
        world.drop("/cgi-bin/message/send", "duplicate", msgid=duplicate["msgid"])
        return duplicate
    if msgtype == "template_card":
        check_task_id(world, payload)
    answer["msgid"] = world.new_id()
    if msgtype == "template_card" and wants_response_code(payload):
        answer["response_code"] = issue_response_code(world, answer["msgid"], users)
    deliver(world, users, {"msgid": answer["msgid"], "msgtype": msgtype, msgtype: payload})
    remember_duplicate(world, body, answer)
    return answer


def validate_app_payload(msgtype: str, payload: dict[str, Any]) -> dict[str, Any]:
    if msgtype in ("text", "markdown"):
        content = payload.get("content")
        if not isinstance(content, str) or not content:
            raise ApiError(44004)
        if msgtype == "text":
            payload["content"] = truncate_utf8(content, 2048)
        else:
            check_length("markdown", content, 2048)
    elif msgtype == "textcard":
        if not payload.get("title") or not payload.get("url"):
            raise ApiError(44004)
    elif msgtype == "template_card":
        check_card(payload)
    return payload


def check_card(card: dict[str, Any]) -> None:
    card_type = card.get("card_type")
    if card_type not in CARD_TYPES:
        raise ApiError(40058, "template_card.card_type invalid")  # unconfirmed errcode
    task_id = card.get("task_id")
    if card_type in INTERACTIVE_CARDS and not (isinstance(task_id, str) and TASK_ID.fullmatch(task_id)):
        raise ApiError(42014)


def check_task_id(world: World, card: dict[str, Any]) -> None:
    """43012 without a callback URL; 42014 for a task_id this app used before (unique forever)."""
    world.tenant.check_card(card.get("card_type"), INTERACTIVE_CARDS)
    task_id = card.get("task_id")
    if card.get("card_type") in INTERACTIVE_CARDS:
        if task_id in world.task_ids:
            raise ApiError(42014)
        world.task_ids.add(task_id)


def wants_response_code(card: dict[str, Any]) -> bool:
    return card.get("card_type") in INTERACTIVE_CARDS or "action_menu" in card


def split_ids(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if str(v)]
    return [part for part in str(value or "").split("|") if part]


def resolve_recipients(world: World, body: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Known userids to deliver to, and the answer listing the invalid ones (81013 when nobody is left)."""
    known = {u: n for u, n in world.settings.users.items() if u not in world.tenant.hidden_users}
    touser, parties, tags = split_ids(body.get("touser")), split_ids(body.get("toparty")), split_ids(body.get("totag"))
    if "@all" in touser:
        users, invalid_users, invalid_parties, tags = list(known), [], [], []
    else:
        users = [u for u in touser if u in known]
        invalid_users = [u.lower() for u in touser if u not in known]
        invalid_parties = [p for p in parties if p != ROOT_PARTY]
        if ROOT_PARTY in parties:
            users += [u for u in known if u not in users]
    answer = {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid_users),
              "invalidparty": "|".join(invalid_parties), "invalidtag": "|".join(tags), "unlicenseduser": ""}
    if not users:
        raise ApiError(81013, extra={k: v for k, v in answer.items() if k.startswith("invalid") and v})
    return list(dict.fromkeys(users)), answer


def duplicate_key(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


def duplicate_interval(body: dict[str, Any]) -> float:
    interval = body.get("duplicate_check_interval", 1800)
    if not isinstance(interval, int) or isinstance(interval, bool) or interval <= 0:
        return 1800
    return min(interval, MAX_DUPLICATE_INTERVAL)


def find_duplicate(world: World, body: dict[str, Any]) -> dict[str, Any] | None:
    if body.get("enable_duplicate_check") != 1:
        return None
    seen = world.duplicates.get(duplicate_key(body))
    if seen is None or world.clock() - seen[0] >= duplicate_interval(body):
        return None
    return dict(seen[1])


def remember_duplicate(world: World, body: dict[str, Any], answer: dict[str, Any]) -> None:
    if body.get("enable_duplicate_check") == 1:
        world.duplicates[duplicate_key(body)] = (world.clock(), dict(answer))


def deliver(world: World, users: list[str], message: dict[str, Any]) -> None:
    """Store one copy per member, dropping (errcode stays 0) what is over the member's quotas."""
    now, settings = world.clock(), world.settings
    hour = 60 * settings.minute_seconds
    delivered = []
    for user in users:
        if not world.member_windows.allows(user, now, settings.member_limit_per_minute, settings.minute_seconds):
            world.drop("/cgi-bin/message/send", "member_minute_quota", userid=user, msgid=message["msgid"])
        elif not world.member_hour_windows.allows(user, now, settings.member_limit_per_hour, hour):
            world.drop("/cgi-bin/message/send", "member_hour_quota", userid=user, msgid=message["msgid"])
        else:
            world.member_windows.add(user, now)
            world.member_hour_windows.add(user, now)
            world.user_messages[user].append(world.stamp(new_copy(message)))
            delivered.append(user)
    world.sent_msgids[message["msgid"]] = {"at": now, "userids": delivered}


def new_copy(message: dict[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(message))
    copy["recalled"] = False
    if copy["msgtype"] == "template_card":
        copy["card"] = {"task_id": copy["template_card"].get("task_id"), "replace_name": None, "clicked_key": None}
    return copy


def issue_response_code(world: World, msgid: str, users: list[str]) -> str:
    code = world.new_id(32)
    world.response_codes[code] = {"at": world.clock(), "msgid": msgid, "userids": list(users), "used": False}
    return code


def update_template_card(world: World, call: Call) -> dict[str, Any]:
    world.check_token(call)
    body = call.json_body()
    check_agent(world, body)
    code = world.response_codes.get(str(body.get("response_code", "")))
    if code is None or code["used"] or world.clock() - code["at"] >= RESPONSE_CODE_LIFETIME:
        raise ApiError(40058, "invalid response_code")  # unconfirmed errcode
    code["used"] = True
    targets = update_targets(body, code["userids"])
    replace_name = (body.get("button") or {}).get("replace_name")
    for user in targets:
        apply_card_update(world, user, code["msgid"], replace_name, body.get("template_card"))
    return {"errcode": 0, "errmsg": "ok", "invaliduser": ""}


def update_targets(body: dict[str, Any], recipients: list[str]) -> list[str]:
    if body.get("atall") == 1:
        return recipients
    asked = split_ids(body.get("userids"))
    return [u for u in recipients if u in asked] if asked else recipients


def apply_card_update(world: World, user: str, msgid: str, replace_name: str | None,
                      new_card: dict[str, Any] | None) -> None:
    for message in world.user_messages.get(user, []):
        if message["msgid"] != msgid or "card" not in message:
            continue
        if new_card:
            message["template_card"] = dict(new_card)
        if replace_name:
            message["card"]["replace_name"] = str(replace_name)


def recall(world: World, call: Call) -> dict[str, Any]:
    world.check_token(call)
    body = call.json_body()
    sent = world.sent_msgids.get(str(body.get("msgid", "")))
    if sent is None or world.clock() - sent["at"] >= RECALL_LIFETIME:
        raise ApiError(40058, "invalid msgid")  # unconfirmed errcode
    for user in sent["userids"]:
        for message in world.user_messages.get(user, []):
            if message["msgid"] == body["msgid"]:
                message["recalled"] = True
    return {"errcode": 0, "errmsg": "ok"}

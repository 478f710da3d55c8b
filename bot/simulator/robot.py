"""The group robot webhook: /cgi-bin/webhook/send and /cgi-bin/webhook/upload_media (wecom.md §2)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from typing import Any

from bot.simulator.state import ApiError, check_length, truncate_utf8
from bot.simulator.world import Call, World

ROBOT_MSGTYPES = ("text", "markdown", "markdown_v2", "image", "news", "file", "voice", "template_card")
CONTENT_LIMITS = {"text": 2048, "markdown": 4096, "markdown_v2": 4096}
ROBOT_CARD_TYPES = ("text_notice", "news_notice")
IMAGE_MAX = 2 * 1024 * 1024
MEDIA_LIFETIME = 3 * 24 * 3600
MEDIA_LIMITS = {"file": 20 * 1024 * 1024, "voice": 2 * 1024 * 1024}


def check_key(world: World, call: Call) -> str:
    key = call.query.get("key", "")
    if key not in world.robots:
        raise ApiError(93000)
    if key in world.disabled_robots:
        raise ApiError(93004)
    return key


def webhook_send(world: World, call: Call) -> dict[str, Any]:
    key = check_key(world, call)
    body = call.json_body()
    msgtype = body.get("msgtype")
    if msgtype not in ROBOT_MSGTYPES or not isinstance(body.get(msgtype), dict):
        raise ApiError(40008)
    if msgtype in CONTENT_LIMITS:
        world.tenant.check_length(msgtype)
    payload = validate_robot_payload(world, key, msgtype, dict(body[msgtype]))
    now = world.clock()
    settings = world.settings
    if not world.robot_windows.allows(key, now, settings.robot_limit_per_minute, settings.minute_seconds):
        raise ApiError(45009)
    world.robot_windows.add(key, now)
    world.robot_messages[key].append(world.stamp({"msgtype": msgtype, msgtype: payload}))
    return {"errcode": 0, "errmsg": "ok"}


def validate_robot_payload(world: World, key: str, msgtype: str, payload: dict[str, Any]) -> dict[str, Any]:
    if msgtype in CONTENT_LIMITS:
        content = payload.get("content")
        if not isinstance(content, str) or not content:
            raise ApiError(44004)
        check_length(msgtype, content, CONTENT_LIMITS[msgtype])
    elif msgtype == "news":
        payload["articles"] = check_articles(payload.get("articles"))
    elif msgtype == "image":
        check_image(payload)
    elif msgtype in ("file", "voice"):
        check_media(world, key, payload.get("media_id"))
    elif payload.get("card_type") not in ROBOT_CARD_TYPES:
        # unconfirmed errcode: a robot cannot send interactive cards (wecom.md §2)
        raise ApiError(40008, "invalid template_card.card_type")
    return payload


def check_articles(articles: Any) -> list[dict[str, Any]]:
    if not isinstance(articles, list) or not articles:
        raise ApiError(44004)
    if len(articles) > 8:
        raise ApiError(45008)
    checked = []
    for article in articles:
        if not isinstance(article, dict) or not article.get("title"):
            raise ApiError(44004)
        article = dict(article)
        article["title"] = truncate_utf8(str(article["title"]), 128)
        article["description"] = truncate_utf8(str(article.get("description", "")), 512)
        checked.append(article)
    return checked


def check_image(payload: dict[str, Any]) -> None:
    try:
        raw = base64.b64decode(str(payload.get("base64", "")), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(40009, "invalid image base64") from None
    if not raw or len(raw) > IMAGE_MAX:
        raise ApiError(40009)
    if hashlib.md5(raw).hexdigest() != str(payload.get("md5", "")).lower():
        # unconfirmed errcode for an md5 mismatch
        raise ApiError(40009, "image md5 not match")
    payload.pop("base64")
    payload["size"] = len(raw)


def check_media(world: World, key: str, media_id: Any) -> None:
    media = world.media.get(str(media_id))
    if media is None or media["key"] != key or world.clock() - media["at"] >= MEDIA_LIFETIME:
        raise ApiError(40007)


def upload_media(world: World, call: Call) -> dict[str, Any]:
    key = check_key(world, call)
    kind = call.query.get("type", "")
    part = call.files.get("media")
    if kind not in MEDIA_LIMITS:
        raise ApiError(40008, "invalid media type")
    if part is None:
        raise ApiError(44004, "media part missing")
    data = part.read()
    if len(data) <= 5 or len(data) > MEDIA_LIMITS[kind]:
        raise ApiError(40009, "invalid media size")
    media_id = world.new_id(32)
    world.media[media_id] = {"key": key, "type": kind, "at": world.clock(),
                             "filename": part.filename, "size": len(data)}
    return {"errcode": 0, "errmsg": "ok", "type": kind, "media_id": media_id,
            "created_at": str(int(time.time()))}


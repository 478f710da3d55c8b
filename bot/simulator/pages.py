"""The simulator's web page (Chinese): groups, users, a chat view per group and per user."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import Flask, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from bot.clock import BEIJING
from bot.simulator.markdown import render_markdown
from bot.simulator.state import mask_key

if TYPE_CHECKING:
    from bot.simulator.app import Simulator

MARKDOWN_TYPES = ("markdown", "markdown_v2")
REPLY_MAX = 2048
TENANT_LABELS = {
    "untrusted_ip": "服务器 IP 不在企业可信IP 中（60020）",
    "no_callback": "应用未设置接收消息回调，带按钮的卡片发不出（43012）",
    "too_long": "消息一律按超长拒收（40058）",
    "agent_mismatch": "AgentId 与 Secret 不属于同一应用（301002）",
}


def group_id(key: str) -> str:
    """An opaque id for links, so the page never carries a robot key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def clock_text(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, BEIJING).strftime("%m-%d %H:%M:%S")


def register_pages(app: Flask, sim: Simulator) -> None:
    app.jinja_env.filters["clock"] = clock_text
    app.jinja_env.filters["markdown"] = render_markdown

    @app.get("/")
    def index() -> str:
        return render_template("index.html", groups=group_rows(sim), users=user_rows(sim),
                               chats=sorted(sim.world.chats.values(), key=lambda c: c["chatid"]),
                               aibot=sim.aibot, aibot_connected=sim.aibot is not None and sim.aibot.connected(),
                               tenant=sim.world.tenant.switches(), switch_labels=TENANT_LABELS)

    @app.post("/tenant")
    def tenant() -> Response:
        """Play an unconfigured tenant, so a demo shows what an administrator would see."""
        chosen = {name: name in request.form for name in TENANT_LABELS}
        hidden = {u for u in sim.settings.users if f"hidden:{u}" in request.form}
        sim.play_tenant(**chosen, hidden_users=hidden)
        for ref in request.form.getlist("remove"):
            sim.remove_robot(find_group_key(sim, ref))
        return redirect(url_for("index"))

    @app.get("/group/<ref>")
    def group(ref: str) -> str:
        key = find_group_key(sim, ref)
        viewer = request.args.get("as") or next(iter(sim.settings.users), "")
        messages = sorted(sim.group_messages(key) + aibot_entries(sim, aibot_chatid(key), viewer),
                          key=lambda m: m["time"])
        return render_template("group.html", name=sim.world.robots[key], masked=mask_key(key), ref=ref,
                               messages=messages, markdown_types=MARKDOWN_TYPES, sender="群机器人",
                               aibot=sim.aibot is not None, users=sim.settings.users, viewer=viewer)

    @app.post("/group/<ref>/mention")
    def mention(ref: str) -> Response:
        key, userid = find_group_key(sim, ref), request.form.get("userid", "")
        text = request.form.get("text", "").strip()[:REPLY_MAX]
        if sim.aibot is not None and text and userid in sim.settings.users:
            sim.aibot.mention(aibot_chatid(key), userid, text)
        return redirect(url_for("group", ref=ref, **{"as": userid}))

    @app.post("/group/<ref>/click")
    def group_click(ref: str) -> Response:
        key, userid = find_group_key(sim, ref), request.form.get("userid", "")
        if sim.aibot is not None and userid in sim.settings.users:
            sim.aibot.click(aibot_chatid(key), userid, request.form.get("task_id", ""), request.form.get("key", ""))
        return redirect(url_for("group", ref=ref, **{"as": userid}))

    @app.get("/chat/<chatid>")
    def chat(chatid: str) -> str:
        info = sim.world.chats.get(chatid) or abort(404)
        return render_template("group.html", name=info["name"] or chatid, masked=chatid,
                               messages=sim.chat_messages(chatid), markdown_types=MARKDOWN_TYPES,
                               sender="应用消息")

    @app.get("/user/<userid>")
    def user(userid: str) -> str:
        name = sim.settings.users.get(userid) or abort(404)
        return render_template("user.html", userid=userid, name=name, timeline=user_timeline(sim, userid),
                               markdown_types=MARKDOWN_TYPES, callback=bool(sim.settings.callback_url))

    @app.post("/user/<userid>/reply")
    def reply(userid: str) -> Response:
        sim.settings.users.get(userid) or abort(404)
        text = request.form.get("text", "").strip()[:REPLY_MAX]
        if text and sim.settings.callback_url:
            sim.reply_as(userid, text)
        return redirect(url_for("user", userid=userid))

    @app.post("/user/<userid>/click")
    def click(userid: str) -> Response:
        sim.settings.users.get(userid) or abort(404)
        if sim.settings.callback_url:
            try:
                sim.click_card(userid, request.form.get("task_id", ""), request.form.get("key", ""))
            except LookupError:
                abort(404)
        return redirect(url_for("user", userid=userid))


def aibot_chatid(key: str) -> str:
    """The group's chatid as the 智能机器人 sees it (opaque, derived from the robot key)."""
    return "wrc" + group_id(key)


def aibot_entries(sim: Simulator, chatid: str, viewer: str) -> list[dict[str, Any]]:
    """The group's @机器人 messages, the bot's answers and pushed cards (as ``viewer`` sees them)."""
    if sim.aibot is None:
        return []
    entries = []
    for e in sim.aibot.transcript(chatid):
        if e["kind"] == "user":
            shown = {"sender": sim.settings.users.get(e["userid"], e["userid"]), "msgtype": "text",
                     "text": {"content": e["text"]}, "mine": True}
        elif e["kind"] == "bot":
            shown = {"sender": "智能机器人", "msgtype": "markdown", "markdown": {"content": e["text"]}}
        else:
            card = e.get("seen_by", {}).get(viewer) or e.get("card")
            shown = {"sender": "智能机器人", "msgtype": e["msgtype"], e["msgtype"]: e["body"].get(e["msgtype"]),
                     "template_card": card, "task_id": e.get("task_id"), "answered": viewer in e.get("seen_by", {})}
        entries.append({**shown, "time": e["time"]})
    return entries


def find_group_key(sim: Simulator, ref: str) -> str:
    if ref in sim.world.robots:
        return ref
    for key in sim.world.robots:
        if group_id(key) == ref:
            return key
    abort(404)


def group_rows(sim: Simulator) -> list[dict[str, Any]]:
    with sim.world.lock:
        return [{"id": group_id(key), "name": name, "masked": mask_key(key),
                 "count": len(sim.world.robot_messages.get(key, [])),
                 "disabled": key in sim.world.disabled_robots}
                for key, name in sim.world.robots.items()]


def user_rows(sim: Simulator) -> list[dict[str, Any]]:
    with sim.world.lock:
        return [{"userid": userid, "name": name, "count": len(sim.world.user_messages.get(userid, [])),
                 "hidden": userid in sim.world.tenant.hidden_users}
                for userid, name in sim.settings.users.items()]


def user_timeline(sim: Simulator, userid: str) -> list[dict[str, Any]]:
    """App messages and this user's replies, interleaved in the order they happened."""
    entries = [dict(m, entry="message") for m in sim.user_messages(userid)]
    buttons = {(m["card"]["task_id"], b.get("key")): b.get("text") for m in entries if m.get("card")
               for b in m["template_card"].get("button_list", [])}
    entries += [dict(c, entry=c["kind"], button=buttons.get((c.get("task_id"), c.get("key")), c.get("key")))
                for c in sim.conversation(userid)]
    return sorted(entries, key=lambda e: e["seq"])

"""智能机器人: the groups the AI bot has learnt, and binding a learnt group to a branch.

WeCom tells a group's chatid only in a callback, so a group appears here after someone first
@-mentions the bot in it. Binding it to a branch lets the bot push that branch's study cards there;
each binding is audited.
"""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, render_template, request, url_for

from bot.store.aibot import bind_chat, learnt_chats
from bot.web.common import actor, console, notice, now, record, runtime, settings


def _people() -> dict[str, str]:
    """userid → "name（branch 书记）" for the secretaries, so a first speaker is recognisable."""
    return {b.secretary.userid.casefold(): f"{b.secretary.name}（{b.name}书记）"
            for b in settings().organisation.branches}


@console.get("/aibot")
def aibot_groups() -> Any:
    current = settings()
    return render_template("aibot.html", configured=current.aibot is not None, chats=learnt_chats(runtime().store),
                           branches={b.id: b.name for b in current.organisation.branches}, people=_people())


@console.post("/aibot/bind")
def aibot_bind() -> Any:
    chatid = request.form.get("chatid", "").strip()[:200]
    branch = request.form.get("branch", "").strip() or None
    branches = {b.id: b.name for b in settings().organisation.branches}
    if branch is not None and branch not in branches:
        abort(422, "所选支部不存在，请刷新页面后重新选择。")
    try:
        before = bind_chat(runtime().store, chatid, branch, actor(), now())
    except LookupError:
        abort(404, "智能机器人尚未在该群收到消息，无法绑定。")
    label = branches[branch] if branch else "（不绑定）"
    record("绑定智能机器人群聊", chatid, before=branches.get(before or "", before), after=label)
    notice(f"已将群聊 {chatid} 绑定到 {label}。" if branch else f"已解除群聊 {chatid} 的支部绑定。", "success")
    return redirect(url_for("console.aibot_groups"))

"""The app's 可见范围 (agent/get, user/get; doc paths 90227, 90196): who the app can message.

message/send drops recipients outside it (invaliduser) and answers 81013 when nobody is left.
"""

from __future__ import annotations

from dataclasses import dataclass

from wechatpy.exceptions import WeChatClientException

from bot.wecom.api import WeComApp

ROOT_PARTY = "1"
USER_NOT_FOUND = 60111


@dataclass(frozen=True)
class Visibility:
    users: frozenset[str]
    parties: frozenset[str]
    tags: frozenset[str]

    def sees_party(self, party: str) -> bool:
        # A sub-department of a visible one is visible too; without department/list only these are sure.
        return ROOT_PARTY in self.parties or str(party) in self.parties

    def sees_tag(self, tag: str) -> bool:
        return str(tag) in self.tags


def agent_visibility(app: WeComApp) -> Visibility:
    """agent/get: an API behind the 企业可信IP rule, so it also tells whether this server may call."""
    answer = app.get("agent/get", {"agentid": app.agent_id})
    users = (answer.get("allow_userinfos") or {}).get("user") or []
    return Visibility(frozenset(str(u.get("userid")) for u in users),
                      frozenset(str(p) for p in (answer.get("allow_partys") or {}).get("partyid") or []),
                      frozenset(str(t) for t in (answer.get("allow_tags") or {}).get("tagid") or []))


def member_problem(app: WeComApp, visibility: Visibility, userid: str) -> str | None:
    """Why the app cannot message ``userid``, in words; None when it can."""
    if userid == "@all" or userid in visibility.users:
        return None
    try:
        app.get("user/get", {"userid": userid})
    except WeChatClientException as exc:
        if exc.errcode == USER_NOT_FOUND:
            return f"成员账号 {userid} 不存在"
        return f"成员 {userid} 不在应用可见范围内"
    return None

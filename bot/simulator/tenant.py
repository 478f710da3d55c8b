"""An unconfigured tenant (issue 10, item 9): what a first deployment meets, switchable per test and
on the simulator's page; and the contact reads a deployment doctor needs (agent/get, user/get).

Each switch makes the simulator answer as real WeCom does for that mistake:
- ``untrusted_ip``: every API that takes an access_token answers 60020 (gettoken still works);
- ``no_callback``: the app has no 接收消息 URL, so cards with buttons get 43012;
- ``hidden_users``: members outside the app's 可见范围 (invalid recipients; 81013 if none is left);
- ``too_long``: every message is refused with 40058, as an over-long one is;
- ``forbidden``: API paths this app may not call (48002);
- ``agent_mismatch``: the agentid does not belong to the secret (301002);
- ``card_reply_shown``: whether a passive reply to a card click changes the card (not certain in
  real WeCom; off, only update_template_card does).
A removed robot (93000) is ``Simulator.remove_robot``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.simulator.state import ApiError

if TYPE_CHECKING:
    from bot.simulator.world import Call, World

ROOT_PARTY = 1
TOKENLESS = ("/cgi-bin/gettoken", "/cgi-bin/webhook/send", "/cgi-bin/webhook/upload_media")


@dataclass
class Tenant:
    untrusted_ip: bool = False
    no_callback: bool = False
    too_long: bool = False
    agent_mismatch: bool = False
    card_reply_shown: bool = True
    hidden_users: set[str] = field(default_factory=set)
    forbidden: set[str] = field(default_factory=set)

    def gate(self, path: str, call: Call) -> None:
        """Refuse a token-bearing call as this tenant would, before the endpoint looks at it."""
        if path in TOKENLESS:
            return
        if self.untrusted_ip:
            raise ApiError(60020, f"not allow to access from your ip, from ip: {call.ip}")
        if path in self.forbidden:
            raise ApiError(48002, "api forbidden")
        if self.agent_mismatch and path.startswith("/cgi-bin/message/"):
            raise ApiError(301002, "invalid agentid, agent not match the secret")

    def check_length(self, msgtype: str) -> None:
        if self.too_long:
            raise ApiError(40058, f"{msgtype}.content exceed max length. invalid Request Parameter")

    def check_card(self, card_type: Any, interactive: tuple[str, ...]) -> None:
        if self.no_callback and card_type in interactive:
            raise ApiError(43012, "require agent with callback url")

    def switches(self) -> dict[str, bool]:
        return {"untrusted_ip": self.untrusted_ip, "no_callback": self.no_callback, "too_long": self.too_long,
                "agent_mismatch": self.agent_mismatch}


def agent_get(world: World, call: Call) -> dict[str, Any]:
    """The app's details and 可见范围: the root department unless members are hidden."""
    world.check_token(call)
    if str(call.query.get("agentid")) != str(world.settings.agent_id):
        raise ApiError(40056)
    visible = [u for u in world.settings.users if u not in world.tenant.hidden_users]
    hidden = bool(world.tenant.hidden_users)
    return {"errcode": 0, "errmsg": "ok", "agentid": world.settings.agent_id, "name": "wecom-reminder",
            "allow_userinfos": {"user": [{"userid": u} for u in visible] if hidden else []},
            "allow_partys": {"partyid": [] if hidden else [ROOT_PARTY]}, "allow_tags": {"tagid": []},
            "close": 0, "redirect_domain": "", "report_location_flag": 0, "isreportenter": 0, "home_url": ""}


def user_get(world: World, call: Call) -> dict[str, Any]:
    """A member the app can see (60111 for an unknown userid, 60011 for one outside the 可见范围)."""
    world.check_token(call)
    userid = call.query.get("userid", "")
    if userid not in world.settings.users:
        raise ApiError(60111, "userid not found")
    if userid in world.tenant.hidden_users:
        raise ApiError(60011)
    return {"errcode": 0, "errmsg": "ok", "userid": userid, "name": world.settings.users[userid],
            "department": [ROOT_PARTY], "status": 1}

"""`check --online`: a deployment doctor. It calls what sending will call and prints one row per
target, with its state and the fix (issue 10, item 3):

- the access token (corp_id, secret) and an API subject to the 企业可信IP rule (agent/get);
- the app's 可见范围 (agent/get, user/get) against every configured userid, party and tag;
- whether cards with buttons can be sent: the API does not say whether the 接收消息 callback is set,
  so a warning, unless ``--send-test`` sent the administrators a test card (43012 if not set);
- with ``--send-test``, one short test message to each admin target and each group robot (a robot
  key can be checked no other way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from bot.config import AppChatTarget, AppTarget, RobotTarget, Settings
from bot.delivery.channels import recipients_of
from bot.formatting import target_title
from bot.wecom import api as wecom
from bot.wecom.contacts import Visibility, agent_visibility, member_problem
from bot.wecom.outcomes import classify

TEST_TEXT = "【wecom-reminder 部署检查】这是一条测试消息，说明本推送对象可以收到提醒，无需回复。"
APP_ROW = "企业微信应用"
CARD_WARNING = ("接口无法确认应用是否已设置接收消息的回调；未设置时带按钮的学习卡片会被拒收（43012）。"
                "处理办法：企业微信管理后台 → 应用管理 → 本应用 → 接收消息 → 设置API接收；"
                "或加 --send-test 向管理员发送一张测试卡片来确认")


@dataclass(frozen=True)
class TargetState:
    name: str
    channel: str
    level: str  # 'ok' | 'info' | 'warning' | 'error'
    state: str
    fix: str = ""


class Doctor:
    def __init__(self, settings: Settings, send_test: bool, session: requests.Session | None = None) -> None:
        assert settings.wecom is not None
        self.settings, self.send_test = settings, send_test
        self.session = session or requests.Session()
        self.app = wecom.app_for(settings, self.session)
        self.admins = set(settings.admin_chain())
        self.card_tested = False

    def diagnose(self) -> list[TargetState]:
        app_row, visibility = self._app()
        rows = [app_row]
        for name, target in self.settings.all_targets().items():
            match target:
                case RobotTarget():
                    rows.append(self._robot(name, target))
                case AppTarget():
                    rows.append(self._app_target(name, target, visibility, app_row.level == "error"))
                case AppChatTarget():
                    rows.append(self._appchat(name, target, app_row.level == "error"))
        if app_row.level != "error" and self.settings.organisation.branches and not self.card_tested:
            rows.append(TargetState(APP_ROW, "应用消息", "warning", "带按钮的卡片能否发送：未能确认", CARD_WARNING))
        return rows

    def _app(self) -> tuple[TargetState, Visibility | None]:
        try:
            self.app.client.fetch_access_token()
        except Exception as exc:  # noqa: BLE001 - every failure is reported in words
            cause, fix = _cause_and_fix(exc)
            return TargetState(APP_ROW, "应用消息", "error", f"获取访问令牌失败：{cause}", fix), None
        try:
            visibility = agent_visibility(self.app)
        except Exception as exc:  # noqa: BLE001
            return TargetState(APP_ROW, "应用消息", "error", *_cause_and_fix(exc)), None
        return TargetState(APP_ROW, "应用消息", "ok", f"凭据有效，本服务器 IP 可调用接口（应用 {self.app.agent_id}）"), visibility

    def _robot(self, name: str, target: RobotTarget) -> TargetState:
        if not self.send_test:
            return TargetState(self._title(name), "群机器人", "info", "未检查：群机器人密钥只能通过发送消息检查",
                               "加 --send-test 发送一条测试消息")
        try:
            wecom.post_robot(self.session, self.settings.wecom.api_base,  # type: ignore[union-attr]
                             target.key.get_secret_value(), wecom.robot_payload("text", TEST_TEXT, {}),
                             self.settings.delivery.request_timeout.total_seconds())
        except Exception as exc:  # noqa: BLE001
            return TargetState(self._title(name), "群机器人", "error", *_cause_and_fix(exc))
        return TargetState(self._title(name), "群机器人", "ok", "已发送测试消息")

    def _app_target(self, name: str, target: AppTarget, visibility: Visibility | None, app_down: bool) -> TargetState:
        title = self._title(name)
        if app_down or visibility is None:
            return TargetState(title, "应用消息", "error", "未检查：应用本身不可用", "先按「企业微信应用」一行处理")
        problems = [p for user in target.users if (p := member_problem(self.app, visibility, user))]
        problems += [f"部门 {p} 不在应用可见范围内" for p in target.parties if not visibility.sees_party(p)]
        problems += [f"标签 {t} 不在应用可见范围内" for t in target.tags if not visibility.sees_tag(t)]
        if problems:
            return TargetState(title, "应用消息", "error", "；".join(problems),
                               "企业微信管理后台 → 应用管理 → 本应用 → 可见范围，添加上述成员、部门或标签；"
                               "或更正该推送对象的 users、parties、tags")
        if self.send_test and name in self.admins:
            return self._send_app_test(title, target)
        return TargetState(title, "应用消息", "ok", "成员、部门、标签均在应用可见范围内")

    def _send_app_test(self, title: str, target: AppTarget) -> TargetState:
        message: dict[str, Any] = wecom.app_message("text", "部署检查", TEST_TEXT)
        if not self.card_tested and self.settings.organisation.branches:
            card = {"title": "部署检查：测试卡片（无需点击）", "description": TEST_TEXT, "button_text": "收到", "button_key": "doctor"}
            message = wecom.button_card(card, wecom.task_id_for("doctor", _unique()))
        try:
            self.app.post("message/send", wecom.app_payload(recipients_of(target), self.app.agent_id, message))
        except Exception as exc:  # noqa: BLE001
            return TargetState(title, "应用消息", "error", *_cause_and_fix(exc))
        self.card_tested = self.card_tested or message["msgtype"] == "template_card"
        what = "测试卡片（带按钮，说明已设置接收消息回调）" if message["msgtype"] == "template_card" else "测试消息"
        return TargetState(title, "应用消息", "ok", f"在可见范围内，已发送{what}")

    def _appchat(self, name: str, target: AppChatTarget, app_down: bool) -> TargetState:
        if app_down:
            return TargetState(self._title(name), "应用群聊", "error", "未检查：应用本身不可用", "先按「企业微信应用」一行处理")
        try:
            self.app.get("appchat/get", {"chatid": target.chatid})
        except Exception as exc:  # noqa: BLE001
            return TargetState(self._title(name), "应用群聊", "error", *_cause_and_fix(exc))
        return TargetState(self._title(name), "应用群聊", "ok", "群聊存在")

    def _title(self, name: str) -> str:
        return f"{target_title(name, self.settings.all_targets())}（{name}）"


def _cause_and_fix(exc: Exception) -> tuple[str, str]:
    cause, _, fix = (classify(None, None, exc).error or "原因不明").partition("。处理办法：")
    return cause, fix


def _unique() -> str:
    import secrets
    return secrets.token_hex(8)  # a test card's task_id must never repeat (42014)


def doctor_table(rows: list[TargetState]) -> str:
    marks = {"ok": "✓ 正常", "info": "· 未检查", "warning": "! 注意", "error": "✗ 有误"}
    lines = ["推送对象检查（check --online）：", "推送对象 | 渠道 | 状态 | 说明 | 处理办法"]
    lines += [f"{r.name} | {r.channel} | {marks[r.level]} | {r.state} | {r.fix or '—'}" for r in rows]
    return "\n".join(lines)

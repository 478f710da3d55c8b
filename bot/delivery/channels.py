"""Channels: one method, ``send(delivery) -> Outcome``; console, group robot and app.

``channel_for`` picks one with a plain ``match`` on the target's configured type, and the channel
holds that target's address (robot key, users, chatid) read from the config at send time: rows
carry only the target's name. WeCom's URLs, JSON and errcodes stay in ``bot.wecom.api``; a channel
only wires a delivery to them.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol, TextIO

import requests

from bot.config import AppChatTarget, AppTarget, ConsoleTarget, RobotTarget, Settings
from bot.formatting import target_title
from bot.store.queries import DeliveryRow
from bot.templates.limits import card_problems
from bot.templates.render import RenderedMessage, size_problems
from bot.wecom import api as wecom
from bot.wecom.outcomes import Outcome, UnsupportedMessage, classify, is_ambiguous

__all__ = ["AppChannel", "Channel", "ConsoleChannel", "Outcome", "RobotChannel", "app_request", "channel_for",
           "recipients_of", "request_for"]


class Channel(Protocol):
    def send(self, delivery: DeliveryRow) -> Outcome: ...


class ConsoleChannel:
    """Prints the message: the trial mode, and every target while no WeCom app is configured."""

    def __init__(self, settings: Settings, stream: TextIO | None = None) -> None:
        self.settings = settings
        self.stream = stream

    def send(self, delivery: DeliveryRow) -> Outcome:
        title = target_title(delivery.target, self.settings.all_targets())
        out = self.stream or sys.stdout
        out.write(f"==== 发送至 {title}：{delivery.title} ====\n{delivery.text}\n\n")
        out.flush()
        return Outcome("sent")


class RobotChannel:
    """A group robot: one POST to webhook/send."""

    def __init__(self, settings: Settings, session: requests.Session, target: RobotTarget) -> None:
        assert settings.wecom is not None
        self.api_base = settings.wecom.api_base
        self.timeout = settings.delivery.request_timeout.total_seconds()
        self.report_ambiguous = settings.delivery.ambiguous_robot_send == "report"
        self.session = session
        self.recipients = recipients_of(target)

    def send(self, delivery: DeliveryRow) -> Outcome:
        if (refused := over_limits(delivery, "robot")) is not None:
            return refused
        try:
            payload = wecom.robot_payload(delivery.msgtype, delivery.text, self.recipients)
            answer = wecom.post_robot(self.session, self.api_base, self.recipients["webhook_key"], payload,
                                      self.timeout)
        except Exception as exc:  # noqa: BLE001 - classify re-raises what it does not know
            return self._failed(exc)
        return Outcome("sent", errcode=0, errmsg=answer.get("errmsg"))

    def _failed(self, exc: Exception) -> Outcome:
        outcome = classify(None, None, exc)
        if self.report_ambiguous and is_ambiguous(exc):
            # The robot may have posted it; a robot has no duplicate check, so a re-send could double it.
            return Outcome("unknown", f"{outcome.error}，消息可能已送达，按配置不再重发")
        return outcome


class AppChannel:
    """The self-built app: message/send to users, parties and tags, or appchat/send to a chatid."""

    def __init__(self, settings: Settings, session: requests.Session, target: AppTarget | AppChatTarget) -> None:
        self.app = wecom.app_for(settings, session)
        self.recipients = recipients_of(target)

    def send(self, delivery: DeliveryRow) -> Outcome:
        if (refused := over_limits(delivery, "appchat" if "chatid" in self.recipients else "app")) is not None:
            return refused
        try:
            answer = self.app.post(*self._request(delivery))
        except Exception as exc:  # noqa: BLE001 - classify re-raises what it does not know
            return classify(None, None, exc)
        return Outcome("sent", errcode=0, msgid=answer.get("msgid"), response_code=answer.get("response_code"),
                       warnings=wecom.answer_warnings(answer), errmsg=answer.get("errmsg"))

    def _request(self, delivery: DeliveryRow) -> tuple[str, dict[str, Any]]:
        return app_request(delivery, self.recipients, self.app.agent_id)


def app_request(delivery: DeliveryRow, recipients: dict[str, Any], agent_id: int) -> tuple[str, dict[str, Any]]:
    """(API path, JSON body) of an app send; the console's delivery page shows the same body."""
    if "chatid" in recipients:
        message = wecom.app_message(delivery.msgtype, delivery.title, delivery.text, delivery.meta.get("url"))
        return "appchat/send", wecom.appchat_payload(recipients["chatid"], message)
    if delivery.card:
        task_id = wecom.task_id_for(delivery.key, delivery.created_at.isoformat())
        message = wecom.button_card(delivery.card, task_id)
    else:
        message = wecom.app_message(delivery.msgtype, delivery.title, delivery.text, delivery.meta.get("url"))
    return "message/send", wecom.app_payload(recipients, agent_id, message)


def request_for(delivery: DeliveryRow, target: Any, settings: Settings) -> tuple[str, dict[str, Any]] | None:
    """What the channel sends for ``delivery`` to ``target``: (API path, JSON body); None for the console.
    The robot's key rides in the path (the caller masks it)."""
    if settings.wecom is None or isinstance(target, ConsoleTarget) or target is None:
        return None
    recipients = recipients_of(target)
    if isinstance(target, RobotTarget):
        return (f"webhook/send?key={recipients['webhook_key']}",
                wecom.robot_payload(delivery.msgtype, delivery.text, recipients))
    return app_request(delivery, recipients, settings.wecom.agent_id)


def over_limits(delivery: DeliveryRow, channel: str) -> Outcome | None:
    """Refused before sending when over this channel's limits (WeCom would answer 40058, or cut it)."""
    problems = size_problems(RenderedMessage(delivery.msgtype, delivery.title, delivery.text), (channel,))
    problems += card_problems(delivery.card) if delivery.card else []
    return Outcome("failed", problems[0], configuration=True) if problems else None


def channel_for(target: Any, settings: Settings, session: requests.Session) -> Channel:
    """The channel for a configured target; everything goes to the console without a WeCom config."""
    if settings.wecom is None:
        return ConsoleChannel(settings)
    match target:
        case RobotTarget():
            return RobotChannel(settings, session, target)
        case AppTarget() | AppChatTarget():
            return AppChannel(settings, session, target)
        case ConsoleTarget():
            return ConsoleChannel(settings)
    raise UnsupportedMessage("无法识别的推送对象类型，请检查该推送对象的 type")


def recipients_of(target: RobotTarget | AppTarget | AppChatTarget) -> dict[str, Any]:
    """WeCom addressing of a configured target, looked up when it sends (never stored)."""
    match target:
        case RobotTarget():
            recipients: dict[str, Any] = {"webhook_key": target.key.get_secret_value()}
            if target.mentioned_list:
                recipients["mentioned_list"] = list(target.mentioned_list)
            if target.mentioned_mobile_list:
                recipients["mentioned_mobile_list"] = list(target.mentioned_mobile_list)
            return recipients
        case AppTarget():
            return {"touser": list(target.users), "toparty": list(target.parties), "totag": list(target.tags)}
        case AppChatTarget():
            return {"chatid": target.chatid}
    raise UnsupportedMessage(f"未知的推送对象类型 {type(target).__name__}")

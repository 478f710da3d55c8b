"""Everything wecom-reminder knows about WeCom's HTTP API (wecom.md §1–§7, §12), in one place.

URLs (always under ``settings.wecom.api_base``: 政务微信 and the simulator use other hosts), the
JSON of each message and access tokens with one bounded refresh; every errcode, HTTP status and
transport error is mapped to an ``Outcome`` in ``bot.wecom.outcomes``. Nothing here logs or raises a
full URL: robot keys and access tokens travel in query strings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from typing import Any

import requests
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException

from bot.config import Settings, WeComSettings
from bot.errors import DeliveryError
from bot.templates.card import is_link
from bot.wecom.outcomes import TOKEN_ERRORS, MalformedAnswer, TokenFetchError, UnsupportedMessage, classify

log = logging.getLogger(__name__)

DUPLICATE_CHECK_INTERVAL = 14400  # WeCom's maximum (4 h): a re-send after a crash is not delivered twice
TASK_ID_PREFIX = "wr_"
_SECRET_QUERY = re.compile(r"((?:key|access_token|corpsecret)=)[^&\s\"']+")


def redact(text: str) -> str:
    """Mask robot keys, tokens and secrets in a URL or a message that quotes one."""
    return _SECRET_QUERY.sub(r"\1***", text)


class _RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(str(record.msg))
        if record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


# urllib3 logs every request line (with its query string) at DEBUG.
logging.getLogger("urllib3.connectionpool").addFilter(_RedactSecrets())


def api_url(api_base: str, endpoint: str) -> str:
    return f"{api_base.rstrip('/')}/cgi-bin/{endpoint}"


# ---- payloads -------------------------------------------------------------------------------


def robot_payload(msgtype: str, text: str, recipients: dict[str, Any]) -> dict[str, Any]:
    """Group robot JSON. Only ``text`` carries the mention lists; ``markdown`` mentions people as
    ``<@userid>`` in its content and cannot mention @all or mobiles (wecom.md §2; `check` refuses those)."""
    if msgtype == "text":
        body: dict[str, Any] = {"content": text}
        for field in ("mentioned_list", "mentioned_mobile_list"):
            if recipients.get(field):
                body[field] = list(recipients[field])
        return {"msgtype": "text", "text": body}
    if msgtype == "markdown":
        mentions = " ".join(f"<@{u}>" for u in recipients.get("mentioned_list", []) if u != "@all")
        return {"msgtype": msgtype, msgtype: {"content": f"{text}\n{mentions}" if mentions else text}}
    if msgtype == "markdown_v2":
        return {"msgtype": msgtype, msgtype: {"content": text}}
    raise UnsupportedMessage(f"群机器人不支持消息类型 {msgtype}")



def app_payload(recipients: dict[str, Any], agent_id: int, message: dict[str, Any]) -> dict[str, Any]:
    """message/send JSON. Built the same way every time: with the duplicate check, a re-send of the
    same delivery within 4 hours is not delivered again."""
    body: dict[str, Any] = {}
    for field in ("touser", "toparty", "totag"):
        if recipients.get(field):
            body[field] = "|".join(str(v) for v in recipients[field])
    return {**body, "agentid": agent_id, **message, "safe": 0,
            "enable_duplicate_check": 1, "duplicate_check_interval": DUPLICATE_CHECK_INTERVAL}


def appchat_payload(chatid: str, message: dict[str, Any]) -> dict[str, Any]:
    if message["msgtype"] == "template_card":
        raise UnsupportedMessage("应用群聊不支持模板卡片消息")
    return {"chatid": chatid, **message, "safe": 0}


def app_message(msgtype: str, title: str, text: str, url: str | None = None) -> dict[str, Any]:
    """The msgtype part of an app or appchat message."""
    if msgtype in ("text", "markdown"):
        return {"msgtype": msgtype, msgtype: {"content": text}}
    if msgtype == "textcard" and url:
        return {"msgtype": "textcard", "textcard": {"title": title, "description": text, "url": url}}
    raise UnsupportedMessage(f"应用消息不支持消息类型 {msgtype}")


def task_id_for(key: str, created_at: str) -> str:
    """Unique per app and stable per delivery: a row re-created after a database reset gets a new one."""
    digest = hashlib.sha256(f"{key}|{created_at}".encode()).hexdigest()[:40]
    return TASK_ID_PREFIX + digest


def button_card(card: dict[str, Any], task_id: str) -> dict[str, Any]:
    """A button_interaction template card from the plan's card (see bot.templates.card.RenderedCard)."""
    template_card: dict[str, Any] = {
        "card_type": "button_interaction",
        "main_title": {"title": card["title"]},
        "sub_title_text": card.get("description", ""),
        "task_id": task_id,
        "button_list": [{"text": card["button_text"], "style": 1, "key": card["button_key"]}],
    }
    rows = [_card_row(name, value) for name, value in card.get("fields") or []]
    if rows:
        template_card["horizontal_content_list"] = rows
    return {"msgtype": "template_card", "template_card": template_card}


def _card_row(name: str, value: str) -> dict[str, Any]:
    """A card row; a link opens in the browser (type 1)."""
    if is_link(value):
        return {"type": 1, "keyname": name, "value": "点击查看", "url": value}
    return {"keyname": name, "value": value}


def request_text(path: str, body: dict[str, Any]) -> str:
    """A request as the console's delivery page shows it (the caller masks keys and secrets)."""
    return f"POST /cgi-bin/{path}\n{json.dumps(body, ensure_ascii=False, indent=2)}"


def answer_warnings(answer: dict[str, Any]) -> tuple[str, ...]:
    labels = {"invaliduser": "无效成员", "invalidparty": "无效部门", "invalidtag": "无效标签",
              "unlicenseduser": "未授权成员"}
    return tuple(f"{label}：{answer[field]}" for field, label in labels.items() if answer.get(field))


# ---- the group robot ------------------------------------------------------------------------


def post_robot(session: requests.Session, api_base: str, key: str, payload: dict[str, Any],
               timeout: float) -> dict[str, Any]:
    """POST webhook/send; the answer JSON. Raises requests errors, WeChatClientException, MalformedAnswer."""
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    response = session.post(api_url(api_base, "webhook/send"), params={"key": key}, data=data,
                            headers={"Content-Type": "application/json"}, timeout=timeout)
    return _json_answer(response)


def _json_answer(response: requests.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise WeChatClientException(None, None, response=response)
    try:
        answer = response.json()
    except ValueError:
        raise MalformedAnswer() from None
    if not isinstance(answer, dict):
        raise MalformedAnswer()
    code = int(answer.get("errcode", 0))
    if code != 0:
        raise WeChatClientException(code, answer.get("errmsg"), response=response)
    return answer


# ---- the self-built app ---------------------------------------------------------------------


class BoundedClient(WeChatClient):
    """wechatpy's client pointed at ``api_base``; auto_retry off, so token errors raise."""

    def __init__(self, wecom: WeComSettings, session: requests.Session, timeout: float) -> None:
        super().__init__(wecom.corp_id, wecom.secret.get_secret_value(), timeout=timeout, auto_retry=False)
        self.API_BASE_URL = api_url(wecom.api_base, "")
        self._http = session  # share the caller's connection pool

    def fetch_access_token(self) -> dict[str, Any]:
        # wechatpy's version hard-codes qyapi.weixin.qq.com and sends without a timeout.
        response = self._http.get(self.API_BASE_URL + "gettoken", timeout=self.timeout,
                                  params={"corpid": self.corp_id, "corpsecret": self.secret})
        try:
            answer = _json_answer(response)
        except WeChatClientException as exc:
            status = response.status_code if exc.errcode is None else None
            raise TokenFetchError(exc.errcode, status, exc.errmsg) from None
        expires_in = int(answer.get("expires_in", 7200))
        self.session.set(self.access_token_key, answer["access_token"], expires_in)
        self.expires_at = int(time.time()) + expires_in
        return answer


class WeComApp:
    """The app's API calls, each with at most one token refresh (wechatpy's own retry is unbounded)."""

    def __init__(self, wecom: WeComSettings, session: requests.Session, timeout: float) -> None:
        self.agent_id = wecom.agent_id
        self.client = BoundedClient(wecom, session, timeout)
        self._refresh_lock = threading.Lock()

    def post(self, endpoint: str, data: dict[str, Any]) -> dict[str, Any]:
        return self.call("post", endpoint, data)

    def get(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.call("get", endpoint, params=params)

    def call(self, method: str, endpoint: str, data: dict[str, Any] | None = None,
             params: dict[str, Any] | None = None) -> dict[str, Any]:
        token = self._token()
        try:
            return self._call(method, endpoint, data, params, token)
        except WeChatClientException as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            log.info("access_token 失效（错误码 %s），重新获取一次", exc.errcode)
        return self._call(method, endpoint, data, params, self._refresh(token))

    def _token(self) -> str:
        with self._refresh_lock:
            return str(self.client.access_token)

    def _refresh(self, stale: str) -> str:
        with self._refresh_lock:
            # Another thread may have refreshed already: one gettoken per stale token.
            if self.client.session.get(self.client.access_token_key) == stale:
                self.client.fetch_access_token()
            return str(self.client.session.get(self.client.access_token_key))

    def _call(self, method: str, endpoint: str, data: dict[str, Any] | None, params: dict[str, Any] | None,
              token: str) -> dict[str, Any]:
        query = {**(params or {}), "access_token": token}
        answer = (self.client.post(endpoint, data=data, params=query) if method == "post"
                  else self.client.get(endpoint, params=query))
        if not isinstance(answer, dict):
            raise MalformedAnswer()
        return answer


_apps: dict[tuple[Any, ...], WeComApp] = {}
_apps_lock = threading.Lock()
_default_session = requests.Session()


def app_for(settings: Settings, session: requests.Session | None = None) -> WeComApp:
    """The app client for these settings, kept so its access token is reused across dispatchers."""
    wecom = settings.wecom
    if wecom is None:
        raise DeliveryError("未配置企业微信应用（wecom），无法发送应用消息。处理办法：在配置文件中填写 wecom 一节")
    session = session or _default_session
    timeout = settings.delivery.request_timeout.total_seconds()
    cache_key = (wecom.api_base, wecom.corp_id, wecom.secret.get_secret_value(), wecom.agent_id, timeout)
    with _apps_lock:
        app = _apps.get(cache_key)
        if app is None:
            app = _apps[cache_key] = WeComApp(wecom, session, timeout)
        # One app, one token, whichever session (connection pool) carries the call.
        app.client._http = session
        return app


def update_template_card(settings: Settings, response_code: str, userids: list[str], replace_name: str,
                         session: requests.Session | None = None) -> None:
    """Grey out a clicked card's button with ``replace_name`` (response_code: single use, 72 h)."""
    app = app_for(settings, session)
    body = {"userids": list(userids), "agentid": app.agent_id, "response_code": response_code,
            "button": {"replace_name": replace_name}}
    _call_or_raise(app, "message/update_template_card", body, "更新模板卡片失败", CARD_UPDATE_ERRORS)


def recall(settings: Settings, msgid: str, session: requests.Session | None = None) -> None:
    """Recall an app message sent within the last 24 hours."""
    _call_or_raise(app_for(settings, session), "message/recall", {"msgid": msgid}, "撤回消息失败", RECALL_ERRORS)


# What an errcode means for these calls: the send's table (bot.wecom.outcomes) speaks of message
# content, and a used or expired response_code is not a template to shorten (40058 for an invalid
# parameter is the simulator's reading; WeCom's own code for it is unconfirmed).
CARD_UPDATE_ERRORS = {
    40058: "卡片的 response_code 已使用、已过期（超过 72 小时）或无效（40058），按钮未能改为“已完成”；"
           "确认记录不受影响，无需处理",
}
RECALL_ERRORS = {
    40058: "消息编号无效或已超过 24 小时，无法撤回（40058）；请在相应会话中另行发送更正说明",
}


def _call_or_raise(app: WeComApp, endpoint: str, body: dict[str, Any], what: str,
                   meanings: dict[int, str]) -> None:
    try:
        app.post(endpoint, body)
    except Exception as exc:  # noqa: BLE001 - classify re-raises what it does not know
        outcome = classify(None, None, exc)
        reason = meanings.get(outcome.errcode or 0, outcome.error)
        raise DeliveryError(f"{what}：{reason}") from None

"""Everything wecom-reminder knows about WeCom's HTTP API (wecom.md §1–§7, §12), in one place.

URLs (always under ``settings.wecom.api_base``: 政务微信 and the simulator use other hosts), the
JSON of each message, access tokens with one bounded refresh, and the mapping of every errcode,
HTTP status and transport error to an ``Outcome`` (``classify``). Nothing here logs or raises a
full URL: robot keys and access tokens travel in query strings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import requests
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException

from bot.config import Settings, WeComSettings
from bot.errors import DeliveryError

log = logging.getLogger(__name__)

DUPLICATE_CHECK_INTERVAL = 14400  # WeCom's maximum (4 h): a re-send after a crash is not delivered twice
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
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


# ---- outcomes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How one send ended, in WeCom-free terms the dispatcher acts on."""

    status: str  # 'sent' | 'retry' | 'failed' | 'unknown'
    error: str | None = None
    errcode: int | None = None
    msgid: str | None = None
    response_code: str | None = None
    retry_after: float | None = None
    warnings: tuple[str, ...] = ()
    configuration: bool = False  # retrying cannot cure it: an administrator must change a setting


class MalformedAnswer(Exception):
    """WeCom answered with something that is not a JSON object."""


class TokenFetchError(Exception):
    """gettoken failed: errcode (None for an HTTP error) and, for HTTP errors, the status."""

    def __init__(self, errcode: int | None, http_status: int | None = None, errmsg: str | None = None) -> None:
        super().__init__(f"gettoken failed: errcode={errcode} http={http_status}")
        self.errcode = errcode
        self.http_status = http_status
        self.errmsg = errmsg


class UnsupportedMessage(DeliveryError):
    """The delivery asks for something the channel cannot carry."""


APP = "企业微信管理后台 → 应用管理 → 本应用"
# Errors retrying cannot cure (wecom.md §7 and issue 10): what went wrong, and where to fix it.
CONFIGURATION: dict[int, tuple[str, str]] = {
    60020: ("企业微信拒绝了来自本服务器 IP {ip} 的调用（60020）",
            f"{APP} → 企业可信IP → 配置，添加 {{ip}}"),
    43012: ("应用未设置接收消息的回调地址，不能发送带按钮的卡片（43012）",
            f"{APP} → 接收消息 → 设置API接收，填写本服务的回调地址及 wecom.callback 中的 Token 和 EncodingAESKey"),
    42014: ("卡片的 task_id 重复、为空或过长（42014）",
            "task_id 在应用内须永不重复；如曾清空或还原数据库，请在管理后台「发送记录」中重新发送，仍出现请报告维护人员"),
    40056: ("应用 AgentId 不正确（40056）", f"{APP}，核对 AgentId，填入配置 wecom.agent_id"),
    301002: ("AgentId 与应用 Secret 不属于同一应用（301002）",
             f"{APP}，核对 AgentId 与 Secret，分别填入配置 wecom.agent_id 和 wecom.secret"),
    48002: ("应用无权调用该接口（48002）",
            f"{APP}，确认使用的是本应用的 Secret，并在「企业微信授权登录/API」权限中开启消息发送"),
    81013: ("接收人全部不存在或不在应用的可见范围内（81013）",
            f"{APP} → 可见范围，添加推送对象中的成员、部门或标签，并核对其 users、parties、tags"),
    60011: ("应用无权限访问这些成员、部门或群聊（60011）", f"{APP} → 可见范围，设为根部门或添加相应成员"),
    86003: ("应用群聊不存在（86003）", "核对推送对象的 chatid；应用群聊须由本应用通过接口创建"),
    93000: ("群机器人密钥无效，或机器人已被移出群聊（93000）",
            "在企业微信该群聊 → 群设置 → 群机器人（消息推送）中查看或重新添加机器人，"
            "把 Webhook 地址中 key= 后面的部分填入该推送对象的 key"),
    93004: ("群机器人已被停用（93004）", "在企业微信该群聊 → 群设置 → 群机器人中重新启用机器人"),
    93008: ("群机器人已不在群聊中（93008）", "在企业微信该群聊 → 群设置 → 群机器人中重新添加机器人，并更新推送对象的 key"),
    40058: ("消息内容超过企业微信长度限制（40058）",
            "在管理后台「模板」中缩短该模板（应用消息 2048 字节，群机器人 text 2048、markdown 4096 字节），"
            "wecom-reminder check 会指出超长的模板"),
}
PERMANENT: dict[int, str] = {
    40001: "访问令牌无效，重新获取后仍被拒绝（40001）",
    40014: "访问令牌无效，重新获取后仍被拒绝（40014）",
    42001: "访问令牌已过期，重新获取后仍被拒绝（42001）",
    41001: "请求缺少访问令牌（41001）",
    44004: "消息内容为空（44004），请检查模板",
    45008: "图文消息超过 8 条（45008）",
    40008: "消息类型不合法（40008）",
    40007: "媒体文件无效或已过期（40007）",
}
TRANSIENT: dict[int, str] = {
    -1: "企业微信系统繁忙（-1）",
    45009: "企业微信接口调用频率超限（45009）",
    45033: "企业微信接口并发调用超限（45033）",
}
GETTOKEN: dict[int, tuple[str, str]] = {
    40001: ("企业微信应用 Secret 无效（40001）", f"{APP}，查看 Secret，填入配置 wecom.secret"),
    40013: ("企业 CorpID 无效（40013）", "企业微信管理后台 → 我的企业 → 企业信息，复制企业ID，填入配置 wecom.corp_id"),
    40091: ("企业微信应用 Secret 无效（40091）", f"{APP}，查看 Secret，填入配置 wecom.secret"),
}
_FROM_IP = re.compile(r"from ip:\s*([0-9A-Fa-f.:]+)")


def configuration_error(errcode: int, errmsg: str | None, table: dict[int, tuple[str, str]] = CONFIGURATION) -> str:
    """One Chinese sentence: the cause (with the server's IP for 60020) and where to fix it."""
    match = _FROM_IP.search(errmsg or "")
    ip = match.group(1) if match else "（企业微信未给出，请查本服务器的出口 IP）"
    cause, fix = table[errcode]
    return f"{cause.format(ip=ip)}。处理办法：{fix.format(ip=ip)}"


RETRY_AFTER = {45009: 60.0, 45033: 10.0}
# WeCom's advice for -1 is "at most 3 times" (90455): the first attempt plus three.
ATTEMPT_CAPS = {-1: 4}


def max_attempts_for(errcode: int | None, default: int) -> int:
    return min(default, ATTEMPT_CAPS.get(errcode, default)) if errcode is not None else default


def classify(errcode: int | None, http_status: int | None, exception: BaseException | None,
             errmsg: str | None = None) -> Outcome:
    """Map one WeCom answer (or failure to get one) to sent / retry / failed, with a Chinese reason."""
    if exception is not None:
        return _classify_exception(exception)
    if http_status is not None and http_status != 200:
        return _classify_http(http_status)
    if errcode in (0, None):
        return Outcome("sent", errcode=errcode)
    if errcode in CONFIGURATION:
        return Outcome("failed", configuration_error(errcode, errmsg), errcode, configuration=True)
    if errcode in PERMANENT:
        return Outcome("failed", PERMANENT[errcode], errcode)
    if errcode in TRANSIENT:
        return Outcome("retry", TRANSIENT[errcode], errcode, retry_after=RETRY_AFTER.get(errcode))
    # An errcode we do not know may be transient: retry, bounded by max_attempts, then fail and alert.
    return Outcome("retry", f"企业微信返回未知错误码（{errcode}）", errcode)


def _classify_http(status: int) -> Outcome:
    if status >= 500 or status == 429:
        return Outcome("retry", f"企业微信服务器暂时不可用（HTTP {status}）")
    return Outcome("failed", f"企业微信接口返回 HTTP {status}，请检查配置 wecom.api_base")


def _classify_exception(exception: BaseException) -> Outcome:
    match exception:
        case TokenFetchError(errcode=code) if code in GETTOKEN:
            return Outcome("failed", configuration_error(code, None, GETTOKEN), code, configuration=True)
        case TokenFetchError(errcode=None, http_status=status):
            return _classify_http(status or 500)
        case TokenFetchError(errcode=code, errmsg=errmsg):
            outcome = classify(code, None, None, errmsg)
            return replace(outcome, error=f"获取访问令牌失败：{outcome.error}")
        case WeChatClientException(errcode=None, response=response):
            return _classify_http(getattr(response, "status_code", None) or 500)
        case WeChatClientException(errcode=code, errmsg=errmsg):
            return classify(int(code), None, None, errmsg)
        case requests.Timeout():
            return Outcome("retry", "请求企业微信超时，未收到应答")
        case requests.ConnectionError():
            return Outcome("retry", "无法连接企业微信服务器")
        case MalformedAnswer():
            return Outcome("retry", "企业微信返回了无法解析的应答")
        case UnsupportedMessage():
            return Outcome("failed", str(exception))
        case requests.RequestException():
            return Outcome("retry", f"请求企业微信失败（{type(exception).__name__}）")
    raise exception


def is_ambiguous(exception: BaseException) -> bool:
    """The request may have reached WeCom although we got no answer."""
    return isinstance(exception, requests.ReadTimeout)


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
    """A button_interaction template card from the plan's {title, description, button_text, button_key}."""
    template_card: dict[str, Any] = {
        "card_type": "button_interaction",
        "main_title": {"title": card["title"]},
        "sub_title_text": card.get("description", ""),
        "task_id": task_id,
        "button_list": [{"text": card["button_text"], "style": 1, "key": card["button_key"]}],
    }
    return {"msgtype": "template_card", "template_card": template_card}


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
    _call_or_raise(app, "message/update_template_card", body, "更新模板卡片失败")


def recall(settings: Settings, msgid: str, session: requests.Session | None = None) -> None:
    """Recall an app message sent within the last 24 hours."""
    _call_or_raise(app_for(settings, session), "message/recall", {"msgid": msgid}, "撤回消息失败")


def _call_or_raise(app: WeComApp, endpoint: str, body: dict[str, Any], what: str) -> None:
    try:
        app.post(endpoint, body)
    except Exception as exc:  # noqa: BLE001 - classify re-raises what it does not know
        outcome = classify(None, None, exc)
        raise DeliveryError(f"{what}：{outcome.error}") from None

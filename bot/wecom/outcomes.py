"""WeCom's answers in WeCom-free terms: every errcode, HTTP status and transport error mapped to an
``Outcome`` (sent / retry / failed / unknown) with a Chinese reason, in one place (wecom.md §7,
issue 10). Configuration errors (retrying cannot cure them) name the cause and where to fix it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import requests
from wechatpy.exceptions import WeChatClientException

from bot.errors import DeliveryError


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
    errmsg: str | None = None    # WeCom's own words with the errcode, as it said them


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


def configuration_fix(errcode: int | None, errmsg: str | None = None) -> str | None:
    """Where to fix a configuration error (the console's delivery page); None when retrying is the cure."""
    if errcode is None or errcode not in CONFIGURATION:
        return None
    match = _FROM_IP.search(errmsg or "")
    return CONFIGURATION[errcode][1].format(ip=match.group(1) if match else "本服务器的出口 IP")


# The API client refreshes its access token once on these before they count as an answer.
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
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
    return replace(_classify_errcode(errcode, errmsg), errmsg=errmsg)


def _classify_errcode(errcode: int | None, errmsg: str | None) -> Outcome:
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


# An attempt that ended so may have reached WeCom all the same (see is_ambiguous).
TIMED_OUT = "请求企业微信超时，未收到应答"


def _classify_exception(exception: BaseException) -> Outcome:
    match exception:
        case TokenFetchError(errcode=code, errmsg=errmsg) if code in GETTOKEN:
            return Outcome("failed", configuration_error(code, None, GETTOKEN), code, configuration=True, errmsg=errmsg)
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
            return Outcome("retry", TIMED_OUT)
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

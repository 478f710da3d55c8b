"""WeCom → our service: URL verification and encrypted, signed callbacks (wecom.md §8–§9).

The simulator plays WeCom's side, so it encrypts with ReceiveId = corp_id and checks the passive
reply the way WeCom would: signature over the new Encrypt, then decrypt, then ReceiveId.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

import requests
from defusedxml import ElementTree
from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.utils import to_text

from bot.simulator.state import CallbackResult, SimulatorSettings

VERIFY_DEADLINE = 1.0


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    joined = "".join(sorted([token, timestamp, nonce, encrypt]))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()


def cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_message_xml(corp_id: str, userid: str, content: str, msg_id: int, agent_id: int,
                     create_time: int) -> str:
    return (f"<xml><ToUserName>{cdata(corp_id)}</ToUserName><FromUserName>{cdata(userid)}</FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType>{cdata('text')}</MsgType>"
            f"<Content>{cdata(content)}</Content><MsgId>{msg_id}</MsgId><AgentID>{agent_id}</AgentID></xml>")


def card_event_xml(corp_id: str, userid: str, task_id: str, key: str, card_type: str, response_code: str,
                   agent_id: int, create_time: int) -> str:
    return (f"<xml><ToUserName>{cdata(corp_id)}</ToUserName><FromUserName>{cdata(userid)}</FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType>{cdata('event')}</MsgType>"
            f"<Event>{cdata('template_card_event')}</Event><EventKey>{cdata(key)}</EventKey>"
            f"<TaskId>{cdata(task_id)}</TaskId><CardType>{cdata(card_type)}</CardType>"
            f"<ResponseCode>{cdata(response_code)}</ResponseCode><AgentID>{agent_id}</AgentID></xml>")


@dataclass(frozen=True)
class Envelope:
    """One signed, encrypted callback; retries re-send exactly this."""

    query: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class PassiveReply:
    xml: str | None
    text: str | None
    error: str | None


class CallbackSender:
    def __init__(self, settings: SimulatorSettings, wall_clock: Callable[[], float] = time.time) -> None:
        self.wall_clock = wall_clock
        self.settings = settings
        self.key = base64.b64decode(settings.encoding_aes_key + "=")

    def encrypt(self, plaintext: str) -> str:
        return to_text(PrpCrypto(self.key).encrypt(plaintext, self.settings.corp_id))

    def signed_query(self, encrypt: str) -> dict[str, str]:
        timestamp, nonce = str(int(self.wall_clock())), str(secrets.randbelow(10**10))
        sig = signature(self.settings.callback_token, timestamp, nonce, encrypt)
        return {"msg_signature": sig, "timestamp": timestamp, "nonce": nonce}

    def verify_url(self) -> bool:
        """GET with an encrypted echostr; WeCom accepts only the exact plaintext within 1 s."""
        plaintext = str(secrets.randbelow(10**19))
        echostr = self.encrypt(plaintext)
        query = dict(self.signed_query(echostr), echostr=echostr)
        started = time.monotonic()
        try:
            answer = requests.get(self.url(), params=query, timeout=VERIFY_DEADLINE)
        except requests.RequestException:
            return False
        in_time = time.monotonic() - started <= VERIFY_DEADLINE
        return in_time and answer.status_code == 200 and answer.content == plaintext.encode("utf-8")

    def envelope(self, plaintext: str) -> Envelope:
        encrypt = self.encrypt(plaintext)
        body = (f"<xml><ToUserName>{cdata(self.settings.corp_id)}</ToUserName>"
                f"<AgentID>{cdata(str(self.settings.agent_id))}</AgentID>"
                f"<Encrypt>{cdata(encrypt)}</Encrypt></xml>")
        return Envelope(self.signed_query(encrypt), body.encode("utf-8"))

    def post(self, plaintext: str) -> CallbackResult:
        """Deliver one callback; no answer in time (or a connection error) → re-send the same envelope,
        up to `callback_retries` times. An HTTP error answer is not retried: whether WeCom retries one
        is not certain, so the simulator takes the case that loses the message."""
        envelope = self.envelope(plaintext)
        status: int | None = None
        for attempt in range(1, self.settings.callback_retries + 2):
            status, content = self.attempt(envelope)
            if status == 200:
                reply = self.open_reply(content)
                return CallbackResult(status, reply.text, attempt, reply.xml, reply.error)
            if status is not None:
                return CallbackResult(status, None, attempt, None, f"服务以 HTTP {status} 应答，不再重新推送")
        return CallbackResult(status, None, self.settings.callback_retries + 1, None, "未在时限内收到 HTTP 200 应答")

    def attempt(self, envelope: Envelope) -> tuple[int | None, bytes]:
        try:
            answer = requests.post(self.url(), params=envelope.query, data=envelope.body,
                                   headers={"Content-Type": "text/xml; charset=utf-8"},
                                   timeout=self.settings.callback_timeout)
        except requests.RequestException:
            return None, b""
        return answer.status_code, answer.content

    def open_reply(self, content: bytes) -> PassiveReply:
        """Check and decrypt a passive reply; an empty body means no reply."""
        if not content.strip():
            return PassiveReply(None, None, None)
        try:
            root = ElementTree.fromstring(content)
            encrypt, sig = field(root, "Encrypt"), field(root, "MsgSignature")
            expected = signature(self.settings.callback_token, field(root, "TimeStamp"), field(root, "Nonce"), encrypt)
            if not hmac.compare_digest(expected, sig):
                return PassiveReply(None, None, "被动回复签名校验失败")
            xml = PrpCrypto(self.key).decrypt(encrypt, self.settings.corp_id)
        except InvalidCorpIdException:
            return PassiveReply(None, None, "被动回复的 ReceiveId 与 CorpID 不一致")
        except Exception:  # any malformed reply is a rejected reply, whatever broke first
            return PassiveReply(None, None, "被动回复格式错误，无法解密")
        return PassiveReply(xml, reply_text(xml), None)

    def url(self) -> str:
        if not self.settings.callback_url:
            raise RuntimeError("SimulatorSettings.callback_url is not set")
        return self.settings.callback_url


def field(root: Element, name: str) -> str:
    node = root.find(name)
    if node is None or node.text is None:
        raise ValueError(f"missing {name}")
    return node.text


def reply_text(xml: str) -> str | None:
    try:
        return ElementTree.fromstring(xml.encode("utf-8")).findtext("Content")
    except ElementTree.ParseError:
        return None


def replace_name(xml: str | None) -> str | None:
    """ReplaceName of an update_button passive reply, if that is what the reply is."""
    if not xml:
        return None
    try:
        root = ElementTree.fromstring(xml.encode("utf-8"))
    except ElementTree.ParseError:
        return None
    if (root.findtext("MsgType") or "") != "update_button":
        return None
    return root.findtext("Button/ReplaceName")

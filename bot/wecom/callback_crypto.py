"""The callback's protocol (wecom.md §8–§9): signature, timestamp, decryption, XML, the passive reply.

Each check refuses with a 4xx and a short Chinese body (``Refused``) before anything is written.
The signature is sha1 over token, timestamp, nonce and Encrypt, compared in constant time
(wechatpy compares with ``!=``); decryption and the ReceiveId check are wechatpy's; the XML is
parsed by defusedxml with no DTDs.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeXML
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.utils import WeChatSigner

from bot.config import WeComSettings

MAX_SKEW = 600          # seconds; WeCom's retries reuse the timestamp within ~15 s
MAX_REPLY_BYTES = 2048
_SIGNATURE = re.compile(r"^[0-9a-fA-F]{40}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")  # ASCII seconds: isdigit() also takes '²' and 5,000-digit numbers
_NONCE = re.compile(r"^[0-9A-Za-z_\-]{1,64}$")


class Refused(Exception):
    """A request we do not accept: HTTP status and a short Chinese body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class SignedQuery:
    signature: str
    timestamp: str
    nonce: str


def crypto_for(wecom: WeComSettings) -> WeChatCrypto:
    callback = wecom.callback
    return WeChatCrypto(callback.token.get_secret_value(), callback.encoding_aes_key.get_secret_value(),
                        wecom.corp_id)


def signed_query(args: Mapping[str, str]) -> SignedQuery:
    query = SignedQuery(args.get("msg_signature", ""), args.get("timestamp", ""), args.get("nonce", ""))
    if not (_SIGNATURE.match(query.signature) and _TIMESTAMP.fullmatch(query.timestamp) and _NONCE.match(query.nonce)):
        raise Refused(400, "缺少或错误的签名参数")
    return query


def check_signature(wecom: WeComSettings, query: SignedQuery, encrypted: str) -> None:
    """Constant-time comparison of msg_signature with wechatpy's own computation of it."""
    signer = WeChatSigner()
    signer.add_data(wecom.callback.token.get_secret_value(), query.timestamp, query.nonce, encrypted)
    if not hmac.compare_digest(signer.signature.encode(), query.signature.lower().encode()):
        raise Refused(403, "签名校验失败")


def check_skew(query: SignedQuery, now: datetime) -> None:
    if abs(now.timestamp() - int(query.timestamp)) > MAX_SKEW:
        raise Refused(403, "时间戳超出允许范围")


def decrypt(crypto: WeChatCrypto, query: SignedQuery, encrypted: str) -> str:
    try:
        base64.b64decode(encrypted, validate=True)
        return crypto.decrypt_message({"Encrypt": encrypted}, query.signature.lower(), query.timestamp, query.nonce)
    except InvalidCorpIdException:
        raise Refused(403, "CorpID 不符") from None
    except Exception:  # noqa: BLE001 - any failure to decrypt (base64, length, padding, UTF-8) is one refusal
        raise Refused(400, "消息无法解密") from None


def decrypt_echo(wecom: WeComSettings, query: SignedQuery, echostr: str) -> str:
    """The URL verification's echostr, decrypted (the caller checked its signature)."""
    try:
        base64.b64decode(echostr, validate=True)
        return crypto_for(wecom).check_signature(query.signature.lower(), query.timestamp, query.nonce, echostr)
    except InvalidCorpIdException:
        raise Refused(403, "CorpID 不符") from None
    except Exception:  # noqa: BLE001
        raise Refused(400, "echostr 无法解密") from None


def parse_xml(data: bytes | str) -> Element:
    try:
        return SafeXML.fromstring(data, forbid_dtd=True)
    except (SafeXML.ParseError, DefusedXmlException, ValueError):
        raise Refused(400, "消息格式错误") from None


def plaintext_fields(plaintext: str) -> dict[str, str]:
    """The decrypted message's flat fields (MsgType, FromUserName, Content, EventKey …)."""
    root = parse_xml(plaintext.encode("utf-8"))
    return {child.tag: (child.text or "").strip() for child in root if len(child) == 0}


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def truncate_utf8(text: str, limit: int = MAX_REPLY_BYTES) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def passive_reply(wecom: WeComSettings, userid: str, text: str, query: SignedQuery, now: datetime) -> bytes:
    plaintext = (f"<xml><ToUserName>{_cdata(userid)}</ToUserName><FromUserName>{_cdata(wecom.corp_id)}"
                 f"</FromUserName><CreateTime>{int(now.timestamp())}</CreateTime><MsgType>{_cdata('text')}"
                 f"</MsgType><Content>{_cdata(truncate_utf8(text))}</Content></xml>")
    nonce = query.nonce or secrets.token_hex(8)
    return crypto_for(wecom).encrypt_message(plaintext, nonce, query.timestamp).encode("utf-8")

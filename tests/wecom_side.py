"""WeCom's side of the callback scheme, written for the tests from wecom.md §8 alone.

Independent of wechatpy and of bot/: AES-256-CBC from ``cryptography``, SHA-1 from hashlib. It is
checked against the official vectors (§10) and against wechatpy in tests/test_callback.py, so the
product code (which uses wechatpy) is tested against a second implementation, not against itself.
It can also build what WeCom never sends: bad padding, a wrong ReceiveId, mangled base64.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from dataclasses import dataclass
from xml.etree import ElementTree

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeCom pads to 32 bytes, not AES's 16

# The official example (doc path 90968 "举例说明").
VECTOR_TOKEN = "QDG6eK"
VECTOR_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
VECTOR_CORP = "wx5823bf96d3bd56c7"
VECTOR_GET = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589",
              "nonce": "263014780",
              "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="}
VECTOR_ECHO = "1616140317555161061"
VECTOR_POST = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813",
               "nonce": "1372623149"}
VECTOR_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QAD"
    "HHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k"
    "4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiq"
    "ATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcall"
    "crw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCm"
    "JU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==")
VECTOR_PLAINTEXT = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
    "<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n"
    "<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n"
    "<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>")


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """msg_signature: lower-hex sha1 of the four strings sorted and joined (§8)."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode("utf-8")).hexdigest()


def cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_xml(corp_id: str, userid: str, content: str, msg_id: int, create_time: int, agent_id: int = 1) -> str:
    return (f"<xml><ToUserName>{cdata(corp_id)}</ToUserName><FromUserName>{cdata(userid)}</FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType>{cdata('text')}</MsgType>"
            f"<Content>{cdata(content)}</Content><MsgId>{msg_id}</MsgId><AgentID>{agent_id}</AgentID></xml>")


def card_click_xml(corp_id: str, userid: str, task_id: str, key: str, response_code: str, create_time: int,
                   agent_id: int = 1) -> str:
    return (f"<xml><ToUserName>{cdata(corp_id)}</ToUserName><FromUserName>{cdata(userid)}</FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType>{cdata('event')}</MsgType>"
            f"<Event>{cdata('template_card_event')}</Event><EventKey>{cdata(key)}</EventKey>"
            f"<TaskId>{cdata(task_id)}</TaskId><CardType>{cdata('button_interaction')}</CardType>"
            f"<ResponseCode>{cdata(response_code)}</ResponseCode><AgentID>{agent_id}</AgentID></xml>")


@dataclass(frozen=True)
class Request:
    """A signed callback as WeCom would send it."""

    query: dict[str, str]
    body: bytes


class WeComSide:
    def __init__(self, token: str, encoding_aes_key: str, corp_id: str) -> None:
        self.token = token
        self.corp_id = corp_id
        self.key = base64.b64decode(encoding_aes_key + "=")
        assert len(self.key) == 32

    # AES ----------------------------------------------------------------------------------

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message: str, receive_id: str | None = None, *, pad: int | None = None,
                random16: bytes | None = None) -> str:
        """random(16) ‖ len (4, big-endian) ‖ msg ‖ ReceiveId, PKCS#7 to 32; ``pad`` forces a padding byte."""
        body = message.encode("utf-8")
        receive = (self.corp_id if receive_id is None else receive_id).encode("utf-8")
        plain = (random16 or os.urandom(16)) + struct.pack(">I", len(body)) + body + receive
        count = BLOCK - len(plain) % BLOCK
        padded = plain + bytes([count]) * count
        if pad is not None:
            padded = padded[:-1] + bytes([pad])
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypt: str) -> tuple[str, str]:
        """Strict: valid base64, whole blocks, padding 1..32 all equal; returns (msg, ReceiveId)."""
        data = base64.b64decode(encrypt, validate=True)
        if not data or len(data) % BLOCK:
            raise ValueError("ciphertext is not whole 32-byte blocks")
        decryptor = self._cipher().decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        count = padded[-1]
        if not 1 <= count <= BLOCK or padded[-count:] != bytes([count]) * count:
            raise ValueError("bad padding")
        plain = padded[16:-count]
        (length,) = struct.unpack(">I", plain[:4])
        return plain[4:4 + length].decode("utf-8"), plain[4 + length:].decode("utf-8")

    # requests -----------------------------------------------------------------------------

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> dict[str, str]:
        return {"msg_signature": signature(self.token, timestamp, nonce, encrypt), "timestamp": timestamp,
                "nonce": nonce}

    def verification(self, echo: str, timestamp: str, nonce: str = "263014780") -> dict[str, str]:
        echostr = self.encrypt(echo)
        return {**self.sign(timestamp, nonce, echostr), "echostr": echostr}

    def envelope(self, encrypt: str, agent_id: int = 1) -> bytes:
        return (f"<xml><ToUserName>{cdata(self.corp_id)}</ToUserName><AgentID>{cdata(str(agent_id))}</AgentID>"
                f"<Encrypt>{cdata(encrypt)}</Encrypt></xml>").encode()

    def callback(self, plaintext: str, timestamp: str, nonce: str = "1372623149", **encrypt_options: object) -> Request:
        encrypt = self.encrypt(plaintext, **encrypt_options)  # type: ignore[arg-type]
        return Request(self.sign(timestamp, nonce, encrypt), self.envelope(encrypt))

    def open_reply(self, body: bytes) -> str:
        """Check a passive reply as WeCom does: signature over the new Encrypt, decrypt, ReceiveId."""
        root = ElementTree.fromstring(body)
        encrypt = root.findtext("Encrypt") or ""
        expected = signature(self.token, root.findtext("TimeStamp") or "", root.findtext("Nonce") or "", encrypt)
        if expected != root.findtext("MsgSignature"):
            raise ValueError("passive reply signature does not verify")
        message, receive_id = self.decrypt(encrypt)
        if receive_id != self.corp_id:
            raise ValueError(f"passive reply ReceiveId {receive_id!r} is not the corp id")
        return message

    def reply_content(self, body: bytes) -> str:
        return ElementTree.fromstring(self.open_reply(body)).findtext("Content") or ""

"""The simulator's data: settings, recorded requests, WeCom-style errors, sliding windows, faults.

Errcodes whose value is not in wecom.md are marked "unconfirmed" where they are raised; the
simulator picks one so that tests can tell the cases apart, not because WeCom is known to use it.
"""

from __future__ import annotations

import random
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

QUERY_URL = "https://open.work.weixin.qq.com/devtool/query?e="

ERRMSGS: dict[int, str] = {
    -1: "system busy",
    40001: "invalid credential",
    40007: "invalid media_id",
    40008: "invalid message type",
    40009: "invalid image size",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40056: "invalid agentid",
    40058: "invalid Request Parameter",
    41001: "access_token missing",
    42001: "access_token expired",
    44004: "empty content",
    45008: "article size out of limit",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
    47001: "Warning: wrong json format. data format error",
    42014: "invalid task_id",
    43012: "require agent with callback url",
    48002: "api forbidden",
    60011: "no privilege to access/modify contact/party/agent",
    60020: "not allow to access from your ip",
    60111: "userid not found",
    301002: "invalid agentid, agent not match the secret",
    81013: "user & party & tag all invalid",
    86001: "invalid chatid",
    86003: "chatid not exist",
    86004: "invalid chat name",
    86006: "invalid chat member count",
    86215: "chatid already exists",
    86216: "invalid chat member",
    93000: "invalid webhook url",
    93004: "webhook robot is disabled",
    93008: "robot not in the group",
}


class ApiError(Exception):
    """A WeCom error answer (HTTP 200, errcode != 0); handlers raise it, the app turns it into JSON."""

    def __init__(self, errcode: int, message: str | None = None, extra: dict[str, Any] | None = None) -> None:
        self.errcode = errcode
        self.message = message or ERRMSGS.get(errcode, "error")
        self.extra = extra or {}
        super().__init__(f"{errcode} {self.message}")


def errmsg(errcode: int, message: str, ip: str) -> str:
    """WeCom's errmsg shape: '<message>, hint: [id], from ip: IP, more info at …?e=N'."""
    hint = f"{int(time.time())}{secrets.randbelow(10**8):08d}"
    return f"{message}, hint: [{hint}], from ip: {ip}, more info at {QUERY_URL}{errcode}"


def error_answer(error: ApiError, ip: str) -> dict[str, Any]:
    return {"errcode": error.errcode, "errmsg": errmsg(error.errcode, error.message, ip), **error.extra}


@dataclass
class SimulatorSettings:
    corp_id: str
    secret: str
    agent_id: int
    callback_token: str
    encoding_aes_key: str
    callback_url: str | None
    robots: dict[str, str]
    users: dict[str, str]
    token_expires_in: int = 7200
    robot_limit_per_minute: int = 20
    minute_seconds: float = 60.0
    latency: float = 0.0
    callback_timeout: float = 5.0       # WeCom waits 5 s for our service's answer
    callback_retries: int = 3           # then re-sends the same payload up to this many times
    member_limit_per_minute: int = 30
    member_limit_per_hour: int = 1000
    appchat_member_limit_per_minute: int = 200
    aibot_bots: dict[str, str] = field(default_factory=dict)  # 智能机器人 bot_id → secret (long connection)
    aibot_port: int = 0                 # the long connection's port (0: any free one)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any
    status: int
    answer: dict[str, Any] | None
    at: float


@dataclass(frozen=True)
class CallbackResult:
    status: int | None                  # None: no HTTP answer at all (connection error, timeout)
    reply: str | None                   # Content of a passive text reply, decrypted
    attempts: int
    reply_xml: str | None = None        # the whole decrypted passive reply
    error: str | None = None            # why the passive reply was rejected, in words


@dataclass
class Fault:
    errcode: int | None
    http_status: int | None
    delay: float
    malformed: bool
    times: int
    after: int
    seen: int = 0
    fired: int = 0

    def claim(self) -> bool:
        """Count one call; true when this call is one the fault applies to."""
        self.seen += 1
        if self.seen <= self.after or self.exhausted():
            return False
        self.fired += 1
        return True

    def exhausted(self) -> bool:
        return self.times != -1 and self.fired >= self.times


SENDING_PATHS = ("/cgi-bin/webhook/send", "/cgi-bin/message/send", "/cgi-bin/appchat/send")


@dataclass
class FaultRates:
    """Faults drawn at random on each call of ``paths``, each kind with its probability.

    A timeout is an answer later than the caller waits: the message is delivered all the same
    (the ambiguous send no system can close); a slow answer comes within the caller's wait.
    """

    http_5xx: float = 0.0
    timeout: float = 0.0
    busy: float = 0.0             # errcode -1
    too_frequent: float = 0.0     # errcode 45009
    slow: float = 0.0
    timeout_seconds: float = 12.0
    slow_seconds: float = 1.0
    paths: tuple[str, ...] = SENDING_PATHS
    drawn: dict[str, int] = field(default_factory=dict)

    def draw(self, path: str, rng: random.Random) -> Fault | None:
        if path not in self.paths:
            return None
        roll = rng.random()
        for kind, rate in (("http_5xx", self.http_5xx), ("timeout", self.timeout), ("busy", self.busy),
                           ("too_frequent", self.too_frequent), ("slow", self.slow)):
            if roll < rate:
                self.drawn[f"{path} {kind}"] = self.drawn.get(f"{path} {kind}", 0) + 1
                return self._fault(kind)
            roll -= rate
        return None

    def _fault(self, kind: str) -> Fault:
        errcode = {"busy": -1, "too_frequent": 45009}.get(kind)
        delay = {"timeout": self.timeout_seconds, "slow": self.slow_seconds}.get(kind, 0.0)
        return Fault(errcode, 502 if kind == "http_5xx" else None, delay, False, 1, 0)


@dataclass
class SlidingWindows:
    """Per-key event times; a key may have `limit` events in any `window` seconds."""

    events: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))

    def allows(self, key: str, now: float, limit: int, window: float) -> bool:
        times = self.events[key]
        while times and times[0] <= now - window:
            times.popleft()
        return len(times) < limit

    def add(self, key: str, now: float) -> None:
        self.events[key].append(now)


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def truncate_utf8(text: str, limit: int) -> str:
    """Cut to at most `limit` UTF-8 bytes without splitting a character."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def check_length(msgtype: str, text: str, limit: int) -> None:
    if utf8_len(text) > limit:
        raise ApiError(40058, f"{msgtype}.content exceed max length {limit}. invalid Request Parameter")


def mask_key(key: str) -> str:
    return f"{key[:4]}****"

"""Fakes and builders shared by the tests: settings, deliveries, study schedules, a fake monotonic
clock, the console's runtime and accounts, WeCom's side of the callback scheme, and a project whose
智能机器人 points at the simulator's long connection."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from flask import Flask
from flask.testing import FlaskClient

from bot.clock import BEIJING, FakeClock
from bot.config import Settings
from bot.delivery.dispatcher import Dispatcher
from bot.inputs import load_studies
from bot.occurrence import PlannedMessage
from bot.rules.studies import StudySchedule
from bot.runtime import Runtime
from bot.simulator import SimulatorSettings
from bot.store import outbox
from bot.store.accounts import create_admin
from bot.store.db import Store
from bot.wecom.aibot import Timing

ROOT = Path(__file__).resolve().parents[1]
SIM_CORP, SECRET, AGENT = "wwtestcorp", "test-secret", 1000002
SIM_AES_KEY = "a" * 43
USERS = {"zhangwei": "张伟", "lina": "李娜", "liming": "李明", "admin1": "管理员"}
ROBOT_SEND = "/cgi-bin/webhook/send"
APP_SEND = "/cgi-bin/message/send"


def robot_key(n: int) -> str:
    return f"6a1f0c2e-0b1d-4c55-9a11-{n:012d}"


class FakeMonotonic:
    """Seconds on the FakeClock: the limiter's and the simulator's clock in fake-time tests."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def __call__(self) -> float:
        return self.clock.now().timestamp()

    def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds)


def sim_settings(robots: int = 30, **overrides: Any) -> SimulatorSettings:
    fields: dict[str, Any] = dict(
        corp_id=SIM_CORP, secret=SECRET, agent_id=AGENT, callback_token="tok", encoding_aes_key=SIM_AES_KEY,
        callback_url=None, robots={robot_key(i): f"第{i}群" for i in range(robots)}, users=dict(USERS))
    return SimulatorSettings(**{**fields, **overrides})


def make_settings(api_base: str | None, robots: int = 30, admin: str | list[str] | None = "admin", agent_id: int = AGENT,
                  **delivery: Any) -> Settings:
    targets: dict[str, Any] = {f"g{i}": {"type": "robot", "title": f"第{i}群", "key": robot_key(i)}
                               for i in range(robots)}
    targets["office"] = {"type": "app", "title": "党办", "users": ["zhangwei", "lina"]}
    targets["admin"] = {"type": "app", "title": "管理员", "users": ["admin1"]}
    targets["console"] = {"type": "console", "title": "控制台"}
    data: dict[str, Any] = {
        "targets": targets, "admins": {"targets": admin} if isinstance(admin, list) else {"target": admin},
        "delivery": {"max_attempts": 6, "request_timeout": timedelta(seconds=2), **delivery},
        "paths": {"messages": str(ROOT / "messages")},
    }
    if api_base:
        data["wecom"] = {"api_base": api_base, "corp_id": SIM_CORP, "agent_id": agent_id, "secret": SECRET,
                         "callback": {"token": "tok", "encoding_aes_key": SIM_AES_KEY}}
    return Settings.model_validate(data)


def delivery(target: str, settings: Settings, due_at: datetime, name: str = "spring", **changes: Any) -> PlannedMessage:
    assert target in settings.all_targets()
    fields: dict[str, Any] = dict(
        key=f"holiday|{name}|{target}", rule="holiday", kind="holiday_notice", occurrence=name, item=None,
        target=target, msgtype="text", title="节前廉洁提醒", text=f"{name}：廉洁过节，严守纪律", card=None,
        due_at=due_at, reason="测试")
    return PlannedMessage(**{**fields, **changes})


def enqueue(store: Store, rows: list[PlannedMessage], now: datetime) -> None:
    outbox.enqueue(store, rows, now)

AIBOT_ID, AIBOT_SECRET = "aib-test-0001", "aibot-secret-for-tests"
# The AI bot's loop with short intervals in place of WeCom's 30 s: the same loop, only faster.
FAST_AIBOT = Timing(heartbeat=0.25, missed=3, answer_within=3.0, backoff_first=0.05, backoff_max=0.25,
                    lock_retry=0.1)


def configure_aibot(project: Path, ws_url: str, database_url: str) -> None:
    """Point a copied example config at the simulator's long connection and at this database."""
    text = project.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^  url: sqlite:///data/wecom-reminder.db.*$", f"  url: {database_url}", text)
    text += f"\naibot:\n  bot_id: {AIBOT_ID}\n  secret: {AIBOT_SECRET}\n  ws_url: {ws_url}\n"
    project.write_text(text, encoding="utf-8")


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def run_until_settled(dispatcher: Dispatcher, clock: FakeClock, passes: int = 50) -> None:
    """Dispatch, then move the fake clock to the next due row, until nothing is left to do."""
    for _ in range(passes):
        dispatcher.dispatch_due()
        due = dispatcher.next_due_at()
        if due is None:
            return
        if due > clock.now():
            clock.set(due)
    raise AssertionError("the outbox did not settle")


# ---- the demo organisation and study schedules ------------------------------------------

BRANCHES = ("b1", "b2", "b3")
TOKEN = "wecomReminderToken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CORP = "ww5d1e0c0ffee0demo"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


def demo_settings(**overrides: Any) -> Settings:
    """The demo organisation: b1 第一党支部 (zhangwei), b2 第二党支部 (lina), b3 机关党支部 (wangfang)."""
    data: dict[str, Any] = {
        "organisation": {"name": "示范局机关党委", "branches": [
            {"id": "b1", "name": "第一党支部", "secretary": {"userid": "zhangwei", "name": "张伟"}, "group": "b1_group"},
            {"id": "b2", "name": "第二党支部", "secretary": {"userid": "lina", "name": "李娜"}, "group": "b2_group"},
            {"id": "b3", "name": "机关党支部", "secretary": {"userid": "wangfang", "name": "王芳"}, "group": "b3_group"},
        ]},
        "targets": {f"{b}_group": {"type": "robot", "key": f"key-{b}"} for b in BRANCHES}
        | {"office": {"type": "app", "users": ["liming"]}},
        "admins": {"target": "office"},
        "wecom": {"api_base": "http://127.0.0.1:9", "corp_id": CORP, "agent_id": 1000002, "secret": "s",
                  "callback": {"token": TOKEN, "encoding_aes_key": AES_KEY}},
    }
    data.update(overrides)
    return Settings.model_validate(data)


def write_schedule(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "studies.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def item_yaml(item_id: str, publish: str, deadline: str, *, number: int = 5, audience: str = "all",
              nudges: str = '["截止前2个工作日 09:00", "截止当天 09:00"]') -> str:
    return (f"  - id: {item_id}\n    title: 《警示教育通报》2026年第{number}期\n    number: {number}\n"
            f"    series: 警示教育通报\n    audience: {audience}\n    publish_at: \"{publish}\"\n"
            f"    deadline: \"{deadline}\"\n    nudges: {nudges}\n")


def schedule_of(tmp_path: Path, *items: str) -> StudySchedule:
    return load_studies(write_schedule(tmp_path, "items:\n" + "".join(items)), BRANCHES)


# ---- the console: a runtime over a copy of the project, two accounts ---------------------------

ADMIN = ("admin", "correct-horse-battery")
READER = ("reader", "reader-password-1")
_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def copy_project_to(dest: Path, edit: Callable[[str], str] | None = None) -> Path:
    shutil.copytree(ROOT / "schedules", dest / "schedules")
    shutil.copytree(ROOT / "messages", dest / "messages")
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    text = text.replace("sqlite:///data/wecom-reminder.db", f"sqlite:///{dest / 'console.db'}")
    config = dest / "config.yaml"
    config.write_text(edit(text) if edit else text, encoding="utf-8")
    return config


def make_runtime(dest: Path, clock: FakeClock, edit: Callable[[str], str] | None = None) -> Runtime:
    runtime = Runtime(copy_project_to(dest, edit), clock)
    create_admin(runtime.store, *ADMIN, "admin")
    create_admin(runtime.store, *READER, "readonly")
    return runtime


def make_app(runtime: Runtime) -> Flask:
    from bot.commands.server import create_app
    return create_app(runtime, testing=True)


class ReplanCounter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def csrf_token(client: FlaskClient, path: str = "/admin/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = _TOKEN.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client: FlaskClient, name: str, password: str) -> Any:
    token = csrf_token(client)
    return client.post("/admin/login", data={"name": name, "password": password, "csrf_token": token})


def post(client: FlaskClient, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """A form POST with the session's CSRF token."""
    token = csrf_token(client, "/admin/")
    return client.post(path, data={**(data or {}), "csrf_token": token}, **kwargs)


def new_delivery(name: str, due_at: datetime, **changes: Any) -> PlannedMessage:
    """A planned holiday notice to one group; ``changes`` override any field."""
    target = changes.pop("target", "group-a")
    fields: dict[str, Any] = {
        "key": f"holiday|{name}|{target}", "rule": "holiday", "kind": "holiday_notice",
        "occurrence": name, "item": None, "target": target,
        "msgtype": "markdown",
        "title": "节前廉洁提醒", "text": f"**{name}** 廉洁过节", "card": None, "due_at": due_at,
        "reason": "春节前一个工作日", "provisional": False, "meta": {"holiday": "春节"},
    }
    return PlannedMessage(**{**fields, **changes})


# ---- WeCom's side of the callback scheme ------------------------------------------------------
#
# WeCom's side of the callback scheme, written for the tests from wecom.md §8 alone.
#
# Independent of wechatpy and of bot/: AES-256-CBC from ``cryptography``, SHA-1 from hashlib. It is
# checked against the official vectors (§10) and against wechatpy in tests/inbox/test_callback.py, so the
# product code (which uses wechatpy) is tested against a second implementation, not against itself.
# It can also build what WeCom never sends: bad padding, a wrong ReceiveId, mangled base64.

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


# ---- the console in Chromium (browser tests; fixtures `server` and `page` in conftest.py) --------

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"
SCRIPT = "<script>alert(1)</script>"


def browser_available() -> None:
    import pytest
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"浏览器测试需要 {CHROMIUM}（apt-get install chromium），CI 中不能跳过")
        pytest.skip(f"{CHROMIUM} 不存在，跳过浏览器测试（apt-get install chromium 后可运行）")


def hostile(text: str) -> str:
    """The example config with a script in a branch's name: every page must show it as text."""
    return text.replace("name: 第一党支部", f"name: 第一党支部{SCRIPT}")


def expect(locator: Any) -> Any:
    """Playwright's waiting assertions (no eval, so they work under the console's CSP)."""
    from playwright.sync_api import expect as playwright_expect
    return playwright_expect(locator)


def log_in_console(tab: Any, base: str = "", name: str = "", password: str = "") -> None:
    """Log a Chromium tab in through the console's own form (the fixture admin unless named)."""
    tab.goto(f"{base}/admin/login")
    tab.fill("input[name=name]", name or ADMIN[0])
    tab.fill("input[name=password]", password or ADMIN[1])
    tab.click("button[type=submit]")
    tab.wait_for_url("**/admin/")


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import requests
from fakes import (
    AES_KEY,
    CORP,
    ROOT,
    TOKEN,
    VECTOR_CORP,
    VECTOR_ECHO,
    VECTOR_ENCRYPT,
    VECTOR_GET,
    VECTOR_KEY,
    VECTOR_PLAINTEXT,
    VECTOR_POST,
    VECTOR_TOKEN,
    Request,
    WeComSide,
    at,
    card_click_xml,
    demo_settings,
    item_yaml,
    schedule_of,
    signature,
    text_xml,
)
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from wechatpy.enterprise.crypto import WeChatCrypto
from werkzeug.serving import make_server

import bot.simulator
from bot.clock import BEIJING, Clock, FakeClock, SystemClock
from bot.config import Settings
from bot.inbox.callback import MAX_BODY, PATH, CallbackBlueprint, answer_late, answerer, callback_blueprint
from bot.inbox.responder import Outcome
from bot.inbox.writer import Inbound, InboxWriter, NotRecorded, Recorded
from bot.rules.studies import StudySchedule
from bot.store import Store, open_store
from bot.store.models import Confirmation, InboundMessage
from bot.store.queries import list_deliveries
from bot.templates.render import TemplateLibrary

NOW = at("2026-05-20 16:12")


class Service:
    """A small real CallbackContext: the store, a clock, fixed settings and an executor for after-work."""

    def __init__(self, store: Store, clock: Clock, settings: Settings, schedule: StudySchedule) -> None:
        self.store, self.clock = store, clock
        self._settings, self._schedule = settings, schedule
        self._templates = TemplateLibrary(ROOT / "messages")
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="after-response")
        self._futures: list[Future[None]] = []
        self._lock = threading.Lock()
        self.replans = 0
        self.blueprints: list[CallbackBlueprint] = []

    def settings(self) -> Settings:
        return self._settings

    def templates(self) -> TemplateLibrary:
        return self._templates

    def studies(self) -> StudySchedule:
        return self._schedule

    def after_response(self, fn: Callable[[], None]) -> None:
        self._futures.append(self._executor.submit(fn))

    def request_replan(self) -> None:
        with self._lock:
            self.replans += 1

    def drain(self) -> None:
        for future in self._futures:
            future.result(timeout=10)

    def close(self) -> None:
        for blueprint in self.blueprints:
            blueprint.close()
        self._executor.shutdown(wait=True)


def make_app(service: Service, **options: Any) -> Flask:
    app = Flask(__name__)
    blueprint = callback_blueprint(service, **options)
    service.blueprints.append(blueprint)
    app.register_blueprint(blueprint)
    return app


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'callback.db'}") as opened:
        yield opened


@pytest.fixture
def schedule(tmp_path: Path) -> StudySchedule:
    return schedule_of(tmp_path, item_yaml("jsjy-2026-05", "2026-05-11 09:00", "2026-05-22 18:00"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def service(store: Store, clock: FakeClock, schedule: StudySchedule) -> Iterator[Service]:
    running = Service(store, clock, demo_settings(), schedule)
    yield running
    running.close()


@pytest.fixture
def client(service: Service) -> FlaskClient:
    return make_app(service).test_client()


@pytest.fixture
def wecom() -> WeComSide:
    return WeComSide(TOKEN, AES_KEY, CORP)


def stamp(clock: Clock, offset: float = 0) -> str:
    return str(int(clock.now().timestamp() + offset))


def post(client: FlaskClient, request: Request) -> Any:
    return client.post(PATH, query_string=request.query, data=request.body, content_type="text/xml")


def rows(store: Store, model: type) -> int:
    with store.session(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def says(wecom: WeComSide, clock: Clock, userid: str, text: str, msg_id: int = 7001, **options: Any) -> Request:
    created = int(clock.now().timestamp())
    return wecom.callback(text_xml(CORP, userid, text, msg_id, created), stamp(clock), **options)


# ---- the independent WeCom side against the official vectors and wechatpy -----------------------


def test_wecom_side_reproduces_the_official_vectors() -> None:
    side = WeComSide(VECTOR_TOKEN, VECTOR_KEY, VECTOR_CORP)
    get = VECTOR_GET
    assert signature(VECTOR_TOKEN, get["timestamp"], get["nonce"], get["echostr"]) == get["msg_signature"]
    assert side.decrypt(get["echostr"]) == (VECTOR_ECHO, VECTOR_CORP)
    assert signature(VECTOR_TOKEN, VECTOR_POST["timestamp"], VECTOR_POST["nonce"], VECTOR_ENCRYPT) == \
        VECTOR_POST["msg_signature"]
    assert side.decrypt(VECTOR_ENCRYPT) == (VECTOR_PLAINTEXT, VECTOR_CORP)


def test_wecom_side_and_wechatpy_agree(wecom: WeComSide) -> None:
    crypto = WeChatCrypto(TOKEN, AES_KEY, CORP)
    request = wecom.callback("<xml><Content>学习</Content></xml>", "1779264720", nonce="42")
    assert crypto.decrypt_message(request.body.decode(), request.query["msg_signature"], "1779264720", "42") == \
        "<xml><Content>学习</Content></xml>"
    envelope = crypto.encrypt_message("<xml><Content>已记录</Content></xml>", "43", "1779264721")
    assert wecom.open_reply(envelope.encode()) == "<xml><Content>已记录</Content></xml>"
    fixed = wecom.encrypt("abc", random16=b"0" * 16)
    assert fixed == wecom.encrypt("abc", random16=b"0" * 16) and len(base64.b64decode(fixed)) % 32 == 0


# ---- URL verification -----------------------------------------------------------------------


def test_url_verification_with_the_official_vector(store: Store, schedule: StudySchedule) -> None:
    settings = demo_settings(wecom={"api_base": "http://127.0.0.1:9", "corp_id": VECTOR_CORP, "agent_id": 218, "secret": "s",
                                    "callback": {"token": VECTOR_TOKEN, "encoding_aes_key": VECTOR_KEY}})
    service = Service(store, FakeClock(NOW), settings, schedule)
    started = time.perf_counter()
    answer = make_app(service).test_client().get(PATH, query_string=VECTOR_GET)
    assert time.perf_counter() - started < 1.0
    assert answer.status_code == 200 and answer.data == VECTOR_ECHO.encode()
    service.close()


def test_url_verification_answers_the_plaintext_only(client: FlaskClient, wecom: WeComSide, clock: Clock) -> None:
    answer = client.get(PATH, query_string=wecom.verification("5927210337201905", stamp(clock)))
    assert answer.status_code == 200 and answer.data == b"5927210337201905"


def test_url_verification_with_a_forged_signature_is_refused(client: FlaskClient, wecom: WeComSide,
                                                             clock: Clock) -> None:
    query = wecom.verification("5927210337201905", stamp(clock))
    query["msg_signature"] = signature("wrongToken", query["timestamp"], query["nonce"], query["echostr"])
    answer = client.get(PATH, query_string=query)
    assert answer.status_code == 403 and "5927210337201905" not in answer.text


# ---- messages -------------------------------------------------------------------------------


def test_official_post_vector_is_decrypted_and_answered(store: Store, schedule: StudySchedule) -> None:
    settings = demo_settings(wecom={"api_base": "http://127.0.0.1:9", "corp_id": VECTOR_CORP, "agent_id": 218, "secret": "s",
                                    "callback": {"token": VECTOR_TOKEN, "encoding_aes_key": VECTOR_KEY}})
    service = Service(store, FakeClock(datetime.fromtimestamp(1409659813, BEIJING)), settings, schedule)
    side = WeComSide(VECTOR_TOKEN, VECTOR_KEY, VECTOR_CORP)
    answer = post(make_app(service).test_client(), Request(VECTOR_POST, side.envelope(VECTOR_ENCRYPT, 218)))
    assert answer.status_code == 200
    assert "不在支部书记名单中" in side.reply_content(answer.data)  # 'mycreate' is no secretary
    with store.session(readonly=True) as session:
        row = session.scalars(select(InboundMessage)).one()
        assert (row.dedupe_key, row.from_user, row.content) == ("msg:4561255354251345929", "mycreate", "hello")
    service.close()


def test_a_secretary_confirms_by_reply(client: FlaskClient, service: Service, wecom: WeComSide, store: Store,
                                       clock: Clock) -> None:
    answer = post(client, says(wecom, clock, "zhangwei", "已学习"))
    assert answer.status_code == 200
    content = wecom.reply_content(answer.data)
    assert content.startswith("已记录：第一党支部于5月20日（周三）16:12确认完成以下学习")
    reply = ElementTree.fromstring(wecom.open_reply(answer.data))
    assert (reply.findtext("ToUserName"), reply.findtext("FromUserName"), reply.findtext("MsgType")) == (
        "zhangwei", CORP, "text")
    assert rows(store, InboundMessage) == 1 and rows(store, Confirmation) == 1
    service.drain()
    assert service.replans == 1


def test_a_request_built_by_wechatpy_is_accepted(client: FlaskClient, store: Store, clock: Clock) -> None:
    crypto = WeChatCrypto(TOKEN, AES_KEY, CORP)
    timestamp = stamp(clock)
    envelope = crypto.encrypt_message(text_xml(CORP, "lina", "第5期已完成", 8001, int(timestamp)), "99", timestamp)
    sig = ElementTree.fromstring(envelope).findtext("MsgSignature")
    answer = client.post(PATH, query_string={"msg_signature": sig, "timestamp": timestamp, "nonce": "99"},
                         data=envelope.encode(), content_type="text/xml")
    assert answer.status_code == 200
    reply_xml = ElementTree.fromstring(answer.data)
    plaintext = crypto.decrypt_message(answer.data.decode(), reply_xml.findtext("MsgSignature"),
                                       reply_xml.findtext("TimeStamp"), reply_xml.findtext("Nonce"))
    assert "第二党支部" in plaintext
    with store.session(readonly=True) as session:
        assert session.scalars(select(Confirmation.branch)).all() == ["b2"]


def test_retries_and_replays_change_nothing_and_get_the_same_reply(client: FlaskClient, service: Service,
                                                                   wecom: WeComSide, store: Store,
                                                                   clock: FakeClock) -> None:
    captured = says(wecom, clock, "zhangwei", "已学习")
    first = wecom.reply_content(post(client, captured).data)
    clock.advance(15)
    retry = post(client, captured)
    clock.advance(timedelta(minutes=5))
    replay = post(client, captured)
    assert retry.status_code == replay.status_code == 200
    assert wecom.reply_content(retry.data) == wecom.reply_content(replay.data) == first
    assert rows(store, InboundMessage) == 1 and rows(store, Confirmation) == 1
    service.drain()
    assert service.replans == 1


@pytest.mark.parametrize(("offset", "accepted"), [(-599, True), (-601, False), (599, True), (601, False)],
                         ids=["599s-old", "601s-old", "599s-ahead", "601s-ahead"])
def test_timestamp_skew_on_both_sides_of_ten_minutes(client: FlaskClient, wecom: WeComSide, store: Store,
                                                     clock: Clock, offset: int, accepted: bool) -> None:
    xml = text_xml(CORP, "zhangwei", "已学习", 9001, int(clock.now().timestamp()))
    answer = post(client, wecom.callback(xml, stamp(clock, offset)))
    assert (answer.status_code == 200) is accepted
    assert rows(store, InboundMessage) == (1 if accepted else 0)


def test_a_card_click_confirms_and_updates_the_card_after_answering(client: FlaskClient, service: Service,
                                                                   wecom: WeComSide, store: Store,
                                                                   clock: Clock) -> None:
    xml = card_click_xml(CORP, "wangfang", "task-jsjy-2026-05-b3", "confirm:jsjy-2026-05", "RC-1",
                         int(clock.now().timestamp()))
    answer = post(client, wecom.callback(xml, stamp(clock)))
    assert answer.status_code == 200 and "机关党支部" in wecom.reply_content(answer.data)
    assert post(client, wecom.callback(xml, stamp(clock))).status_code == 200  # WeCom's retry
    with store.session(readonly=True) as session:
        inbox = session.scalars(select(InboundMessage)).one()
        assert (inbox.task_id, inbox.event_key, inbox.response_code) == (
            "task-jsjy-2026-05-b3", "confirm:jsjy-2026-05", "RC-1")
        assert session.scalars(select(Confirmation.source)).all() == ["button"]
    service.drain()  # the card updates run here, after the answer
    assert service.replans == 1


def test_other_messages_are_recorded_without_a_reply(client: FlaskClient, wecom: WeComSide, store: Store,
                                                     clock: Clock) -> None:
    xml = (f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[lina]]></FromUserName>"
           f"<CreateTime>{stamp(clock)}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
           f"<Event><![CDATA[enter_agent]]></Event><EventKey><![CDATA[]]></EventKey><AgentID>1</AgentID></xml>")
    answer = post(client, wecom.callback(xml, stamp(clock)))
    assert answer.status_code == 200 and answer.data == b""
    assert rows(store, InboundMessage) == 1


def test_one_info_line_per_reply_without_secrets(client: FlaskClient, wecom: WeComSide, clock: Clock,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bot.inbox.callback"):
        post(client, says(wecom, clock, "zhangwei", "进度"))
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.inbox.callback"]
    assert len(lines) == 1 and "zhangwei" in lines[0]
    assert all(TOKEN not in r.getMessage() and AES_KEY not in r.getMessage() for r in caplog.records)


# ---- refusals: 4xx, a short Chinese body, nothing recorded ---------------------------------------


def _resigned(wecom: WeComSide, clock: Clock, encrypt: str) -> Request:
    return Request(wecom.sign(stamp(clock), "1372623149", encrypt), wecom.envelope(encrypt))


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
                  '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
                  '<xml><Encrypt>&lol3;</Encrypt></xml>')


def _forged(wecom: WeComSide, clock: Clock) -> Request:
    request = says(wecom, clock, "zhangwei", "已学习")
    sig = request.query["msg_signature"]
    return Request({**request.query, "msg_signature": ("0" if sig[0] != "0" else "1") + sig[1:]}, request.body)


def _unsigned(wecom: WeComSide, clock: Clock) -> Request:
    request = says(wecom, clock, "zhangwei", "已学习")
    return Request({k: v for k, v in request.query.items() if k != "msg_signature"}, request.body)


def _wrong_token(wecom: WeComSide, clock: Clock) -> Request:
    return says(WeComSide("anotherToken", AES_KEY, CORP), clock, "zhangwei", "已学习")


def _wrong_key(wecom: WeComSide, clock: Clock) -> Request:
    return says(WeComSide(TOKEN, "Z" * 43, CORP), clock, "zhangwei", "已学习")


def _old(wecom: WeComSide, clock: Clock) -> Request:
    xml = text_xml(CORP, "zhangwei", "已学习", 7001, int(clock.now().timestamp()) - 3600)
    return wecom.callback(xml, stamp(clock, -3600))


def _mangled_base64(wecom: WeComSide, clock: Clock) -> Request:
    encrypt = wecom.encrypt(text_xml(CORP, "zhangwei", "已学习", 7001, 0))
    return _resigned(wecom, clock, encrypt[:10] + "!*" + encrypt[12:])


def _truncated(wecom: WeComSide, clock: Clock) -> Request:
    encrypt = wecom.encrypt(text_xml(CORP, "zhangwei", "已学习", 7001, 0))
    return _resigned(wecom, clock, base64.b64encode(base64.b64decode(encrypt)[:-5]).decode())


def _padding(value: int) -> Callable[[WeComSide, Clock], Request]:
    def build(wecom: WeComSide, clock: Clock) -> Request:
        return says(wecom, clock, "zhangwei", "已学习", pad=value)
    return build


def _wrong_corp(wecom: WeComSide, clock: Clock) -> Request:
    return says(wecom, clock, "zhangwei", "已学习", receive_id="wwOtherCorp0001")


def _oversized(wecom: WeComSide, clock: Clock) -> Request:
    return says(wecom, clock, "zhangwei", "已学习" + "学" * (MAX_BODY // 2))


def _bad_outer_xml(wecom: WeComSide, clock: Clock) -> Request:
    request = says(wecom, clock, "zhangwei", "已学习")
    return Request(request.query, request.body[:-10])


def _bad_inner_xml(wecom: WeComSide, clock: Clock) -> Request:
    return wecom.callback("<xml><FromUserName>zhangwei</FromUser", stamp(clock))


def _inner_without_sender(wecom: WeComSide, clock: Clock) -> Request:
    return wecom.callback(f"<xml><MsgType>text</MsgType><CreateTime>{stamp(clock)}</CreateTime></xml>", stamp(clock))


def _outer_bomb(wecom: WeComSide, clock: Clock) -> Request:
    return Request(wecom.sign(stamp(clock), "1", "x"), BILLION_LAUGHS.encode())


def _inner_bomb(wecom: WeComSide, clock: Clock) -> Request:
    return wecom.callback(BILLION_LAUGHS.replace("Encrypt", "Content"), stamp(clock))


def _no_encrypt(wecom: WeComSide, clock: Clock) -> Request:
    return Request(wecom.sign(stamp(clock), "1", ""), b"<xml><ToUserName>x</ToUserName></xml>")


# wechatpy does not check the padding bytes: a wrong one shifts the ReceiveId, which then fails (403).
REFUSALS: dict[str, tuple[Callable[[WeComSide, Clock], Request], int | tuple[int, ...]]] = {
    "unsigned": (_unsigned, 400), "forged-signature": (_forged, 403), "wrong-token": (_wrong_token, 403),
    "old-timestamp": (_old, 403), "wrong-aes-key": (_wrong_key, 400), "mangled-base64": (_mangled_base64, 400),
    "truncated-ciphertext": (_truncated, 400), "padding-0": (_padding(0), (400, 403)), "padding-200": (_padding(200), (400, 403)),
    "wrong-corp-id": (_wrong_corp, 403), "oversized": (_oversized, 413), "malformed-envelope": (_bad_outer_xml, 400),
    "malformed-plaintext": (_bad_inner_xml, 400), "plaintext-without-sender": (_inner_without_sender, 400),
    "xml-bomb-envelope": (_outer_bomb, 400), "xml-bomb-plaintext": (_inner_bomb, 400),
    "no-encrypt": (_no_encrypt, 400),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_callbacks_are_refused_and_nothing_is_recorded(client: FlaskClient, wecom: WeComSide, store: Store,
                                                           clock: Clock, case: str) -> None:
    build, status = REFUSALS[case]
    answer = post(client, build(wecom, clock))
    assert answer.status_code in (status if isinstance(status, tuple) else (status,))
    assert 0 < len(answer.data) < 200 and any("\u4e00" <= ch <= "\u9fff" for ch in answer.text)
    assert rows(store, InboundMessage) == 0 and rows(store, Confirmation) == 0


# ---- end to end over loopback HTTP, against the simulator ------------------------------------------


@contextmanager
def serving(tmp_path: Path, store: Store, app_options: dict[str, Any] | None = None,
            **sim_options: Any) -> Iterator[tuple[Any, Service, CallbackBlueprint]]:
    """The service's callback over loopback HTTP and a simulator posting to it."""
    now = SystemClock().now()
    fmt = "%Y-%m-%d %H:%M"
    schedule = schedule_of(tmp_path, item_yaml("live-item", (now - timedelta(days=1)).strftime(fmt),
                                               (now + timedelta(days=5)).strftime(fmt)))
    service = Service(store, SystemClock(), demo_settings(), schedule)
    server = make_server("127.0.0.1", 0, make_app(service, **(app_options or {})), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings = bot.simulator.SimulatorSettings(
        corp_id=CORP, secret="s", agent_id=1000002, callback_token=TOKEN, encoding_aes_key=AES_KEY,
        callback_url=f"http://127.0.0.1:{server.port}{PATH}", robots={},
        users={"zhangwei": "张伟", "lina": "李娜", "wangfang": "王芳"}, **sim_options)
    sim = bot.simulator.Simulator(settings)
    sim.start()
    try:
        yield sim, service, service.blueprints[-1]
    finally:
        sim.stop()
        server.shutdown()
        thread.join(timeout=5)
        service.close()


@pytest.fixture
def live(tmp_path: Path, store: Store) -> Iterator[tuple[Any, Service]]:
    with serving(tmp_path, store) as (sim, service, _):
        yield sim, service


class _RecoverWhenRefused(logging.Handler):
    """The database comes back right after the first refusal (the callback logs it, then waits)."""

    def __init__(self, blueprint: CallbackBlueprint, replacement: InboxWriter) -> None:
        super().__init__(logging.ERROR)
        self.blueprint, self.replacement = blueprint, replacement

    def emit(self, record: logging.LogRecord) -> None:
        if "暂不应答" in record.getMessage():
            self.blueprint.writer = self.replacement


def test_a_callback_that_cannot_be_recorded_is_not_answered_so_wecom_sends_it_again(
        tmp_path: Path, store: Store) -> None:
    with serving(tmp_path, store, {"retry_hold": 1.2}, callback_timeout=0.6) as (sim, service, blueprint):
        blueprint.writer.close()  # the database cannot take it: every record is refused
        recover = _RecoverWhenRefused(blueprint, InboxWriter(store, answerer(service)))
        logging.getLogger("bot.inbox.callback").addHandler(recover)
        try:
            result = sim.reply_as("zhangwei", "已学习")
        finally:
            logging.getLogger("bot.inbox.callback").removeHandler(recover)
        # WeCom's re-send was recorded and answered (a slow machine may need one more re-send)
        assert result.status == 200 and result.attempts >= 2
        assert result.reply is not None and result.reply.startswith("已记录：第一党支部于")
        assert rows(store, Confirmation) == 1 and rows(store, InboundMessage) == 1
        assert blueprint.refused_recently() == 1  # /healthz says so for an hour


def test_end_to_end_reply_through_the_simulator(live: tuple[Any, Service], store: Store) -> None:
    sim, service = live
    assert sim.verify_url()
    result = sim.reply_as("zhangwei", "已学习")
    assert result.status == 200 and result.attempts == 1 and result.error is None
    assert result.reply.startswith("已记录：第一党支部于")
    with store.session(readonly=True) as session:
        assert [(c.item, c.branch, c.source) for c in session.scalars(select(Confirmation))] == [
            ("live-item", "b1", "reply")]
    service.drain()
    assert service.replans == 1


# ---- group commit: bursts, duplicates inside one batch, failures, shutdown ---------------------


@pytest.fixture
def http_url(service: Service) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, make_app(service), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}{PATH}"
    server.shutdown()
    thread.join(timeout=5)


def _post_over_http(url: str, request: Request) -> tuple[int, bytes]:
    answer = requests.post(url, params=request.query, data=request.body, timeout=10)
    return answer.status_code, answer.content


def test_a_burst_is_recorded_once_each_with_the_right_replies(http_url: str, service: Service, wecom: WeComSide,
                                                              store: Store, clock: FakeClock) -> None:
    # Every secretary confirms twice (two MsgIds) and asks for progress; WeCom delivers each of
    # those messages three times (its retries), all at once, with a non-secretary in between.
    users = ("zhangwei", "lina", "wangfang")
    sent = {7100 + n * 10 + k: (user, text) for n, user in enumerate(users)
            for k, text in enumerate(("已学习", "已完成", "进度"))}
    sent[7999] = ("liming", "已学习")
    burst = [(msg_id, says(wecom, clock, user, text, msg_id)) for msg_id, (user, text) in sent.items()] * 3
    barrier = threading.Barrier(len(burst))

    def deliver(item: tuple[int, Request]) -> tuple[int, int, str]:
        barrier.wait(timeout=10)
        status, body = _post_over_http(http_url, item[1])
        return item[0], status, wecom.reply_content(body)

    with ThreadPoolExecutor(max_workers=len(burst)) as pool:
        answers = list(pool.map(deliver, burst))
    assert {status for _, status, _ in answers} == {200}
    replies: dict[int, set[str]] = {}
    for msg_id, _, content in answers:
        replies.setdefault(msg_id, set()).add(content)
    assert all(len(contents) == 1 for contents in replies.values())  # retries get the recorded reply
    reply = {msg_id: contents.pop() for msg_id, contents in replies.items()}
    for n in range(len(users)):
        first, second, progress = (reply[7100 + n * 10 + k] for k in range(3))
        assert sorted(r.startswith("已记录：") for r in (first, second)) == [False, True]
        assert sum("无需重复确认" in r for r in (first, second)) == 1
        assert "本年度" in progress
    assert "不在支部书记名单中" in reply[7999]
    assert rows(store, InboundMessage) == len(sent) and rows(store, Confirmation) == len(users)
    with store.session(readonly=True) as session:
        stored = {key: text for key, text in session.execute(select(InboundMessage.dedupe_key, InboundMessage.reply))}
    assert stored == {f"msg:{msg_id}": text for msg_id, text in reply.items()}
    service.drain()
    assert service.replans == len(users)


def _inbound(user: str, msg_id: int) -> Inbound:
    fields = {"FromUserName": user, "MsgType": "text", "CreateTime": "1", "Content": "x", "MsgId": str(msg_id)}
    return Inbound(fields, "<xml/>")


class _Gate:
    """Holds the writer in its first batch until the next jobs are queued, so those form one batch."""

    def __init__(self, fail_for: str = "") -> None:
        self.opened = threading.Event()
        self.batches: list[list[str]] = []
        self.fail_for = fail_for

    def prepare(self, session: Any, batch: Any) -> Callable[[Inbound, datetime], Outcome | None]:
        self.batches.append([i.user for i in batch])
        self.opened.wait(timeout=10)
        return self.answer

    def answer(self, inbound: Inbound, now: datetime) -> Outcome | None:
        if inbound.user == self.fail_for:
            raise RuntimeError("a bug in answering")
        return Outcome(f"reply to {inbound.get('MsgId')}")


def test_duplicates_in_one_batch_share_the_first_answer(store: Store) -> None:
    gate = _Gate()
    writer = InboxWriter(store, gate.prepare)
    first = writer.submit(_inbound("a", 1), NOW)
    while not gate.batches:
        time.sleep(0.001)
    batch = [writer.submit(_inbound("b", n), NOW) for n in (2, 2, 3, 2)]
    gate.opened.set()
    assert first.result(10) == Recorded("reply to 1", True, Outcome("reply to 1"))
    results = [f.result(10) for f in batch]
    assert len(gate.batches) == 2 and gate.batches[1] == ["b", "b"]  # one answer per MsgId
    assert [(r.reply, r.fresh) for r in results] == [("reply to 2", True), ("reply to 2", False),
                                                     ("reply to 3", True), ("reply to 2", False)]
    assert rows(store, InboundMessage) == 3
    writer.close()


def test_a_burst_beyond_the_queue_waits_for_room_rather_than_being_refused(store: Store) -> None:
    gate = _Gate()
    writer = InboxWriter(store, gate.prepare, max_queue=1)
    first = writer.submit(_inbound("a", 1), NOW)
    while not gate.batches:
        time.sleep(0.001)
    queued = writer.submit(_inbound("b", 2), NOW)  # the queue is full now
    with pytest.raises(NotRecorded):
        writer.submit(_inbound("c", 3), NOW)  # not allowed to wait: refused at once
    answers: list[Recorded] = []
    waiting = threading.Thread(target=lambda: answers.append(writer.record(_inbound("d", 4), NOW, timeout=10)))
    waiting.start()
    time.sleep(0.05)  # let it reach the full queue
    gate.opened.set()
    waiting.join(timeout=10)
    assert first.result(10).fresh and queued.result(10).fresh
    assert [a.reply for a in answers] == ["reply to 4"]
    with store.session(readonly=True) as session:
        assert sorted(session.scalars(select(InboundMessage.dedupe_key))) == ["msg:1", "msg:2", "msg:4"]
    writer.close()


def test_recorded_too_late_for_a_passive_reply_it_is_answered_by_app_message(
        service: Service, wecom: WeComSide, store: Store, clock: Clock) -> None:
    client = make_app(service, answer_within=0.2).test_client()
    blocker = store.engine.raw_connection()  # another writer holds SQLite's lock past the answer time
    blocker.execute("BEGIN IMMEDIATE")
    try:
        answer = post(client, says(wecom, clock, "zhangwei", "已学习"))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert answer.status_code == 200 and answer.data == b""  # WeCom does not retry this, and nothing is lost:
    deadline = time.monotonic() + 10
    while not list_deliveries(store, kind="reply") and time.monotonic() < deadline:
        time.sleep(0.02)
    service.drain()
    [reply] = list_deliveries(store, kind="reply")
    assert reply.target == "b1_secretary" and "已记录" in reply.text
    assert rows(store, Confirmation) == 1 and rows(store, InboundMessage) == 1
    assert service.replans >= 1


def test_a_late_callback_that_could_not_be_recorded_is_reported_to_the_administrators(
        service: Service, store: Store) -> None:
    failed: Future[Recorded] = Future()
    failed.set_exception(NotRecorded("the batch's transaction failed"))
    answer_late(service, _inbound("zhangwei", 77), failed)
    [alert] = list_deliveries(store, kind="alert")
    assert "1 条企业微信回调未能记录" in alert.text and "zhangwei" in alert.text


def test_a_message_that_fails_does_not_lose_the_rest_of_its_batch(store: Store) -> None:
    gate = _Gate(fail_for="bad")
    writer = InboxWriter(store, gate.prepare)
    first = writer.submit(_inbound("a", 1), NOW)
    while not gate.batches:
        time.sleep(0.001)
    batch = [writer.submit(_inbound(user, n), NOW) for n, user in ((2, "b"), (3, "bad"), (4, "c"))]
    gate.opened.set()
    assert first.result(10).fresh
    assert batch[0].result(10).reply == "reply to 2" and batch[2].result(10).reply == "reply to 4"
    with pytest.raises(NotRecorded):
        batch[1].result(10)
    with store.session(readonly=True) as session:
        assert sorted(session.scalars(select(InboundMessage.dedupe_key))) == ["msg:1", "msg:2", "msg:4"]
    writer.close()


def test_closing_answers_what_is_queued_and_refuses_the_rest(store: Store, service: Service, wecom: WeComSide,
                                                             clock: Clock) -> None:
    gate = _Gate()
    writer = InboxWriter(store, gate.prepare)
    queued = [writer.submit(_inbound("a", n), NOW) for n in range(5)]
    closing = threading.Thread(target=writer.close)
    closing.start()
    gate.opened.set()
    closing.join(timeout=10)
    assert [f.result(0).reply for f in queued] == [f"reply to {n}" for n in range(5)]
    with pytest.raises(NotRecorded):
        writer.submit(_inbound("a", 9), NOW)
    app = make_app(service, retry_hold=0.0)
    service.blueprints[-1].close()
    answer = post(app.test_client(), says(wecom, clock, "zhangwei", "已学习"))
    assert answer.status_code == 503 and "稍后" in answer.text
    assert rows(store, InboundMessage) == 5 and rows(store, Confirmation) == 0


@pytest.mark.parametrize("timestamp", ["9" * 5000, "99999999999999", "²", "１２３", "-1", "1e9", "", "1409659813\n"],
                         ids=["5000-digits", "year-3e6", "superscript", "fullwidth", "negative", "float", "empty",
                              "newline"])
def test_an_absurd_timestamp_is_a_400_not_a_500(client: FlaskClient, wecom: WeComSide, store: Store,
                                                clock: Clock, timestamp: str) -> None:
    xml = text_xml(CORP, "zhangwei", "已学习", 9002, int(clock.now().timestamp()))
    answer = post(client, wecom.callback(xml, timestamp))      # correctly signed over the absurd value
    assert answer.status_code == 400 and "签名参数" in answer.get_data(as_text=True)
    echo = client.get(PATH, query_string=wecom.verification("hello", timestamp))
    assert echo.status_code == 400
    assert rows(store, InboundMessage) == 0

"""Callbacks answered per second and p99 latency over loopback HTTP, next to the bare crypto cost.

Server: a real `wecom-reminder run` (bench.running: the shipped project with its own SQLite store,
WAL and synchronous=FULL, the scheduler running, a simulator as WeCom), in its own process, with
open study items so that replies confirm and re-plan. Clients: a thread pool, each thread with one
keep-alive connection (http.client: requests spends ~1.9 ms of CPU per call, which on a 2-core
machine would make the clients the bottleneck). The same signed, encrypted messages are also
decrypted and parsed by wechatpy alone, in the same run, so the figures can be read against that
floor. Every message must end up as one inbox row.

    python -m bench.callback [--messages 3000] [--clients 16]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree

from sqlalchemy import func, select
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import WeChatCrypto

from bench.running import prepare, running
from bot.clock import SystemClock
from bot.config import WeComSettings
from bot.inbox.callback import PATH
from bot.store import open_store
from bot.store.models import InboundMessage

USERS = ("zhangwei", "lina", "wangfang", "liming")
STEADY_CONNECTIONS = 64   # WeCom opens more connections when answers slow down
WARM_UP_SECONDS = 3       # of the steady rate, before the measured minute: connections opened
TEXTS = ("进度", "已学习", "帮助", "1", "第5期已学习", "完成了吗？")


@dataclass(frozen=True)
class Message:
    query: dict[str, str]
    body: bytes


def write_studies(schedules: Path) -> None:
    """Three items published ten days ago or less, due in the coming days: replies have work to do."""
    fmt, now = "%Y-%m-%d %H:%M", SystemClock().now()
    items = "".join(
        f"  - id: bench-{n}\n    title: 《警示教育通报》第{n}期\n    number: {n}\n    audience: all\n"
        f"    publish_at: \"{(now - timedelta(days=10 - n)).strftime(fmt)}\"\n"
        f"    deadline: \"{(now + timedelta(days=n)).strftime(fmt)}\"\n" for n in range(4, 7))
    (schedules / "studies.yaml").write_text("items:\n" + items, encoding="utf-8")


def _crypto(wecom: WeComSettings) -> WeChatCrypto:
    return WeChatCrypto(wecom.callback.token.get_secret_value(), wecom.callback.encoding_aes_key.get_secret_value(),
                        wecom.corp_id)


def messages(wecom: WeComSettings, count: int, first_id: int = 10**15) -> list[Message]:
    """Signed, encrypted text callbacks with distinct MsgIds, built the way WeCom builds them."""
    crypto, now, out = _crypto(wecom), int(time.time()), []
    for n in range(count):
        xml = (f"<xml><ToUserName><![CDATA[{wecom.corp_id}]]></ToUserName><FromUserName><![CDATA[{USERS[n % 4]}]]>"
               f"</FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
               f"<Content><![CDATA[{TEXTS[n % len(TEXTS)]}]]></Content><MsgId>{first_id + n}</MsgId>"
               f"<AgentID>{wecom.agent_id}</AgentID></xml>")
        envelope = crypto.encrypt_message(xml, str(n), str(now))
        sig = ElementTree.fromstring(envelope).findtext("MsgSignature") or ""
        out.append(Message({"msg_signature": sig, "timestamp": str(now), "nonce": str(n)}, envelope.encode()))
    return out


def bare_cost(wecom: WeComSettings, batch: list[Message]) -> float:
    """Messages per second that wechatpy alone decrypts and parses."""
    crypto = _crypto(wecom)
    started = time.perf_counter()
    for m in batch:
        plain = crypto.decrypt_message(m.body.decode(), m.query["msg_signature"], m.query["timestamp"],
                                       m.query["nonce"])
        parse_message(plain)
    return len(batch) / (time.perf_counter() - started)


class Client:
    """Threads with one keep-alive connection each, posting callbacks to `run`."""

    def __init__(self, listen: str) -> None:
        self.host, _, port = listen.rpartition(":")
        self.port = int(port)
        self._local = threading.local()

    def post(self, message: Message) -> int:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = HTTPConnection(self.host, self.port, timeout=10)
        connection.request("POST", f"{PATH}?{urlencode(message.query)}", body=message.body,
                           headers={"Content-Type": "text/xml"})
        answer = connection.getresponse()
        answer.read()
        return answer.status


@dataclass
class Run:
    elapsed: float
    latencies: list[float]
    failed: int

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, int(len(ordered) * share) - 1)] * 1000


def saturate(client: Client, batch: list[Message], clients: int) -> Run:
    """Closed loop: each client sends its next callback as soon as the last is answered."""
    def one(message: Message) -> tuple[float, int]:
        started = time.perf_counter()
        status = client.post(message)
        return time.perf_counter() - started, status

    return _timed(batch, clients, one)


def steady(client: Client, batch: list[Message], rate: float, clients: int, warm_up: int = 0) -> Run:
    """Open loop: callback i is due at i / rate seconds; its latency counts from then, so time
    spent waiting for a free connection counts too (no coordinated omission). The first
    ``warm_up`` callbacks open the connections (as WeCom keeps them open) and are not counted."""
    start = time.perf_counter() + 0.1
    index = iter(range(len(batch)))
    lock = threading.Lock()
    finished: list[float] = []

    def one(message: Message) -> tuple[float, int]:
        with lock:
            due = start + next(index) / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        status = client.post(message)
        done = time.perf_counter()
        with lock:
            finished.append(done)
        return done - due, status

    run = _timed(batch, clients, one)
    counted_from = start + warm_up / rate
    elapsed = max(finished) - counted_from
    return Run(elapsed, run.latencies[warm_up:], run.failed)  # failures of the warm-up count too


def _timed(batch: list[Message], clients: int, one: Callable[[Message], tuple[float, int]]) -> Run:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one, batch))
    return Run(time.perf_counter() - started, [r[0] for r in results], sum(1 for r in results if r[1] != 200))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16, help="connections of the saturating run")
    parser.add_argument("--rate", type=float, default=500, help="callbacks per second of the steady run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        prepare(folder)
        write_studies(folder / "schedules")
        with running(folder) as run:
            wecom = run.settings.wecom
            assert wecom is not None
            client = Client(run.settings.server.listen)
            first, second = messages(wecom, args.messages), messages(wecom, args.messages, first_id=2 * 10**15)
            bare = bare_cost(wecom, first)
            saturate(client, messages(wecom, 50, first_id=9 * 10**15), args.clients)  # warm-up
            full = saturate(client, first, args.clients)
            warm_up = int(args.rate * WARM_UP_SECONDS)
            paced = steady(client, messages(wecom, warm_up, first_id=8 * 10**15) + second, args.rate,
                           clients=STEADY_CONNECTIONS, warm_up=warm_up)
        with open_store(f"sqlite:///{run.database}") as store, store.session(readonly=True) as session:
            recorded = session.scalar(select(func.count()).select_from(InboundMessage)) or 0
    report(args, full, paced, recorded, bare)


def report(args: argparse.Namespace, full: Run, paced: Run, recorded: int, bare: float) -> None:
    print(f"callbacks to `wecom-reminder run` over loopback HTTP, {args.messages} per run")
    print(f"  as fast as answered ({args.clients} connections): {full.rate:,.0f} per second   (goal >= 500);"
          f" latency p50 {full.percentile(0.5):.1f} ms, p99 {full.percentile(0.99):.1f} ms")
    print(f"  steady {args.rate:,.0f} per second (up to {STEADY_CONNECTIONS} connections): achieved {paced.rate:,.0f};"
          f" latency p50 {paced.percentile(0.5):.1f} ms, p99 {paced.percentile(0.99):.1f} ms   (goal p99 < 100 ms)")
    warm_up = int(args.rate * WARM_UP_SECONDS)
    print(f"  non-200 answers: {full.failed + paced.failed}; inbox rows (incl. {50 + warm_up} warm-up): {recorded},"
          f" expected {2 * args.messages + 50 + warm_up}")
    print(f"bare wechatpy decrypt + parse of the same messages: {bare:,.0f} per second")


if __name__ == "__main__":
    main()

"""Callbacks answered per second and p99 latency over loopback HTTP, next to the bare crypto cost.

Server: waitress serving the callback blueprint, a SQLite store (WAL, synchronous=FULL) in a temp
dir, in its own process. Clients: a thread pool, each thread with one keep-alive connection
(http.client: requests spends ~1.9 ms of CPU per call, which on a 2-core machine capped even a
constant Flask answer at ~390/s). The same signed, encrypted messages are also decrypted and
parsed by wechatpy alone, in the same run, so the figures can be read against that floor. Every
message must end up as one inbox row.

    python -m bench.callback [--messages 3000] [--clients 16] [--threads 16]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

import waitress
from flask import Flask
from sqlalchemy import func, select
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.callback import PATH, callback_blueprint
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.server import HTTP_THREADS
from bot.store import Store, open_store
from bot.store.models import InboundMessage
from bot.studies import StudySchedule, load_studies
from bot.templates import TemplateLibrary

ROOT = Path(__file__).resolve().parent.parent
TOKEN, AES_KEY, CORP = "benchToken2026", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wwbenchcorp000001"
USERS = ("zhangwei", "lina", "wangfang", "liming")
TEXTS = ("进度", "已学习", "帮助", "1", "第5期已学习", "完成了吗？")


class Context:
    """The callback's view of the service, as the real runtime provides it."""

    def __init__(self, store: Store, settings: Settings, schedule: StudySchedule) -> None:
        self.store: Store = store
        self.clock: Clock = SystemClock()
        self._settings, self._schedule = settings, schedule
        self._templates = TemplateLibrary(ROOT / "messages")
        self._executor = ThreadPoolExecutor(max_workers=2)
        self.replans = 0

    def settings(self) -> Settings:
        return self._settings

    def templates(self) -> TemplateLibrary:
        return self._templates

    def studies(self) -> StudySchedule:
        return self._schedule

    def after_response(self, fn: Callable[[], None]) -> None:
        self._executor.submit(fn)

    def request_replan(self) -> None:
        self.replans += 1


@dataclass(frozen=True)
class Message:
    query: dict[str, str]
    body: bytes


def bench_settings() -> Settings:
    branches = [{"id": b, "name": n, "secretary": {"userid": u, "name": u}}
                for b, n, u in (("b1", "第一党支部", "zhangwei"), ("b2", "第二党支部", "lina"), ("b3", "机关党支部", "wangfang"))]
    return Settings.model_validate({
        "organisation": {"name": "示范局机关党委", "branches": branches},
        "wecom": {"corp_id": CORP, "agent_id": 1, "secret": "s", "callback": {"token": TOKEN, "encoding_aes_key": AES_KEY}}})


def schedule_file(folder: Path) -> Path:
    fmt, now = "%Y-%m-%d %H:%M", SystemClock().now()
    items = "".join(
        f"  - id: bench-{n}\n    title: 《警示教育通报》第{n}期\n    number: {n}\n    audience: all\n"
        f"    publish_at: \"{(now - timedelta(days=10 - n)).strftime(fmt)}\"\n"
        f"    deadline: \"{(now + timedelta(days=n)).strftime(fmt)}\"\n" for n in range(4, 7))
    path = folder / "studies.yaml"
    path.write_text("items:\n" + items, encoding="utf-8")
    return path


def messages(count: int, first_id: int = 10**15) -> list[Message]:
    """Signed, encrypted text callbacks with distinct MsgIds, built the way WeCom builds them."""
    crypto, now, out = WeChatCrypto(TOKEN, AES_KEY, CORP), int(time.time()), []
    for n in range(count):
        xml = (f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[{USERS[n % 4]}]]>"
               f"</FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
               f"<Content><![CDATA[{TEXTS[n % len(TEXTS)]}]]></Content><MsgId>{first_id + n}</MsgId>"
               f"<AgentID>1</AgentID></xml>")
        envelope = crypto.encrypt_message(xml, str(n), str(now))
        sig = ElementTree.fromstring(envelope).findtext("MsgSignature") or ""
        out.append(Message({"msg_signature": sig, "timestamp": str(now), "nonce": str(n)}, envelope.encode()))
    return out


def bare_cost(batch: list[Message]) -> float:
    """Messages per second that wechatpy alone decrypts and parses."""
    crypto = WeChatCrypto(TOKEN, AES_KEY, CORP)
    started = time.perf_counter()
    for m in batch:
        plain = crypto.decrypt_message(m.body.decode(), m.query["msg_signature"], m.query["timestamp"],
                                       m.query["nonce"])
        parse_message(plain)
    return len(batch) / (time.perf_counter() - started)


def fire(url: str, batch: list[Message], clients: int) -> tuple[float, list[float], int]:
    local = threading.local()
    parts = urlsplit(url)

    def one(message: Message) -> tuple[float, int]:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        started = time.perf_counter()
        connection.request("POST", f"{parts.path}?{urlencode(message.query)}", body=message.body,
                           headers={"Content-Type": "text/xml"})
        answer = connection.getresponse()
        answer.read()
        return time.perf_counter() - started, answer.status

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one, batch))
    elapsed = time.perf_counter() - started
    return elapsed, [r[0] for r in results], sum(1 for r in results if r[1] != 200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--threads", type=int, default=HTTP_THREADS, help="waitress threads, as `run` uses")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        open_store(f"sqlite:///{folder / 'bench.db'}").close()  # migrate before the server starts
        port: multiprocessing.Queue[int] = multiprocessing.Queue()
        # The server runs in its own process, so the clients do not share its GIL.
        server = multiprocessing.Process(target=_serve_forever, args=(folder, args.threads, port), daemon=True)
        server.start()
        url = f"http://127.0.0.1:{port.get(timeout=30)}{PATH}"
        batch = messages(args.messages)
        bare = bare_cost(batch)
        fire(url, messages(50, first_id=9 * 10**15), args.clients)  # warm-up, its own MsgIds
        elapsed, latencies, failed = fire(url, batch, args.clients)
        server.terminate()
        server.join()
        with open_store(f"sqlite:///{folder / 'bench.db'}") as store, store.session(readonly=True) as session:
            recorded = session.scalar(select(func.count()).select_from(InboundMessage)) or 0
    report(args, elapsed, latencies, failed, recorded, bare)


def _serve_forever(folder: Path, threads: int, port: multiprocessing.Queue[int]) -> None:
    store = open_store(f"sqlite:///{folder / 'bench.db'}")
    app = Flask(__name__)
    app.register_blueprint(callback_blueprint(Context(store, bench_settings(), load_studies(schedule_file(folder)))))
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=threads)
    port.put(server.effective_port)
    server.run()


def report(args: argparse.Namespace, elapsed: float, latencies: list[float], failed: int, recorded: int,
           bare: float) -> None:
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    rate = len(latencies) / elapsed
    print(f"callbacks: {len(latencies)} over loopback HTTP, {args.clients} clients, waitress {args.threads} threads")
    print(f"  answered per second: {rate:,.0f}   (goal >= 500)")
    print(f"  latency p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99:.1f} ms   (goal p99 < 100 ms)")
    print(f"  non-200 answers: {failed}; inbox rows (incl. 50 warm-up): {recorded}, expected {len(latencies) + 50}")
    print(f"bare wechatpy decrypt + parse of the same messages: {bare:,.0f} per second")


if __name__ == "__main__":
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" is the point of a load test
    main()

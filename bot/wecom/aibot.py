"""The 智能机器人's long connection (wecom.md §11): one WebSocket we dial out, frames both ways.

We subscribe with ``{bot_id, secret}``, ping every ``heartbeat`` and read callbacks
(``aibot_msg_callback``, ``aibot_event_callback``); the frames themselves are ``aibot_frames``.

Why our own small client on ``websockets`` (its threaded ``sync`` client) rather than the official
``wecom-aibot-python-sdk``: measured against a fake server, the SDK stays dead without an event
after a clean close (1000) or its own heartbeat timeout, and forces TLS; it is asyncio, while the
service is threads. Wrapping it in a watchdog would mean guessing when it is dead; here the
watchdog *is* the loop: any close, error or two unanswered pings end the connection, and the loop
subscribes again with backoff. After ``disconnected_event`` (another process subscribed the same
bot) it stops for good and tells the administrators: fighting back would kick each other forever.

Only one replica holds the connection: the leader lock ``LOCK_NAME`` (an advisory lock on
PostgreSQL, a file lock beside SQLite), held while connected and while reconnecting; a standby
tries it every ``lock_retry`` seconds and takes over when the holder's process dies. A kicked
holder keeps the lock until it is stopped, so that no standby of ours takes the bot back either.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from websockets.exceptions import ConcurrencyError, ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from bot.store.db import Store, try_leader_lock
from bot.wecom.aibot_frames import Frame, event_type, frame, is_ping_answer, req_id_of, subscribe

log = logging.getLogger(__name__)

LOCK_NAME = "wecom-reminder:aibot"


@dataclass(frozen=True)
class Timing:
    """Every interval of the loop, injected so that tests run it in fractions of a second."""

    heartbeat: float = 30.0       # a ping this often
    missed: int = 2               # this many unanswered pings in a row: the link is dead
    answer_within: float = 10.0   # subscribe and push acknowledgements
    backoff_first: float = 1.0    # the first reconnect waits this long; it doubles up to backoff_max
    backoff_max: float = 30.0     # after a clean close we are back within 1 s; never longer than this
    lock_retry: float = 5.0       # a standby replica tries the leader lock this often

    def backoff(self, failures: int) -> float:
        return min(self.backoff_max, self.backoff_first * 2 ** max(0, failures - 1))


class Refused(Exception):
    """The server answered a frame with an errcode (e.g. 93019 bad bot_id, 853000 bad secret)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class LinkDead(Exception):
    """Heartbeats went unanswered, or the link closed while we waited for an answer."""


class Kicked(Exception):
    """``disconnected_event``: another connection subscribed this bot."""


class Link:
    """One subscribed connection. ``send`` and ``request`` are safe from any thread; only the loop reads."""

    def __init__(self, ws: ClientConnection, answer_within: float) -> None:
        self.ws = ws
        self.answer_within = answer_within
        self._waiting: dict[str, Future[Frame]] = {}
        self._lock = threading.Lock()

    def send(self, message: Frame) -> None:
        self.ws.send(json.dumps(message, ensure_ascii=False))

    def request(self, message: Frame) -> Frame:
        """Send and wait for its acknowledgement; raises Refused on an errcode, LinkDead without one."""
        future: Future[Frame] = Future()
        with self._lock:
            self._waiting[req_id_of(message)] = future
        try:
            self.send(message)
            answer = future.result(self.answer_within)
        except (TimeoutError, ConnectionClosed) as exc:
            raise LinkDead(f"no answer to {message['cmd']}") from exc
        finally:
            with self._lock:
                self._waiting.pop(req_id_of(message), None)
        if answer.get("errcode"):
            raise Refused(int(answer["errcode"]), str(answer.get("errmsg", "")))
        return answer

    def settle(self, answer: Frame) -> bool:
        """An acknowledgement: hand it to whoever waits for it; False when nobody does."""
        with self._lock:
            future = self._waiting.pop(req_id_of(answer), None)
        if future is not None:
            future.set_result(answer)
        return future is not None

    def recv(self, timeout: float) -> Frame | None:
        """The next frame, or None after ``timeout`` seconds; raises ConnectionClosed."""
        try:
            raw = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        try:
            message = json.loads(raw)
        except ValueError:
            log.warning("智能机器人长连接收到无法解析的数据帧，已忽略")
            return {}
        return message if isinstance(message, dict) else {}


class Handler(Protocol):
    """What the service does with the connection (bot.inbox.group_bot)."""

    def on_subscribed(self, link: Link) -> None: ...
    def on_heartbeat(self, link: Link) -> None: ...
    def on_callback(self, link: Link, message: Frame) -> None: ...
    def on_kicked(self) -> None: ...
    def on_refused(self, error: Refused) -> None: ...


def _connect(url: str, timeout: float) -> ClientConnection:
    # Our own pings carry the protocol's heartbeat; the library's would only duplicate them.
    return connect(url, open_timeout=timeout, close_timeout=2, ping_interval=None, max_size=2**20)


class AibotClient:
    """Holds the bot's one connection while this process holds the leader lock; ``start``/``stop``.

    ``state``: standby (another replica holds it) · connecting · subscribed · kicked · stopped.
    """

    def __init__(self, store: Store, bot_id: str, secret: str, url: str, handler: Handler,
                 timing: Timing | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.url, self.handler = store, url, handler
        self._credentials = {"bot_id": bot_id, "secret": secret}
        self.timing = timing or Timing()
        self.clock = clock
        self.state = "stopped"
        self.subscriptions = 0  # successful subscribes by this process, for monitoring and tests
        self.lock_attempts = 0
        self._stop = threading.Event()
        self._link: Link | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="aibot", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        link = self._link
        if link is not None:
            link.ws.close()  # wakes the loop's recv
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """Until stopped or kicked: take the leader lock when free, and hold the connection."""
        while not self._stop.is_set() and self.state != "kicked":
            try:
                with try_leader_lock(self.store, LOCK_NAME) as leader:
                    self.lock_attempts += 1
                    if leader:
                        self._hold()
                    if self.state == "kicked":
                        # Keep the lock until stopped: no replica of ours fights back before a restart.
                        self._stop.wait()
            except Exception:  # noqa: BLE001 - the database was unreachable: try again, never die
                log.exception("智能机器人：无法获取领导锁，稍后重试")
            if self.state != "kicked" and not self._stop.is_set():
                self.state = "standby"
                self._stop.wait(self.timing.lock_retry)
        if self.state != "kicked":
            self.state = "stopped"

    # ---- the watchdog -------------------------------------------------------------------------

    def _hold(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self.state = "connecting"
            try:
                self._session()
                failures = 0  # a connection that subscribed was healthy: come back at once
            except Kicked:
                log.error("智能机器人长连接被另一连接取代（disconnected_event），本服务不再重连")
                self.state = "kicked"
                self.handler.on_kicked()
                return
            except Refused as error:
                log.error("智能机器人订阅被拒绝：%s", error)
                self.handler.on_refused(error)
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, InvalidURI, LinkDead,
                    ConcurrencyError) as exc:
                if self._stop.is_set():
                    return
                log.warning("智能机器人长连接中断：%s", _describe(exc))
            failures += 1
            delay = self.timing.backoff(failures)
            if not self._stop.is_set():
                log.info("%.1f 秒后重新连接智能机器人", delay)
                self._stop.wait(delay)

    def _session(self) -> None:
        """One connection: subscribe, then serve until it ends (by raising, or on stop)."""
        with _connect(self.url, self.timing.answer_within) as ws:
            link = Link(ws, self.timing.answer_within)
            self._link = link
            try:
                if self._stop.is_set():
                    return
                self._subscribe(link)
                self.subscriptions += 1
                self.state = "subscribed"
                log.info("智能机器人长连接已订阅")
                self.handler.on_subscribed(link)
                self._serve(link)
            finally:
                self._link = None

    def _subscribe(self, link: Link) -> None:
        """Send aibot_subscribe and read until its answer (nothing else arrives before it)."""
        message = subscribe(**self._credentials)
        link.send(message)
        deadline = self.clock() + self.timing.answer_within
        while (left := deadline - self.clock()) > 0:
            answer = link.recv(left)
            if answer is not None and req_id_of(answer) == req_id_of(message):
                if answer.get("errcode"):
                    raise Refused(int(answer["errcode"]), str(answer.get("errmsg", "")))
                return
        raise LinkDead("no answer to aibot_subscribe")

    def _serve(self, link: Link) -> None:
        heartbeat = self.timing.heartbeat
        next_ping, unanswered = self.clock() + heartbeat, 0
        while not self._stop.is_set():
            message = link.recv(max(0.0, next_ping - self.clock()))
            if message is None or self.clock() >= next_ping:
                if unanswered >= self.timing.missed:
                    raise LinkDead(f"{unanswered} heartbeats unanswered")
                unanswered, next_ping = unanswered + 1, self.clock() + heartbeat
                link.send(frame("ping"))
                self.handler.on_heartbeat(link)
            if not message:
                continue
            if is_ping_answer(message):
                unanswered = 0
            elif not message.get("cmd"):  # the answer to a push, or an error
                if not link.settle(message) and message.get("errcode"):
                    log.warning("智能机器人接口返回错误：%s %s", message.get("errcode"), message.get("errmsg"))
            else:
                self._dispatch(link, message)

    def _dispatch(self, link: Link, message: Frame) -> None:
        if message.get("cmd") == "aibot_event_callback" and event_type(message) == "disconnected_event":
            raise Kicked()
        if message.get("cmd") in ("aibot_msg_callback", "aibot_event_callback"):
            self.handler.on_callback(link, message)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        received = exc.rcvd
        return f"连接关闭（{received.code} {received.reason}）" if received else "连接断开"
    return f"{exc.__class__.__name__}: {exc}"

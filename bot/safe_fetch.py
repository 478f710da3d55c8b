"""Fetch a URL that someone wrote into a file (an .ics address): bounded, and kept off the inside.

What bounds what:

- addresses: every address the host resolves to must be public (not private, loopback, link-local,
  shared, reserved or multicast), and the socket's peer is checked again right after it connects,
  so a DNS answer that changes in between (rebinding) is caught before a request is sent. A host the
  administrator allowed by name (``calendars.allowed_hosts``, for calendars and the holiday watch)
  skips both checks.
- redirects: followed by hand, at most ``MAX_REDIRECTS``, only to the same host; each hop checked again.
- time: ONE deadline for the whole fetch. A watchdog shuts the sockets down when it passes, so a
  server trickling a byte every few seconds (in its headers or its body) cannot hold the caller.
- size: counted while reading; reading stops as soon as the body passes ``max_bytes``.
- errors: ``FetchError`` carries our Chinese reason; the remote body never reaches messages or logs.

Proxies from the environment are not used: the address checks must see the real peer.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from bot.errors import BotError

MAX_REDIRECTS = 5
CHUNK = 16_384
ALLOW_FIX = ("如确需访问内网中的日历服务器或节假日通知镜像，"
             "由管理员在配置文件 calendars.allowed_hosts 中写明该主机名")
_current = threading.local()  # the guard of the fetch running on this thread (requests is synchronous)


class FetchError(BotError):
    """A fetch was refused or failed; ``str()`` is our Chinese reason, never the remote's words."""


@dataclass(frozen=True)
class Fetched:
    status: int                # 200, or 304 when the validators sent still match
    body: bytes
    etag: str | None
    last_modified: str | None


def fetch_url(url: str, *, allowed_hosts: Iterable[str] = (), timeout_s: float = 20.0,
              max_bytes: int = 5_000_000, etag: str | None = None,
              last_modified: str | None = None) -> Fetched:
    """GET ``url`` within one deadline and a size limit, never reaching inside unless allowed."""
    guard = _Guard(allowed_hosts, timeout_s)
    watchdog = threading.Timer(timeout_s, guard.expire)
    watchdog.daemon = True
    watchdog.start()
    _current.guard = guard
    try:
        with _session() as session:
            return _follow(session, url, guard, _validators(etag, last_modified), max_bytes)
    except (requests.RequestException, OSError) as exc:
        raise guard.timeout_error() if guard.expired else FetchError(f"无法连接（{type(exc).__name__}）") from None
    finally:
        watchdog.cancel()
        _current.guard = None


def _follow(session: requests.Session, url: str, guard: _Guard, headers: dict[str, str],
            max_bytes: int) -> Fetched:
    for _ in range(MAX_REDIRECTS + 1):
        guard.check_url(url)
        response = session.get(url, headers=headers, stream=True, allow_redirects=False,
                               timeout=guard.remaining())
        with response:
            if not response.is_redirect:
                return _read(response, guard, max_bytes)
            url = _next_hop(url, response.headers["Location"])
    raise FetchError(f"重定向超过 {MAX_REDIRECTS} 次")


def _next_hop(current: str, location: str) -> str:
    target = urljoin(current, location)
    host = urlsplit(target).hostname or ""
    if host != (urlsplit(current).hostname or ""):
        raise FetchError(f"服务器要求跳转到另一台主机 {host or '（空）'}，为安全起见未跟随。"
                         "处理办法：改写为跳转后的地址（日历在 meetings.yaml，节假日通知页在 holiday_watch.url）")
    return target


def _read(response: requests.Response, guard: _Guard, max_bytes: int) -> Fetched:
    meta = (response.headers.get("ETag"), response.headers.get("Last-Modified"))
    if response.status_code == 304:
        return Fetched(304, b"", *meta)
    if response.status_code != 200:
        raise FetchError(f"服务器返回 HTTP {response.status_code}")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_big(max_bytes)
    body = bytearray()
    for chunk in response.iter_content(CHUNK):
        body += chunk
        if len(body) > max_bytes:
            raise _too_big(max_bytes)
        guard.check_time()
    guard.check_time()  # a watchdog shutdown looks like a clean end of a body without a length
    return Fetched(200, bytes(body), *meta)


def _too_big(max_bytes: int) -> FetchError:
    return FetchError(f"内容超过 {max_bytes // 1_000_000} MB 上限，已停止下载")


def _validators(etag: str | None, last_modified: str | None) -> dict[str, str]:
    pairs = (("If-None-Match", etag), ("If-Modified-Since", last_modified))
    return {name: value for name, value in pairs if value}


def is_public(address: str) -> bool:
    """True for an address on the public internet (IPv4-mapped IPv6 judged as its IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _Guard:
    """One fetch's deadline, allowed hosts and open connections."""

    def __init__(self, allowed_hosts: Iterable[str], timeout_s: float) -> None:
        self.allowed = {host.strip().lower() for host in allowed_hosts}
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.expired = False
        self._open: list[tuple[Any, socket.socket]] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(0.001, self.deadline - time.monotonic())

    def check_time(self) -> None:
        if self.expired or time.monotonic() >= self.deadline:
            raise self.timeout_error()

    def timeout_error(self) -> FetchError:
        return FetchError(f"{self.timeout_s:g} 秒内未下载完成，已中止")

    def check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError("地址不是 http:// 或 https:// 开头的网址")
        if parts.hostname.lower() in self.allowed:
            return
        try:
            found = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise FetchError(f"无法解析主机名 {parts.hostname}") from None
        if not all(is_public(str(info[4][0])) for info in found):
            raise _inside(parts.hostname)

    def adopt(self, connection: Any, sock: socket.socket) -> None:
        """Called as each socket connects: check the real peer, and let the watchdog reach it."""
        if str(connection.host).lower() not in self.allowed and not is_public(sock.getpeername()[0]):
            sock.close()
            raise _inside(str(connection.host))
        with self._lock:
            self._open.append((connection, sock))
            if self.expired:
                sock.shutdown(socket.SHUT_RDWR)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for connection, raw in self._open:
                for sock in (getattr(connection, "sock", None), raw):
                    _shut(sock)


def _shut(sock: socket.socket | None) -> None:
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed, or detached by the TLS wrapper (then connection.sock is the live one)


def _inside(host: str) -> FetchError:
    return FetchError(f"主机 {host} 指向内网、本机或保留地址，为安全起见未访问。处理办法：{ALLOW_FIX}")


class _GuardedConnection:
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        _current.guard.adopt(self, sock)
        return sock


class _GuardedHTTPConnection(_GuardedConnection, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnection, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", _GuardedAdapter())
    session.mount("https://", _GuardedAdapter())
    return session

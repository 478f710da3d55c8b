"""The URL fetcher against a real loopback server: the inside, redirects, one deadline, size, our words."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.safe_fetch import FetchError, fetch_url, is_public

BODY = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"


class Server:
    """127.0.0.1:<port>; the path names the behaviour. Records the paths it was asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.paths.append(self.path)
                parts = urlsplit(self.path)
                getattr(self, "serve_" + parts.path.strip("/").replace("-", "_"))(parse_qs(parts.query))

            def serve_ok(self, query: dict[str, list[str]]) -> None:
                if self.headers.get("If-None-Match") == '"v1"':
                    self.reply(304, b"")
                    return
                self.reply(200, BODY, {"ETag": '"v1"'})

            def serve_error(self, query: dict[str, list[str]]) -> None:
                self.reply(500, b"Traceback: INTERNAL-SECRET db password hunter2")

            def serve_redirect(self, query: dict[str, list[str]]) -> None:
                self.reply(302, b"", {"Location": query["to"][0]})

            def serve_loop(self, query: dict[str, list[str]]) -> None:
                self.reply(302, b"", {"Location": "/loop"})

            def serve_big(self, query: dict[str, list[str]]) -> None:
                self.reply(200, b"x" * 1000, {"Content-Length": "100000000"})

            def serve_endless(self, query: dict[str, list[str]]) -> None:
                self.send_response(200)
                self.end_headers()
                self.write_forever(b"x" * 65536, 0)

            def serve_trickle_body(self, query: dict[str, list[str]]) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.write_forever(b"x", 0.1)

            def serve_trickle_body_unsized(self, query: dict[str, list[str]]) -> None:
                self.send_response(200)
                self.end_headers()
                self.write_forever(b"x", 0.1)

            def serve_trickle_head(self, query: dict[str, list[str]]) -> None:
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 10_000:
                    self.write_forever(bytes([byte]), 0.1, times=1)

            def write_forever(self, data: bytes, pause: float, times: int = 10**9) -> None:
                try:
                    for _ in range(times):
                        self.wfile.write(data)
                        self.wfile.flush()
                        time.sleep(pause)
                except OSError:
                    pass  # the client gave up: that is the point

            def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


LOOPBACK = ("127.0.0.1",)


def test_an_allowed_host_is_fetched_with_validators(server: Server) -> None:
    first = fetch_url(server.url("/ok"), allowed_hosts=LOOPBACK)
    again = fetch_url(server.url("/ok"), allowed_hosts=LOOPBACK, etag=first.etag)
    assert (first.status, first.body, first.etag) == (200, BODY, '"v1"')
    assert (again.status, again.body) == (304, b"")


@pytest.mark.parametrize("host", [
    "127.0.0.1", "localhost", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "[::1]", "[::ffff:127.0.0.1]", "[fe80::1]", "[fd00::1]",
], ids=lambda host: host)
def test_an_inside_address_is_refused_unless_allowed(server: Server, host: str) -> None:
    with pytest.raises(FetchError, match="内网、本机或保留地址.*calendars.allowed_hosts"):
        fetch_url(server.url("/ok", host), timeout_s=2)
    assert server.paths == []  # refused before anything was sent


@pytest.mark.parametrize("target", [
    "http://10.0.0.1/x.ics", "http://169.254.169.254/latest/meta-data/", "http://192.168.0.1/",
    "http://127.0.0.1:{port}/ok", "http://[::1]:{port}/ok", "https://example.com/x.ics",
], ids=["10.x", "metadata", "192.168", "loopback-by-ip", "ipv6-loopback", "public-other-host"])
def test_a_redirect_to_another_host_is_not_followed(server: Server, target: str) -> None:
    url = server.url("/redirect?to=" + target.format(port=server.port), host="localhost")
    with pytest.raises(FetchError, match="跳转到另一台主机"):
        fetch_url(url, allowed_hosts=("localhost",), timeout_s=2)
    assert len(server.paths) == 1 and server.paths[0].startswith("/redirect?to=")  # the hop was not taken


def test_a_redirect_on_the_same_host_is_followed_and_checked_again(server: Server) -> None:
    fetched = fetch_url(server.url("/redirect?to=/ok"), allowed_hosts=LOOPBACK)
    assert fetched.body == BODY and server.paths == ["/redirect?to=/ok", "/ok"]


def test_a_redirect_loop_ends(server: Server) -> None:
    with pytest.raises(FetchError, match="重定向超过 5 次"):
        fetch_url(server.url("/loop"), allowed_hosts=LOOPBACK)
    assert server.paths == ["/loop"] * 6


@pytest.mark.parametrize("path", ["/trickle-body", "/trickle-body-unsized", "/trickle-head"])
def test_one_deadline_holds_against_a_trickling_server(server: Server, path: str) -> None:
    # a byte every 0.1 s keeps every single read alive; only the total deadline ends it
    with pytest.raises(FetchError, match="1 秒内未下载完成"):
        fetch_url(server.url(path), allowed_hosts=LOOPBACK, timeout_s=1)


@pytest.mark.parametrize("path", ["/big", "/endless"], ids=["declared", "while-reading"])
def test_the_size_limit_applies_while_reading(server: Server, path: str) -> None:
    with pytest.raises(FetchError, match="超过 1 MB 上限"):
        fetch_url(server.url(path), allowed_hosts=LOOPBACK, max_bytes=1_000_000, timeout_s=10)


def test_a_failure_shows_our_words_not_the_remote_body(server: Server) -> None:
    with pytest.raises(FetchError) as caught:
        fetch_url(server.url("/error"), allowed_hosts=LOOPBACK)
    assert str(caught.value) == "服务器返回 HTTP 500"


@pytest.mark.parametrize("url,words", [
    ("ftp://example.com/x.ics", "不是 http"),
    ("file:///etc/passwd", "不是 http"),
    ("http://no-such-host.invalid/x.ics", "无法解析主机名"),
])
def test_odd_urls_are_refused_in_words(url: str, words: str) -> None:
    with pytest.raises(FetchError, match=words):
        fetch_url(url, timeout_s=2)


def test_an_allowed_host_that_is_down_is_a_connection_error() -> None:
    idle = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = idle.server_address[1]
    idle.server_close()
    with pytest.raises(FetchError, match="无法连接"):
        fetch_url(f"http://127.0.0.1:{port}/", allowed_hosts=LOOPBACK, timeout_s=2)


@pytest.mark.parametrize("address,public", [
    ("8.8.8.8", True), ("2400:3200::1", True), ("127.0.0.53", False), ("::ffff:10.0.0.1", False),
    ("224.0.0.1", False), ("198.18.0.1", False), ("fe80::1%eth0", False),
])
def test_is_public(address: str, public: bool) -> None:
    assert is_public(address) is public

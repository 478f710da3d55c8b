"""bot.inputs: calendar URLs fetched conditionally over loopback HTTP; the last good copy kept."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bot.inputs import fetch_ics

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ics"
LOOPBACK = ("127.0.0.1",)  # the test peer runs on loopback: allowed by name, as an administrator would


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


class Peer:
    """A calendar server on 127.0.0.1: what it serves next, and what it was asked."""

    def __init__(self) -> None:
        self.status = 200
        self.body = fixture("google.ics").encode("utf-8")
        self.etag = '"v1"'
        self.requests: list[dict[str, str]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/calendar/private-s3cr3t/basic.ics"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                peer.requests.append(dict(self.headers))
                if peer.status == 200 and self.headers.get("If-None-Match") == peer.etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(peer.status)
                self.send_header("Content-Type", "text/calendar")
                self.send_header("ETag", peer.etag)
                self.send_header("Last-Modified", "Thu, 01 Jan 2026 00:00:00 GMT")
                self.send_header("Content-Length", str(len(peer.body)))
                self.end_headers()
                self.wfile.write(peer.body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[tuple[str, Peer]]:
    peer = Peer()
    yield peer.url, peer
    peer.stop()


def test_fetch_stores_the_copy_and_revalidates_with_etag(server: tuple[str, Peer], tmp_path: Path) -> None:
    url, peer = server
    first = fetch_ics(url, tmp_path, allowed_hosts=LOOPBACK)
    second = fetch_ics(url, tmp_path, allowed_hosts=LOOPBACK)
    assert (first.from_cache, first.error) == (False, None) and "青年理论学习小组" in (first.text or "")
    assert (second.text, second.from_cache, second.error) == (first.text, True, None)
    assert peer.requests[1]["If-None-Match"] == '"v1"'
    assert peer.requests[1]["If-Modified-Since"] == "Thu, 01 Jan 2026 00:00:00 GMT"
    assert "If-None-Match" not in peer.requests[0]


def test_a_new_version_replaces_the_copy(server: tuple[str, Peer], tmp_path: Path) -> None:
    url, peer = server
    fetch_ics(url, tmp_path, allowed_hosts=LOOPBACK)
    peer.body, peer.etag = fixture("tencent_meeting.ics").encode("utf-8"), '"v2"'
    fresh = fetch_ics(url, tmp_path, allowed_hosts=LOOPBACK)
    assert not fresh.from_cache and "上级党组织视频会议" in (fresh.text or "")


@pytest.mark.parametrize("status,body,words", [
    (500, b"oops", "HTTP 500"),
    (200, b"<html>login</html>", "不是有效的日历"),
], ids=["server-error", "broken-download"])
def test_a_failed_fetch_keeps_the_last_good_copy(server: tuple[str, Peer], tmp_path: Path, status: int,
                                                 body: bytes, words: str) -> None:
    url, peer = server
    good = fetch_ics(url, tmp_path, allowed_hosts=LOOPBACK)
    peer.status, peer.body, peer.etag = status, body, '"v2"'
    failed = fetch_ics(url, tmp_path, allowed_hosts=LOOPBACK)
    again = fetch_ics(url, tmp_path, allowed_hosts=LOOPBACK)
    assert failed.text == good.text and failed.from_cache
    assert words in (failed.error or "") and "继续使用上次成功获取的副本" in (failed.error or "")
    assert "s3cr3t" not in (failed.error or "")
    assert again.text == good.text  # the broken download did not replace the copy


def test_an_unreachable_server_keeps_the_copy(tmp_path: Path) -> None:
    peer = Peer()
    good = fetch_ics(peer.url, tmp_path, allowed_hosts=LOOPBACK)
    peer.stop()
    result = fetch_ics(peer.url, tmp_path, allowed_hosts=LOOPBACK, timeout=2)
    assert (result.text, result.from_cache) == (good.text, True)
    assert "无法连接" in (result.error or "") and "继续使用上次成功获取的副本" in (result.error or "")


def test_a_url_never_fetched_has_no_text(tmp_path: Path) -> None:
    peer = Peer()
    peer.stop()
    result = fetch_ics(peer.url, tmp_path, allowed_hosts=LOOPBACK, timeout=2)
    assert (result.text, result.from_cache) == (None, False) and "此前没有成功获取过" in (result.error or "")


def test_a_gbk_download_is_decoded(server: tuple[str, Peer], tmp_path: Path) -> None:
    url, peer = server
    peer.body = fixture("google.ics").encode("gb18030")
    result = fetch_ics(url, tmp_path, allowed_hosts=LOOPBACK)
    assert result.error is None and "青年理论学习小组" in (result.text or "")


def test_a_calendar_on_an_inside_address_is_not_fetched_unless_allowed(server: tuple[str, Peer],
                                                                        tmp_path: Path) -> None:
    url, peer = server
    refused = fetch_ics(url, tmp_path)
    assert refused.text is None and "calendars.allowed_hosts" in (refused.error or "") and peer.requests == []
    assert "s3cr3t" not in (refused.error or "")   # the private path of the URL is not shown

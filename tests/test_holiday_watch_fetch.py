"""The daily holiday watch fetching a real page over loopback HTTP, through bot.safe_fetch, driven by a FakeClock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.clock import BEIJING, FakeClock
from bot.holiday_watch import read_candidate
from bot.runtime import Runtime
from bot.scheduler import Service
from bot.store.queries import list_deliveries

ROOT = Path(__file__).resolve().parent.parent
NEWS_2026 = (ROOT / "tests" / "fixtures" / "notices" / "2026_news_site.txt").read_text(encoding="utf-8")
ARTICLE = (ROOT / "tests" / "fixtures" / "notices" / "not_a_notice_article.txt").read_text(encoding="utf-8")


class NoticeSite:
    """127.0.0.1:<port>: /notice (the 2026 notice, GB18030 like older government pages), /article (news
    that is not a notice), /moved (a redirect to the same page under another host name)."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                site.paths.append(self.path)
                if self.path == "/moved":
                    self.reply(302, b"", {"Location": f"http://localhost:{site.port}/notice"})
                    return
                text = NEWS_2026 if self.path == "/notice" else ARTICLE
                self.reply(200, text.encode("gb18030"), {"Content-Type": "text/html; charset=gb2312"})

            def reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def site() -> Iterator[NoticeSite]:
    server = NoticeSite()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def watching(project: Path, url: str, when: datetime, allowed: str = "[127.0.0.1, localhost]") -> Service:
    text = project.read_text(encoding="utf-8")
    text = text.replace("holiday_watch:\n  url:", f"holiday_watch:\n  url: {url}", 1)
    text = text.replace("allowed_hosts: []", f"allowed_hosts: {allowed}", 1)
    project.write_text(text, encoding="utf-8")
    return Service(Runtime(project, FakeClock(when)))


def without_2026(project: Path) -> Path:
    (project.parent / "schedules" / "holidays" / "2026.yaml").unlink()
    return project


def alert_texts(service: Service) -> list[str]:
    return [row.text for row in list_deliveries(service.runtime.store, kind="alert")]


def test_a_notice_page_is_fetched_alerted_and_kept_for_confirmation(project: Path, site: NoticeSite) -> None:
    service = watching(without_2026(project), site.url("/notice"), datetime(2026, 1, 5, 9, 10, tzinfo=BEIJING))
    result = service.look_for_notice()
    assert result is not None and result.notice.year == 2026 and site.paths == ["/notice"]
    data = service.runtime.settings().path("data")
    assert read_candidate(data, 2026) == NEWS_2026
    assert not (project.parent / "schedules" / "holidays" / "2026.yaml").exists()  # never applied
    [alert] = alert_texts(service)
    assert "国务院办公厅已发布2026年节假日安排，待确认" in alert and "须由管理员在管理后台核对后确认保存" in alert


def test_a_page_that_is_not_a_notice_alerts_nothing(project: Path, site: NoticeSite) -> None:
    service = watching(without_2026(project), site.url("/article"), datetime(2026, 1, 5, 9, 10, tzinfo=BEIJING))
    assert service.look_for_notice() is None and site.paths == ["/article"]
    assert alert_texts(service) == [] and read_candidate(service.runtime.settings().path("data"), 2026) is None


def test_a_redirect_to_another_host_is_not_followed(project: Path, site: NoticeSite,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    service = watching(without_2026(project), site.url("/moved"), datetime(2026, 1, 5, 9, 10, tzinfo=BEIJING))
    assert service.look_for_notice() is None and site.paths == ["/moved"]
    assert "跳转到另一台主机 localhost" in caplog.text and alert_texts(service) == []


def test_an_inside_address_is_refused_unless_allowed_by_name(project: Path, site: NoticeSite,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    service = watching(without_2026(project), site.url("/notice"), datetime(2026, 1, 5, 9, 10, tzinfo=BEIJING),
                       allowed="[]")
    assert service.look_for_notice() is None and site.paths == []
    assert "calendars.allowed_hosts" in caplog.text and alert_texts(service) == []


def test_next_years_page_is_looked_at_only_from_1_october(project: Path, site: NoticeSite) -> None:
    service = watching(project, site.url("/notice"), datetime(2026, 9, 30, 9, 10, tzinfo=BEIJING))
    assert service.look_for_notice() is None and site.paths == []  # 2026 on file, 2027 not yet due
    service.runtime.clock.advance(timedelta(days=1))
    assert service.look_for_notice() is None  # the page still shows 2026's notice: nothing new
    assert site.paths == ["/notice"] and alert_texts(service) == []


def test_the_watch_is_a_daily_job_with_a_fixed_id(project: Path) -> None:
    service = Service(Runtime(project, FakeClock(datetime(2026, 10, 1, 8, tzinfo=BEIJING))))
    scheduler = BackgroundScheduler(timezone=BEIJING)
    service.add_jobs(scheduler)
    job = scheduler.get_job("holiday_watch")
    assert isinstance(job.trigger, CronTrigger) and job.func == service.look_for_notice
    fires = job.trigger.get_next_fire_time(None, datetime(2026, 10, 1, 8, tzinfo=BEIJING))
    assert fires == datetime(2026, 10, 1, 9, 10, tzinfo=BEIJING)
    assert job.trigger.get_next_fire_time(fires, fires + timedelta(seconds=1)) == fires + timedelta(days=1)

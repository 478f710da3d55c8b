"""The daily watch for next year's notice: found → kept and alerted, never applied; off by default."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from bot.clock import BEIJING, FakeClock
from bot.errors import BotError
from bot.holiday_watch import notice_on_page, page_text, read_candidate, watched_year
from bot.inputs import read_notice
from bot.runtime import Runtime
from bot.scheduler import Service
from bot.store.queries import list_deliveries

ROOT = Path(__file__).resolve().parent.parent
NOTICES = ROOT / "tests" / "fixtures" / "notices"
NEWS_2026 = (NOTICES / "2026_news_site.txt").read_text(encoding="utf-8")
PAGE = "https://www.gov.cn/zhengce/content/notice.htm"


@pytest.mark.parametrize(("years", "today", "year"), [
    ({2025, 2026}, date(2026, 9, 30), None), ({2025, 2026}, date(2026, 10, 1), 2027),
    ({2026, 2027}, date(2026, 12, 20), None), ({2025}, date(2026, 3, 1), 2026)],
    ids=["sep-30", "oct-1", "next-loaded", "this-year-missing"])
def test_the_watch_looks_for_the_year_the_alerts_call_missing(years: set[int], today: date, year: int | None) -> None:
    assert watched_year(years, today) == year


def test_only_a_complete_notice_for_the_missing_year_counts() -> None:
    assert notice_on_page(NEWS_2026, {}, 2026) is not None
    assert notice_on_page(NEWS_2026, {}, 2027) is None  # last year's page
    assert notice_on_page((NOTICES / "not_a_notice_article.txt").read_text(encoding="utf-8"), {}, 2026) is None


def test_an_older_government_page_in_gb18030_is_read() -> None:
    assert page_text(NEWS_2026.encode("gb18030")) == NEWS_2026


class FakePage:
    """The configured page as the fetch would return it; counts the fetches."""

    def __init__(self, text: str | None) -> None:
        self.text, self.urls = text, []

    def __call__(self, url: str) -> str:
        self.urls.append(url)
        if self.text is None:
            raise BotError("无法连接（ConnectTimeout）")
        return self.text


@pytest.fixture
def service(project: Path) -> Service:
    project.write_text(project.read_text(encoding="utf-8").replace(
        "holiday_watch:\n  url:", f"holiday_watch:\n  url: {PAGE}", 1), encoding="utf-8")
    (project.parent / "schedules" / "holidays" / "2026.yaml").unlink()
    runtime = Runtime(project, FakeClock(datetime(2026, 1, 5, 9, tzinfo=BEIJING)))
    return Service(runtime)


def alerts(service: Service) -> list:
    return list_deliveries(service.runtime.store, kind="alert")


def test_a_notice_found_is_alerted_with_its_summary_and_never_applied(service: Service) -> None:
    page = FakePage(NEWS_2026)
    assert service.watch_holidays(page) is not None and page.urls == [PAGE]
    settings = service.runtime.settings()
    assert not (settings.path("schedules") / "holidays" / "2026.yaml").exists()
    assert read_candidate(settings.path("data"), 2026) == NEWS_2026
    [alert] = alerts(service)
    assert "国务院办公厅已发布2026年节假日安排，待确认" in alert.text
    assert "春节：2月15日（周日）至2月23日（周一），共9天" in alert.text and "管理后台“日历与会议”页" in alert.text
    service.watch_holidays(page)  # found again the next day: not alerted twice
    assert len(alerts(service)) == 1


def test_an_unreachable_page_or_another_page_alerts_nothing(service: Service) -> None:
    assert service.watch_holidays(FakePage(None)) is None
    assert service.watch_holidays(FakePage("国务院常务会议研究部署近期工作")) is None
    assert alerts(service) == []


def test_the_watch_is_off_unless_a_url_is_configured(project: Path) -> None:
    runtime = Runtime(project, FakeClock(datetime(2026, 10, 5, 9, tzinfo=BEIJING)))
    page = FakePage(NEWS_2026)
    assert Service(runtime).watch_holidays(page) is None and page.urls == []
    assert read_notice(project.parent / "schedules" / "holidays" / "2026.yaml").year == 2026

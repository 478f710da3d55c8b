"""Importing the 2026 notice in Chromium as an administrator would: paste, preview, confirm."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fakes import ARGS, ARTIFACTS, CHROMIUM, ROOT, browser_available, log_in_console, make_app, make_runtime
from werkzeug.serving import make_server

from bot.clock import BEIJING, FakeClock
from bot.runtime import Runtime

NOTICE = (ROOT / "tests" / "fixtures" / "notices" / "2026_news_site.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Runtime]]:
    browser_available()
    runtime = make_runtime(tmp_path_factory.mktemp("notice"), FakeClock(datetime(2025, 11, 10, 9, tzinfo=BEIJING)))
    (runtime.settings().path("schedules") / "holidays" / "2026.yaml").unlink()
    assert runtime.reload()
    http = make_server("127.0.0.1", 0, make_app(runtime), threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_port}", runtime
    http.shutdown()
    runtime.close()


@pytest.fixture(scope="module")
def tab(served: tuple[str, Runtime]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=served[0],
                                   locale="zh-CN").new_page()
        log_in_console(page)
        yield page
        browser.close()


def test_paste_preview_and_confirm_the_2026_notice(tab: Any, served: tuple[str, Runtime]) -> None:
    from playwright.sync_api import expect
    tab.goto("/admin/calendars")
    tab.fill("#notice-import textarea[name=text]", NOTICE)
    tab.locator("#notice-import").screenshot(path=str(ARTIFACTS / "notice-import-form.png"))
    tab.click("#notice-import button[type=submit]")
    expect(tab.locator("h1")).to_have_text("预览：新增 2026 年节假日安排")
    february = tab.locator("table.month", has=tab.locator("caption", has_text="2026年2月"))
    expect(february.locator("td.holiday")).to_have_count(9)
    expect(february.locator("td.adjusted")).to_have_count(2)
    expect(tab.locator("#plan-changes")).to_contain_text("放假前最后一个工作日2月14日（周六）发送")
    tab.screenshot(path=str(ARTIFACTS / "notice-preview.png"), full_page=True)
    folder = served[1].settings().path("schedules") / "holidays"
    assert not (folder / "2026.yaml").exists()
    tab.click("button:has-text('确认保存')")
    expect(tab.locator(".flash, .alert").first).to_contain_text("已新增 schedules/holidays/2026.yaml")
    expect(tab.locator("table.grid").first).to_contain_text("国务院办公厅关于2026年部分节假日安排的通知")
    assert (folder / "2026.yaml").read_text(encoding="utf-8") == (ROOT / "schedules/holidays/2026.yaml").read_text(
        encoding="utf-8")
    tab.screenshot(path=str(ARTIFACTS / "notice-saved.png"))


def test_a_cut_off_paste_is_refused_in_place(tab: Any) -> None:
    from playwright.sync_api import expect
    tab.goto("/admin/calendars")
    tab.fill("#notice-import textarea[name=text]", NOTICE[: NOTICE.index("五、端午节")])
    tab.click("#notice-import button[type=submit]")
    expect(tab.locator("#import-error")).to_contain_text("缺少端午节、中秋节、国庆节的放假安排")
    expect(tab.locator("#notice-import textarea[name=text]")).to_have_value(NOTICE[: NOTICE.index("五、端午节")])

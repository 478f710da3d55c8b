"""The console's pictures in Chromium: the year calendar, the ledger chart, the template preview as
WeCom shows it, a delivery's page, the deliveries' date filter. Screenshots go to test-artifacts/."""

from __future__ import annotations

from typing import Any

from fakes import expect, shot


def test_the_year_calendar_and_a_days_sends(page: Any) -> None:
    page.goto("/admin/calendars?year=2026")
    assert page.locator("table.month").count() == 12
    expect(page.locator("table.month td.holiday").first).to_be_visible()
    shot(page, "calendar-year")
    page.locator('table.month a[href*="day=2026-06-18"]').click()
    expect(page.locator("#day")).to_contain_text("6月18日计划发送的消息")
    expect(page.locator("#day")).to_contain_text("节前廉洁提醒")
    page.locator("#day").scroll_into_view_if_needed()
    shot(page, "calendar-day")


def test_the_ledger_chart_and_its_sentence(page: Any) -> None:
    page.goto("/admin/ledger?year=2026")
    assert page.locator("svg.chart").count() == 2
    expect(page.locator("#year-sentence")).to_contain_text("按时完成率")
    shot(page, "ledger-chart")


def test_the_study_prompt_preview_is_a_card_with_its_button(page: Any) -> None:
    page.goto("/admin/templates/study_prompt")
    card = page.locator(".wx-card").first
    expect(card.locator(".wx-card-button")).to_have_text("已完成学习")
    text = page.input_value("#template-text")
    page.fill("#template-text", text.replace("{{ secretary.name }}同志：", "{{ secretary.name }}同志：\n请于周五前报送学习记录。"))
    expect(card.locator(".wx-card-text")).to_contain_text("请于周五前报送学习记录。")
    expect(page.locator(".wx-places")).to_contain_text("卡片正文")
    shot(page, "template-card-preview")


def test_the_holiday_notice_preview_draws_markdown(page: Any) -> None:
    page.goto("/admin/templates/holiday_integrity")
    heading = page.locator(".wx-md .md-h2").first
    expect(heading).to_contain_text("廉洁过节提醒")
    expect(page.locator(".wx-head").first).to_contain_text("4096 字节")
    shot(page, "template-markdown-preview")


def test_a_reversed_date_range_is_refused_on_the_page(page: Any) -> None:
    page.goto("/admin/deliveries")
    page.fill("input[name=since]", "2026-05-20")
    page.fill("input[name=until]", "2026-05-01")
    page.click("text=筛选")
    expect(page.locator("#filter-error")).to_contain_text("晚于截止日期")
    shot(page, "deliveries-filter-error")


def test_an_ics_upload_error_shows_at_the_top(page: Any, tmp_path: Any) -> None:
    broken = tmp_path / "broken.ics"
    broken.write_text("这不是日历", encoding="utf-8")
    page.goto("/admin/calendars")
    page.set_input_files("input[type=file]", str(broken))
    page.click("text=校验并上传")
    error = page.locator("#upload-error")
    expect(error).to_contain_text("未写入任何内容")
    box = error.bounding_box()
    assert box is not None and box["y"] < 400  # at the top, seen without scrolling
    shot(page, "calendar-upload-error")


def test_the_root_and_the_404_page_lead_to_the_console(page: Any) -> None:
    page.goto("/")
    assert page.url.endswith("/admin/")
    page.goto("/no-such-page")
    page.click("text=返回管理后台")
    assert page.url.endswith("/admin/") and page.locator("h1").inner_text() == "概况"


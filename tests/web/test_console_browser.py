"""The console in a real browser (Debian's Chromium through Playwright), over loopback HTTP.

Screenshots of the main pages at 1366×768 go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fakes import SCRIPT, expect, shot


def test_overview_after_login(page: Any) -> None:
    assert page.locator("h1").inner_text() == "概况"
    assert "待发送" in page.content()
    shot(page, "overview")


def test_edit_template_with_live_preview_error_and_save(page: Any) -> None:
    page.goto("/admin/templates/holiday_integrity")
    page.select_option("#sample", label="2025年 国庆节、中秋节")
    expect(page.locator("#preview")).to_contain_text("国庆节")
    text = page.input_value("#template-text")
    page.fill("#template-text", text.replace("}}廉洁过节提醒", "}}廉洁过节专项提醒"))
    expect(page.locator("#preview")).to_contain_text("廉洁过节专项提醒")
    shot(page, "template-editor")
    page.fill("#template-text", text + "\n{{ holliday.name }}")
    expect(page.locator("#problems")).to_contain_text("holliday")
    page.click("#save-button")
    assert "未保存" in page.content() and "holliday" in page.locator("#problems").inner_text()
    page.fill("#template-text", text.replace("}}廉洁过节提醒", "}}廉洁过节专项提醒"))
    page.click("#save-button")
    page.wait_for_selector(".alert.success")
    assert "已保存为第" in page.locator(".alert.success").inner_text()


def test_restore_the_default(page: Any) -> None:
    page.goto("/admin/templates/holiday_integrity/history")
    shot(page, "template-history")
    page.click("text=恢复为系统默认模板")
    page.wait_for_selector("#confirm-restore")
    page.click("#confirm-restore")
    page.wait_for_selector(".alert.success")
    assert "已恢复为系统默认模板" in page.locator(".alert.success").inner_text()
    assert "默认" in page.locator("h1 .tag").inner_text()


def test_skip_a_planned_occurrence(page: Any) -> None:
    page.goto("/admin/plan")
    shot(page, "plan")
    page.click("text=下一页")
    page.click("text=下一页")
    article = page.locator("article", has_text="节前廉洁提醒").first
    expect(article.locator("details.targets summary")).to_contain_text("第一党支部群 等 3 个对象")
    expect(article.locator("a", has_text="跳过").first).to_be_hidden()       # until the targets are expanded
    article.locator("details.targets summary").click()
    shot(page, "plan-targets")
    article.locator("a", has_text="跳过").first.click()
    page.wait_for_selector("#confirm-action")
    page.click("#confirm-action")
    page.wait_for_selector(".alert.success")
    assert "已跳过" in page.locator(".alert.success").inner_text()
    article = page.locator("article", has_text="节前廉洁提醒").first      # back on the page that shows it
    expect(article.locator("details.targets summary")).to_contain_text("已跳过 1")
    assert article.locator(".tag.s-skipped").count() == 1


def test_export_the_ledger(page: Any, tmp_path: Path) -> None:
    page.goto("/admin/ledger?year=2026")
    shot(page, "ledger")
    with page.expect_download() as info:
        page.click("#export-xlsx")
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    assert target.suffix == ".xlsx"
    assert openpyxl.load_workbook(target)["学习台账"].cell(row=3, column=1).value == "学习内容"


def test_export_the_delivery_log(page: Any, tmp_path: Path) -> None:
    page.goto("/admin/deliveries")
    with page.expect_download() as info:
        page.click("#export-csv")
    name = info.value.suggested_filename
    assert name.startswith("发送记录-") and name.endswith(".csv")
    target = tmp_path / name
    info.value.save_as(target)
    assert target.read_text(encoding="utf-8-sig").splitlines()[0].startswith("计划发送时间,实际发送时间,类别,发送对象")


def test_script_in_names_is_shown_as_text(page: Any) -> None:
    page.goto("/admin/ledger?year=2026")
    assert SCRIPT in page.locator("table.matrix thead").inner_text()
    page.goto("/admin/templates")
    assert SCRIPT in page.locator("table.grid").inner_text()
    for number in range(1, 8):
        page.goto(f"/admin/plan?page={number}")
    assert page.dialogs == []


@pytest.mark.parametrize("path", ["/admin/deliveries", "/admin/calendars", "/admin/audit", "/admin/templates"])
def test_screenshots_of_other_pages(page: Any, path: str) -> None:
    response = page.goto(path)
    assert response.status == 200
    shot(page, path.rsplit("/", 1)[-1])
    assert page.dialogs == []

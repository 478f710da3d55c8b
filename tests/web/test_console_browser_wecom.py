"""Edits made in the console reach people, seen in Chromium on both sides: the console where an
administrator edits a template, and the WeCom simulator where the secretary and the groups read.

The whole service runs over loopback HTTP with a fake clock: the simulator, the scheduler, the
callback and the console.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import ARGS, ARTIFACTS, CHROMIUM, browser_available, expect, log_in_console
from test_end_to_end import Stack, at, eventually

from bot.clock import FakeClock
from bot.store.accounts import create_admin

PASSWORD = "console-password-1"


@pytest.fixture
def stack(project: Path) -> Iterator[Stack]:
    browser_available()
    built = Stack(project, FakeClock(at("2026-05-11 08:55")))
    yield built
    built.stop()
    built.sim.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN").new_page()
        chromium.close()


def start_and_log_in(stack: Stack, tab: Any) -> str:
    service = stack.start()
    create_admin(service.runtime.store, "office", PASSWORD, "admin")
    base = f"http://{service.runtime.settings().server.listen}"
    log_in_console(tab, base, "office", PASSWORD)
    return base


def edit_template(tab: Any, base: str, name: str, after: str, line: str) -> None:
    tab.goto(f"{base}/admin/templates/{name}")
    text = tab.input_value("#template-text")
    assert after in text
    tab.fill("#template-text", text.replace(after, f"{after}\n{line}", 1))
    tab.click("#save-button")
    expect(tab.locator(".alert.success")).to_contain_text("已保存为第 1 版")


def test_a_line_typed_into_study_prompt_reaches_the_secretary_card(stack: Stack, browser: Any) -> None:
    base = start_and_log_in(stack, browser)
    edit_template(browser, base, "study_prompt", "{{ secretary.name }}同志：", "请支部书记带头学习，做好学习记录。")
    stack.at("2026-05-11 09:00")
    browser.goto(f"{stack.sim.url}/user/zhangwei")
    card = browser.locator(".card").first
    expect(card).to_contain_text("请支部书记带头学习，做好学习记录。")
    expect(card).to_contain_text("截止时间")
    browser.screenshot(path=str(ARTIFACTS / "simulator-secretary-card.png"))
    browser.locator("button", has_text="已完成学习").first.click()
    expect(browser.locator(".bubble.mine").last).to_contain_text("点击了按钮“已完成学习”")
    expect(browser.locator(".bubble", has_text="已记录").first).to_be_visible()  # the app's answer to the click
    browser.screenshot(path=str(ARTIFACTS / "simulator-secretary-clicked.png"))


def test_a_line_typed_into_holiday_integrity_reaches_the_group(stack: Stack, browser: Any) -> None:
    stack.clock.set(at("2026-06-18 09:55"))
    base = start_and_log_in(stack, browser)
    edit_template(browser, base, "holiday_integrity", "各党支部、全体党员干部：", "请各支部认真传达到每一名党员。")
    stack.at("2026-06-18 10:00")  # the last working day before 端午节
    eventually(lambda: any("请各支部认真传达到每一名党员。" in str(m) for m in stack.sim.group_messages("第一党支部群")))
    browser.goto(f"{stack.sim.url}/")
    browser.locator("a", has_text="第一党支部群").first.click()
    expect(browser.locator(".md").last).to_contain_text("请各支部认真传达到每一名党员。")
    expect(browser.locator(".md-h").last).to_contain_text("端午节廉洁过节提醒")
    browser.screenshot(path=str(ARTIFACTS / "simulator-group-notice.png"))
    browser.goto(f"{base}/admin/deliveries")  # the console's record of it, and the payload as sent
    browser.locator("table.grid td a", has_text="端午节").first.click()
    expect(browser.locator("h1")).to_contain_text("节前廉洁提醒：2026年端午节")
    expect(browser.locator("pre.payload")).to_contain_text("webhook/send?key=******")
    expect(browser.locator("pre.payload")).to_contain_text("请各支部认真传达到每一名党员。")
    attempt = browser.locator("table.attempts tbody tr")  # each attempt, as WeCom answered it
    expect(attempt).to_have_count(1)
    expect(attempt.first).to_contain_text("第 1 次")
    expect(attempt.first).to_contain_text("已发送")
    expect(attempt.first.locator("td").nth(5)).to_have_text("ok")
    browser.screenshot(path=str(ARTIFACTS / "delivery-detail.png"), full_page=True)


@pytest.mark.parametrize("moment", ["2026-06-18 15:00", "2026-06-20 10:00"], ids=["before-duanwu", "inside-duanwu"])
def test_the_demo_shows_today_and_a_first_confirmation_is_on_time(stack: Stack, browser: Any, moment: str) -> None:
    from bot.commands.demo import ensure_open_item, seed_past_confirmations, welcome_today
    stack.clock.set(at(moment))
    service = stack.start()
    welcome_today(service.runtime, ensure_open_item(service.runtime))
    seed_past_confirmations(service.runtime)
    service.runtime.request_replan()
    stack.clock.advance(5)
    service.cycle()
    today = f"{stack.clock.now().year}年{stack.clock.now().month}月{stack.clock.now().day}日"
    holiday = "端午节" if moment.startswith("2026-06-18") else "中秋节"
    eventually(lambda: any(f"{holiday}廉洁过节提醒" in str(m) for m in stack.sim.group_messages("第一党支部群")))
    browser.goto(f"{stack.sim.url}/")
    browser.locator("a", has_text="第一党支部群").first.click()
    expect(browser.locator(".md").last).to_contain_text(f"{holiday}廉洁过节提醒")
    expect(browser.locator(".md").last).to_contain_text(today)  # signed today
    browser.goto(f"{stack.sim.url}/user/zhangwei")
    expect(browser.locator(".card").last).to_contain_text("学习提醒")
    browser.screenshot(path=str(ARTIFACTS / f"demo-{moment[:10]}.png"))
    browser.fill("#reply-text", "已学习")
    browser.click("text=发送")
    reply = browser.locator(".bubble", has_text="已记录").last
    expect(reply).to_be_visible()
    assert "逾期" not in reply.inner_text()  # the newcomer's first 已学习 is on time

"""The console's 导入国务院通知: paste or upload, preview the calendar and the plan's changes, confirm."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fakes import ReplanCounter, make_runtime, post
from flask.testing import FlaskClient

from bot.clock import BEIJING, FakeClock
from bot.runtime import Runtime
from bot.store.audit import recent

ROOT = Path(__file__).resolve().parents[2]
NOTICES = ROOT / "tests" / "fixtures" / "notices"
NEWS_2026 = (NOTICES / "2026_news_site.txt").read_text(encoding="utf-8")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 11, 10, 9, 0, tzinfo=BEIJING))  # 2026's notice not yet on file


@pytest.fixture
def runtime(tmp_path: Path, clock: FakeClock) -> Iterator[Runtime]:
    rt = make_runtime(tmp_path, clock)
    (year_file(rt)).unlink()
    assert rt.reload()
    rt.on_replan_requested = ReplanCounter()
    yield rt
    rt.close()


def year_file(rt: Runtime, year: int = 2026) -> Path:
    return rt.settings().path("schedules") / "holidays" / f"{year}.yaml"


def preview(client: FlaskClient, text: str) -> tuple[int, str]:
    response = post(client, "/admin/calendars/notice/preview", {"text": text})
    return response.status_code, response.get_data(as_text=True)


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no {name} on the page"
    return match.group(1)


def test_preview_shows_the_calendar_and_the_plan_changes_and_saves_nothing(admin, runtime) -> None:
    status, page = preview(admin, NEWS_2026)
    assert status == 200 and "预览：新增 2026 年节假日安排" in page
    assert "春节：2月15日（周日）至2月23日（周一），共9天；调休上班：2月14日（周六）、2月28日（周六）" in page
    assert "<caption>2026年2月</caption>" in page and 'class="adjusted" title="调休上班"><span class="day">14<small>班</small>' in page
    assert 'class="holiday" title="春节放假"><span class="day">16<small>休</small>' in page
    assert "将不再提示" in page and "待国务院通知" in page  # the holiday notices get their dates
    changes = page[page.index('id="plan-changes"'):]
    assert "放假前最后一个工作日2月14日（周六）发送" in changes and "2026-02-14 10:00" in changes
    assert "新增" in changes  # the holiday notices get their dates
    assert "改期" in changes and "2026-01-02 08:00" in changes and "2026-01-04 08:00" in changes
    assert "（暂定）" in changes  # meetings planned on the provisional calendar move to the adjusted Sunday
    assert not year_file(runtime).exists() and recent(runtime.store) == []


def test_confirming_writes_the_file_audits_and_replans(admin, runtime) -> None:
    _, page = preview(admin, NEWS_2026)
    response = post(admin, "/admin/calendars/notice/save", {"text": NEWS_2026, "digest": hidden(page, "digest")})
    assert response.status_code == 302
    assert year_file(runtime).read_text(encoding="utf-8") == (ROOT / "schedules/holidays/2026.yaml").read_text(
        encoding="utf-8")
    entry = recent(runtime.store)[0]
    assert entry.action == "导入国务院节假日通知（新增）" and entry.subject == "schedules/holidays/2026.yaml"
    assert entry.before is None and "国务院办公厅关于2026年部分节假日安排的通知" in entry.after
    assert runtime.on_replan_requested.calls == 1 and 2026 in runtime.calendar().years
    assert "已新增 schedules/holidays/2026.yaml" in admin.get("/admin/calendars").get_data(as_text=True)


def test_an_uploaded_saved_page_is_read_like_pasted_text(admin, runtime) -> None:
    html = (NOTICES / "2025_page.html").read_bytes()
    response = post(admin, "/admin/calendars/notice/preview", {"file": (io.BytesIO(html), "通知.html")},
                    content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "将替换现有的 schedules/holidays/2025.yaml" in page
    assert "国庆节、中秋节：10月1日（周三）至10月8日（周三），共8天" in page


@pytest.mark.parametrize(("name", "reason"), [
    ("not_a_notice_article.txt", "所给内容不含通知正文"),
    ("2026_cut_off.txt", "缺少劳动节、端午节、中秋节、国庆节的放假安排"),
])
def test_a_text_that_is_not_a_complete_notice_is_refused(admin, runtime, name: str, reason: str) -> None:
    status, page = preview(admin, (NOTICES / name).read_text(encoding="utf-8"))
    assert status == 422 and reason in page and 'id="import-error"' in page
    assert "国务院办公厅" in page[page.index("<textarea"):]  # the pasted text is kept for correcting
    assert not year_file(runtime).exists()


def test_a_save_after_the_files_changed_is_refused(admin, runtime) -> None:
    _, page = preview(admin, NEWS_2026)
    response = post(admin, "/admin/calendars/notice/save", {"text": NEWS_2026, "digest": "0" * 64})
    assert response.status_code == 409 and "重新预览" in response.get_data(as_text=True)
    assert not year_file(runtime).exists() and recent(runtime.store) == []


def test_save_without_csrf_token_is_refused(admin, runtime) -> None:
    response = admin.post("/admin/calendars/notice/save", data={"text": NEWS_2026, "digest": "x"})
    assert response.status_code == 400 and not year_file(runtime).exists()


def test_a_read_only_account_cannot_import(reader, runtime) -> None:
    assert "导入国务院通知" not in reader.get("/admin/calendars").get_data(as_text=True)
    status, _ = preview(reader, NEWS_2026)
    assert status == 403


def test_a_notice_found_by_the_daily_watch_waits_on_the_page_for_confirmation(admin, runtime) -> None:
    from bot.holiday_watch import candidate_path
    path = candidate_path(runtime.settings().path("data"), 2026)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(NEWS_2026, encoding="utf-8")
    page = admin.get("/admin/calendars").get_data(as_text=True)
    assert 'id="watch-found"' in page and "发现了 2026 年的节假日安排通知，尚未生效" in page
    status, preview_page = preview(admin, NEWS_2026)
    post(admin, "/admin/calendars/notice/save", {"text": NEWS_2026, "digest": hidden(preview_page, "digest")})
    assert year_file(runtime).exists() and not path.exists()
    assert 'id="watch-found"' not in admin.get("/admin/calendars").get_data(as_text=True)

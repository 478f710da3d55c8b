"""The optional daily watch for next year's notice (off unless ``holiday_watch.url`` is set).

From 1 October while next year's arrangement is missing (or whenever this year's is), the
configured page (the government's, or an internal mirror) is fetched once a day. A complete
notice for the missing year found there is kept under ``data/holiday_watch/`` and the
administrators are alerted with its summary and where to confirm it; it is never applied
without that confirmation in the console. Fetching goes through ``bot.safe_fetch`` (one deadline,
a size limit, no redirects to other hosts, no inside address unless ``calendars.allowed_hosts``
names the host); ``fetch_page`` is the runtime's fetch, and the fetch is a parameter of ``look_once``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from datetime import date
from pathlib import Path

from bot.calendars.holiday_file import HolidayNotice
from bot.calendars.holiday_status import holiday_alert
from bot.calendars.notice_checks import NoticeRefused
from bot.calendars.notice_import import ImportResult, import_notice
from bot.errors import BotError
from bot.safe_fetch import fetch_url

log = logging.getLogger(__name__)

Fetch = Callable[[str], str]  # url → the page's text; raises BotError (our words) when it cannot
PAGE_TIMEOUT_S = 20.0    # one deadline for the whole fetch, redirects included
PAGE_MAX_BYTES = 2_000_000  # a notice page is ~100 KB; anything far larger is not one


def watched_year(years: Collection[int], today: date) -> int | None:
    """The year whose notice to look for today: the one `check` and the console say is missing
    (this year's; next year's from 1 October), or None."""
    alert = holiday_alert(years, today)
    return alert.year if alert is not None else None


def notice_on_page(text: str, on_file: dict[int, HolidayNotice], year: int) -> ImportResult | None:
    """The complete arrangement for ``year`` on the page, or None (another year, a list page, …)."""
    try:
        result = import_notice(text, on_file)
    except NoticeRefused:
        return None
    return result if result.amendment is None and result.notice.year == year else None


def candidate_path(data: Path, year: int) -> Path:
    return data / "holiday_watch" / f"{year}.txt"


def read_candidate(data: Path, year: int) -> str | None:
    """The text found by the watch for ``year``, waiting for an administrator's confirmation."""
    path = candidate_path(data, year)
    return path.read_text(encoding="utf-8") if path.is_file() else None


def look_once(url: str, fetch: Fetch, on_file: dict[int, HolidayNotice], today: date,
              data: Path) -> ImportResult | None:
    """One look: fetch, read, keep the text found; None when there is nothing new to confirm."""
    year = watched_year(on_file.keys(), today)
    if year is None:
        return None
    try:
        text = fetch(url)
    except BotError as exc:
        log.warning("节假日通知检查：无法获取 %s 的内容：%s", year, exc)
        return None
    result = notice_on_page(text, on_file, year)
    if result is not None:
        path = candidate_path(data, year)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return result


def alert_lines(result: ImportResult) -> list[str]:
    """The alert's lines: the same notice found again gives the same lines, so it is alerted once."""
    return [*result.summary(), "尚未生效：须由管理员在管理后台核对后确认保存。"]


def confirm_advice(console_url: str | None) -> str:
    where = console_url or "管理后台“日历与会议”页"
    return f"请到{where}查看“自动检查发现的通知”，核对日历和对发送计划的影响后确认保存"


def page_text(body: bytes) -> str:
    """A page's text: UTF-8, else GB18030 (older government pages)."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return body.decode("gb18030", errors="replace")


def fetch_page(url: str, allowed_hosts: Iterable[str] = ()) -> str:
    """The watched page's text, fetched like every URL the service reads (``bot.safe_fetch``)."""
    fetched = fetch_url(url, allowed_hosts=allowed_hosts, timeout_s=PAGE_TIMEOUT_S, max_bytes=PAGE_MAX_BYTES)
    return page_text(fetched.body)

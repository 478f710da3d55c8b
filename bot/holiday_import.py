"""Reading a notice into ``schedules/holidays/``: the file side of ``bot.calendars.notice_import``.

Used by ``wecom-reminder holidays import`` and by the console: both show the result first, and
write only what the pure import accepted. A year file is replaced atomically, so the running
service's file watch never reads half a file.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path

from bot.calendars.holiday_file import HolidayNotice, read_notice
from bot.calendars.notice_import import ImportResult, import_notice


def holidays_folder(schedules: Path) -> Path:
    return schedules / "holidays"


def notices_on_file(folder: Path) -> dict[int, HolidayNotice]:
    """The year files as they are (a broken one raises its ScheduleError: fix it first)."""
    notices = (read_notice(path) for path in sorted(folder.glob("*.yaml")))
    return {notice.year: notice for notice in notices}


def read_notice_text(raw: str, folder: Path, published: date | None = None) -> ImportResult:
    return import_notice(raw, notices_on_file(folder), published)


def write_notice(folder: Path, result: ImportResult) -> Path:
    """Write the year file; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{result.notice.year}.yaml"
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(result.yaml)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def change_words(result: ImportResult) -> str:
    """新增 or 更新, as the summaries and the audit log say it."""
    return "更新" if result.previous is not None else "新增"

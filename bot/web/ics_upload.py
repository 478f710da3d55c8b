"""An uploaded .ics file: checked with the parser before anything is written, then saved under
schedules/ with a sanitised name (never outside that folder)."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from bot.errors import BotError, ScheduleError

MAX_BYTES = 5_000_000
_UNSAFE = re.compile(r"[^\w\-]+", re.UNICODE)


class UploadRefused(BotError):
    """The upload cannot be used; the message says why (and the line, for a broken calendar)."""


@dataclass(frozen=True)
class SavedCalendar:
    name: str
    path: Path
    replaced: bool
    events: int


def safe_name(original: str, fallback: str) -> str:
    """'../../etc/会议 日历.ics' → '会议_日历.ics'; nothing but letters, digits, _ and -."""
    stem = Path(original.replace("\\", "/")).name
    stem = stem[:-4] if stem.lower().endswith(".ics") else stem
    stem = _UNSAFE.sub("_", stem).strip("_.-")[:60]
    return f"{stem or fallback}.ics"


def decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise UploadRefused(f"文件过大（{len(data)} 字节，上限 {MAX_BYTES} 字节）")
    if not data.strip():
        raise UploadRefused("文件为空")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UploadRefused("文件编码无法识别。处理办法：以 UTF-8 编码重新导出该日历")


def check(text: str, name: str, today: date) -> int:
    """The number of events in the coming year; UploadRefused naming the line when broken."""
    from bot.calendars.ics import ics_events
    try:
        return len(ics_events(text, name, today - timedelta(days=31), today + timedelta(days=366)))
    except ScheduleError as exc:
        raise UploadRefused(str(exc)) from None
    except Exception as exc:  # the parser's own surprises must not be a 500 either
        raise UploadRefused(f"文件 {name}：无法解析的日历内容（{type(exc).__name__}）。"
                            "处理办法：用日历软件重新导出该日历（iCalendar .ics 格式）") from None


def save(folder: Path, name: str, text: str) -> tuple[Path, bool]:
    """Write atomically inside `folder`; (path, whether a file was replaced)."""
    folder = folder.resolve()
    path = (folder / name).resolve()
    if path.parent != folder:
        raise UploadRefused("文件名不合法")
    replaced = path.exists()
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path, replaced


def accept(folder: Path, original: str, data: bytes, today: date) -> SavedCalendar:
    name = safe_name(original, f"calendar-{today:%Y%m%d}")
    text = decode(data)
    events = check(text, name, today)
    path, replaced = save(folder, name, text)
    return SavedCalendar(name, path, replaced, events)

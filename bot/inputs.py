"""What the service reads: config.yaml, schedules/ and the meeting calendars (.ics files and URLs).

THE place that reads files and fetches calendar URLs, so that calendars/ and rules/ stay pure. A
calendar URL is fetched conditionally (ETag, Last-Modified) through ``bot.safe_fetch`` (no inside
addresses unless allowed by name, one deadline, a size limit while reading); on any failure the
last good copy is kept in data/ics-cache and the failure reported, never silently.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from bot.calendars.holiday_file import HolidayNotice, holiday_notice
from bot.calendars.holidays import HolidayCalendar
from bot.calendars.ics import parse_ics, redact_url
from bot.calendars.meeting_file import ics_file_names, meeting_schedule
from bot.calendars.meetings import MeetingSchedule
from bot.calendars.notice_import import ImportResult, import_notice
from bot.config import Settings, load_settings
from bot.errors import ScheduleError
from bot.plan import PlanInputs
from bot.rules.announcements import Announcement, announcements_from
from bot.rules.studies import StudySchedule, study_schedule
from bot.safe_fetch import Fetched, FetchError, fetch_url
from bot.templates.pool import shared_pool
from bot.templates.render import TemplateLibrary
from bot.yamlfile import load_yaml

log = logging.getLogger(__name__)

MAX_BYTES = 5_000_000
FETCH_TIMEOUT_S = 20  # one calendar URL, redirects included, start to end


@dataclass(frozen=True)
class Loaded:
    """One consistent, validated snapshot of config.yaml and schedules/."""

    settings: Settings
    calendar: HolidayCalendar
    meetings: Any
    studies: Any
    announcements: tuple[Announcement, ...]
    ics_texts: dict[str, str] = field(default_factory=dict)
    ics_errors: tuple[str, ...] = ()

    def plan_inputs(self, templates: TemplateLibrary | None = None) -> PlanInputs:
        """What the plan reads; the template files (rendered in the shared pool) unless a library is given."""
        return PlanInputs(settings=self.settings, calendar=self.calendar,
                          templates=templates or TemplateLibrary(self.settings.path("messages"), pool=shared_pool()),
                          meetings=self.meetings, ics_texts=self.ics_texts, studies=self.studies,
                          announcements=self.announcements)


def schedule_files(settings: Settings) -> list[Path]:
    """The files whose change means a reload (config, schedules, messages)."""
    files = [settings.source] if settings.source else []
    for folder in (settings.path("schedules"), settings.path("messages")):
        files += sorted(p for p in folder.rglob("*") if p.is_file())
    return files


def fingerprint(settings: Settings) -> str:
    digest = hashlib.sha256()
    for path in schedule_files(settings):
        stat = path.stat()
        digest.update(f"{path}:{stat.st_mtime_ns}:{stat.st_size}".encode())
    return digest.hexdigest()


def load_all(config_path: str | Path | None) -> Loaded:
    """Read and validate everything; raise BotError (naming file, line, fix) on the first problem."""
    settings = load_settings(config_path)
    schedules = settings.path("schedules")
    calendar = load_holidays(schedules / "holidays")
    meetings_file = schedules / "meetings.yaml"
    meetings = load_meetings(meetings_file, schedules) if meetings_file.exists() else None
    studies_file = schedules / "studies.yaml"
    branch_ids = [b.id for b in settings.organisation.branches]
    studies = load_studies(studies_file, branch_ids) if studies_file.exists() else None
    announcements = tuple(load_announcements(schedules / "announcements.yaml", settings))
    texts, errors = read_ics_sources(meetings, settings)
    return Loaded(settings, calendar, meetings, studies, announcements, texts, tuple(errors))


def read_ics_sources(meetings: Any, settings: Settings) -> tuple[dict[str, str], list[str]]:
    """The text of every .ics source; a URL that fails keeps its last good copy (and is reported)."""
    texts = read_ics_files(meetings) if meetings else {}
    errors: list[str] = []
    for source in getattr(meetings, "calendars", ()) or ():
        if source.url:
            result = fetch_ics(source.url, settings.path("data") / "ics-cache",
                               allowed_hosts=settings.calendars.allowed_hosts,
                               timeout=FETCH_TIMEOUT_S)
            if result.error:
                errors.append(result.error)
            if result.text is not None:
                texts[source.source_name] = result.text
    return texts, errors


# ---- schedule files: read here, checked by calendars/ and rules/ (errors name file and line) ----


def load_holidays(directory: Path) -> HolidayCalendar:
    """Every notice file ``schedules/holidays/<year>.yaml`` → the holiday calendar."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ScheduleError("节假日安排目录不存在", file=directory, fix="检查配置中的目录路径")
    return HolidayCalendar(read_notice(path) for path in sorted(directory.glob("*.yaml")))


def read_notice(path: Path) -> HolidayNotice:
    """One notice file, checked (errors name the file, the line and the fix)."""
    return holiday_notice(*load_yaml(path), path)


def load_meetings(path: Path, schedules_dir: Path) -> MeetingSchedule:
    """meetings.yaml and the .ics files it names (a missing one is reported at its line)."""
    data, lines = load_yaml(path)
    folder = Path(schedules_dir)
    texts = {name: (folder / name).read_text(encoding="utf-8")
             for name in ics_file_names(data) if (folder / name).is_file()}
    return meeting_schedule(data, lines, Path(path), folder, texts)


def load_studies(path: str | Path, branches: Collection[str] | None = None) -> StudySchedule:
    path = Path(path)
    return study_schedule(*load_yaml(path), path, branches)


def load_announcements(path: Path, settings: Settings) -> list[Announcement]:
    """The file if it exists (it is optional)."""
    if not path.exists():
        return []
    return announcements_from(*load_yaml(path), path, settings)


def read_ics_files(schedule: MeetingSchedule) -> dict[str, str]:
    """The texts of the file sources, keyed like ``expand_meetings`` wants them."""
    return {s.source_name: s.path.read_text(encoding="utf-8") for s in schedule.calendars if s.path is not None}


# ---- calendar URLs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchResult:
    text: str | None          # the calendar to use: fresh, or the last good copy; None if never fetched
    from_cache: bool
    error: str | None         # Chinese, for the administrators; None when the fetch went well


def fetch_ics(url: str, cache_dir: Path, *, allowed_hosts: Iterable[str] = (),
              timeout: float = 20) -> FetchResult:
    """Fetch a calendar URL conditionally (bounded by ``fetch_url``); on failure keep the last good copy."""
    cache = _Cache(Path(cache_dir), url)
    cached_text, meta = cache.read()
    validators = meta if cached_text is not None else {}
    try:
        fetched = fetch_url(url, allowed_hosts=allowed_hosts, timeout_s=timeout, max_bytes=MAX_BYTES,
                            etag=validators.get("etag"), last_modified=validators.get("last_modified"))
    except FetchError as exc:
        return _keep(cache, cached_text, str(exc))
    if fetched.status == 304 and cached_text is not None:
        return FetchResult(cached_text, True, None)
    return _accept(cache, cached_text, fetched)


def _accept(cache: _Cache, cached_text: str | None, fetched: Fetched) -> FetchResult:
    text = _decode(fetched.body)
    try:
        parse_ics(text, cache.shown_url)
    except ScheduleError:  # its message may quote the download: the remote's words stay out
        return _keep(cache, cached_text, "下载的内容不是有效的日历（iCalendar）")
    cache.write(text, {"etag": fetched.etag, "last_modified": fetched.last_modified})
    log.info("已获取日历 %s（%d 字节）", cache.shown_url, len(fetched.body))
    return FetchResult(text, False, None)


def _keep(cache: _Cache, cached_text: str | None, reason: str) -> FetchResult:
    kept = "继续使用上次成功获取的副本" if cached_text is not None else "此前没有成功获取过，该日历中的会议暂不提醒"
    error = f"获取日历 {cache.shown_url} 失败：{reason}；{kept}。处理办法：检查日历地址和网络，或联系日历发布方"
    log.warning("获取日历失败：%s（%s）", cache.shown_url, reason)
    return FetchResult(cached_text, cached_text is not None, error)


def _decode(content: bytes) -> str:
    # RFC 5545 says UTF-8, but some Chinese tools still export GB18030 (GBK).
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return content.decode("gb18030", errors="replace")


class _Cache:
    """The last good copy of one URL and its validators, as two files named after the URL's hash."""

    def __init__(self, directory: Path, url: str) -> None:
        name = hashlib.sha256(url.encode("utf-8")).hexdigest()[:24]
        self.text_path = directory / f"{name}.ics"
        self.meta_path = directory / f"{name}.json"
        self.shown_url = redact_url(url)

    def read(self) -> tuple[str | None, dict[str, str | None]]:
        try:
            text = self.text_path.read_text(encoding="utf-8")
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None, {}
        return text, meta

    def write(self, text: str, meta: dict[str, str | None]) -> None:
        self.text_path.parent.mkdir(parents=True, exist_ok=True)
        _replace(self.text_path, text)
        _replace(self.meta_path, json.dumps(meta, ensure_ascii=False))


def _replace(path: Path, text: str) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


# --- the holiday notices on file, for an import (CLI and console) ------------------------------

def holidays_folder(settings: Settings) -> Path:
    return settings.path("schedules") / "holidays"


def notices_on_file(folder: Path) -> dict[int, HolidayNotice]:
    """The year files as they are (a broken one raises its ScheduleError: fix it first)."""
    notices = (read_notice(path) for path in sorted(folder.glob("*.yaml")))
    return {notice.year: notice for notice in notices}


def read_notice_text(raw: str, folder: Path, published: date | None = None) -> ImportResult:
    """A notice's text read against the year files in ``folder`` (nothing written)."""
    return import_notice(raw, notices_on_file(folder), published)


def write_notice_file(folder: Path, year: int, text: str) -> Path:
    """Replace ``<folder>/<year>.yaml`` atomically (the file watch never reads half a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{year}.yaml"
    _replace(target, text)
    return target

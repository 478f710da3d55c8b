"""Meetings → the plan's occurrences: reminders before each meeting, one notice per change.

Pure: everything comes in as arguments, ``now`` included. Reminder ids are keyed on the meeting's
uid and the offset, never on the time, so a moved meeting's pending reminders move with it. A
change notice's id names the new start (or 'cancelled'), so the same change is announced once
and a second, different change is announced again.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.calendars.meetings import MeetingOccurrence, WorkdayCalendar
from bot.calendars.reminders import ReminderOffset
from bot.clock import BEIJING
from bot.errors import UnknownTarget
from bot.occurrence import Occurrence
from bot.templates.render import cn_date

WEEKDAYS = "一二三四五六日"


@dataclass(frozen=True)
class AnnouncedMeeting:
    """What a sent reminder told people about a meeting (built by the runtime from delivery meta)."""

    uid: str
    start: datetime
    end: datetime
    title: str
    location: str
    targets: tuple[str, ...]
    series_id: str = ""       # meta["series_id"]; needed only when the meeting is gone from the schedule


def plan_meetings(occurrences: Iterable[MeetingOccurrence], *, now: datetime, start: date, end: date,
                  calendar: WorkdayCalendar, branch_names: Mapping[str, str],
                  branch_targets: Mapping[str, tuple[str, ...]],
                  announced: Mapping[str, AnnouncedMeeting],
                  resolve: Callable[[Sequence[str]], tuple[str, ...]] | None = None) -> list[Occurrence]:
    """Reminders due in [start, end] after ``now``, and a notice for each announced meeting that changed.

    ``occurrences`` must be expanded over at least [start, end]: an announced meeting in that
    window that is missing from them counts as gone. ``resolve`` expands group names
    (``all_groups``) into target names; the notices go to the targets the reminders reached.
    """
    meetings = list(occurrences)
    planned: list[Occurrence] = []
    for meeting in meetings:
        if meeting.status == "confirmed":
            targets = meeting_targets(meeting, branch_targets)
            targets = resolve(targets) if resolve else targets
            planned.extend(_reminders(meeting, targets, now, start, end, calendar, branch_names))
    planned.extend(_changes(meetings, announced, now, start, end, branch_names))
    return sorted(planned, key=lambda o: (o.due_at, o.occurrence))


def meeting_targets(meeting: MeetingOccurrence, branch_targets: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The series' own `to:`, else its branch's targets."""
    if meeting.targets:
        return meeting.targets
    if meeting.branch is not None and branch_targets.get(meeting.branch):
        return tuple(branch_targets[meeting.branch])
    raise UnknownTarget(str(meeting.branch), f"会议 {meeting.series_id} 所属支部没有配置群")


# --- reminders ------------------------------------------------------------------------------------


def _reminders(meeting: MeetingOccurrence, targets: tuple[str, ...], now: datetime, start: date, end: date,
               calendar: WorkdayCalendar, branch_names: Mapping[str, str]) -> list[Occurrence]:
    seen: set[datetime] = set()
    planned = []
    for offset in meeting.reminders:
        due = offset.due(meeting.start, calendar)
        if due in seen or not (now < due < meeting.start and start <= due.date() <= end):
            continue
        seen.add(due)
        planned.append(_reminder(meeting, offset, due, targets, calendar, branch_names))
    return planned


def _reminder(meeting: MeetingOccurrence, offset: ReminderOffset, due: datetime, targets: tuple[str, ...],
              calendar: WorkdayCalendar, branch_names: Mapping[str, str]) -> Occurrence:
    unpublished = _unpublished_year(meeting, due, calendar)
    return Occurrence(
        rule=f"meeting:{meeting.series_id}", kind="meeting_reminder", occurrence=f"{meeting.uid}#{offset.label}",
        due_at=due, targets=targets, template="meeting_reminder",
        context={"meeting": meeting_context(meeting, branch_names, unpublished)},
        reason=f"{_origin(meeting)}：{meeting.title} {cn_moment(meeting.start)}{_moved(meeting, unpublished)}，"
               f"{offset.words}提醒",
        provisional=unpublished is not None, meta=_meta(meeting))


def _unpublished_year(meeting: MeetingOccurrence, due: datetime, calendar: WorkdayCalendar) -> int | None:
    """The year whose missing arrangement the meeting's or the reminder's day rests on, if any."""
    for day in (meeting.original_start.date(), meeting.start.astimezone(BEIJING).date(), due.date()):
        if not calendar.covers(day):
            return day.year
    return None


def _original_days(meeting: MeetingOccurrence) -> list[date]:
    first = [meeting.moved_from] if meeting.moved_from else []
    return first + [day for _, day in meeting.merged]


def _moved(meeting: MeetingOccurrence, unpublished: int | None) -> str:
    if not meeting.moved_from:
        return f"（{unpublished}年节假日安排未发布，日期暂定）" if unpublished else ""
    days = "、".join(cn_date(d) for d in _original_days(meeting))
    merged = "并合并为一次" if meeting.merged else ""
    if unpublished:
        return f"，原定{days}，暂按法定节假日推算顺延{merged}（{unpublished}年节假日安排未发布）"
    return f"，原定{days}，遇休息日顺延{merged}"


def holiday_note(meeting: MeetingOccurrence, unpublished: int | None) -> str:
    """The sentence a reminder says about holidays; a guess is said to be one, never stated as fact."""
    days = "、".join(cn_date(d) for d in _original_days(meeting))
    if unpublished is not None:
        moved = (f"暂按法定节假日推算，原定{days}的会议{'合并' if meeting.merged else '顺延'}至本日召开，"
                 if meeting.moved_from else "")
        return f"{unpublished}年节假日安排尚未发布，{moved}如有调整将另行通知。"
    if meeting.merged:
        return f"因节假日，原定{days}的会议合并于本日召开。"
    return f"因节假日，本次会议由{days}顺延。" if meeting.moved_from else ""


def _meta(meeting: MeetingOccurrence) -> dict[str, Any]:
    return {"meeting_uid": meeting.uid, "meeting_start": meeting.start.isoformat(),
            "meeting_end": meeting.end.isoformat(), "title": meeting.title, "location": meeting.location,
            "series_id": meeting.series_id}


def _origin(meeting: MeetingOccurrence) -> str:
    return f"日历 {meeting.source}" if meeting.series_id == "ics" else f"会议系列 {meeting.series_id}"


# --- change notices -------------------------------------------------------------------------------


def _changes(meetings: list[MeetingOccurrence], announced: Mapping[str, AnnouncedMeeting], now: datetime,
             start: date, end: date, branch_names: Mapping[str, str]) -> list[Occurrence]:
    by_uid = {m.uid: m for m in meetings}
    by_uid.update({uid: m for m in meetings for uid, _ in m.merged})  # merged: held, not cancelled
    notices = []
    for told in announced.values():
        current = by_uid.get(told.uid)
        if current is None and not start <= told.start.date() <= end:
            continue  # outside the expanded window: we cannot know whether it is gone
        if _changed(told, current) and max(told.start, current.start if current else told.start) > now:
            notices.append(_change(told, current, now, branch_names))
    return notices


def _changed(told: AnnouncedMeeting, current: MeetingOccurrence | None) -> bool:
    if current is None or current.status == "cancelled":
        return True
    return (current.start, current.end, current.location) != (told.start, told.end, told.location)


def _change(told: AnnouncedMeeting, current: MeetingOccurrence | None, now: datetime,
            branch_names: Mapping[str, str]) -> Occurrence:
    live = current if current is not None and current.status == "confirmed" else None
    new_start = live.start.isoformat() if live else ""
    key = f"{told.uid}!change:{new_start or 'cancelled'}"
    if live and live.location != told.location:
        key += f"@{live.location}"  # a new place at the same time is a change of its own
    series_id = current.series_id if current else (told.series_id or "ics")
    what = f"改为{cn_moment(live.start)}" if live and live.start != told.start else "已取消" if not live else "有变更"
    return Occurrence(
        rule=f"meeting:{series_id}", kind="meeting_change", occurrence=key, due_at=now,
        targets=told.targets, template="meeting_change",
        context={"meeting": meeting_context(current, branch_names) if current else _told_context(told),
                 "change": change_context(told, live)},
        reason=f"{'会议系列 ' + series_id if series_id != 'ics' else '日历'}：{told.title} 原定{cn_moment(told.start)}，{what}",
        meta={"meeting_uid": told.uid, "meeting_start": new_start,
              "meeting_end": live.end.isoformat() if live else "", "title": told.title,
              "location": live.location if live else told.location, "series_id": series_id,
              "cancelled": live is None})


# --- template context -----------------------------------------------------------------------------


def meeting_context(meeting: MeetingOccurrence, branch_names: Mapping[str, str],
                    unpublished: int | None = None) -> dict[str, Any]:
    """The `meeting` variable of the templates: plain strings only (``unpublished``: see holiday_note)."""
    start, end = meeting.start.astimezone(BEIJING), meeting.end.astimezone(BEIJING)
    return {
        "title": meeting.title, "kind": meeting.kind, "start": start.isoformat(), "end": end.isoformat(),
        "date": start.date().isoformat(), "start_time": "" if meeting.all_day else f"{start:%H:%M}",
        "end_time": "" if meeting.all_day else f"{end:%H:%M}", "location": meeting.location,
        "video": meeting.video, "host": meeting.host, "agenda": meeting.agenda,
        "branch": branch_names.get(meeting.branch or "", ""),
        "moved_from": meeting.moved_from.isoformat() if meeting.moved_from else "",
        "holiday_note": holiday_note(meeting, unpublished),
    }


def _told_context(told: AnnouncedMeeting) -> dict[str, Any]:
    start, end = told.start.astimezone(BEIJING), told.end.astimezone(BEIJING)
    return {"title": told.title, "kind": "", "start": start.isoformat(), "end": end.isoformat(),
            "date": start.date().isoformat(), "start_time": f"{start:%H:%M}", "end_time": f"{end:%H:%M}",
            "location": told.location, "video": "", "host": "", "agenda": "", "branch": "", "moved_from": "",
            "holiday_note": ""}


def change_context(told: AnnouncedMeeting, live: MeetingOccurrence | None) -> dict[str, Any]:
    """The `change` variable: old and new time and place; empty new time when cancelled."""
    return {"old_start": told.start.isoformat(), "old_end": told.end.isoformat(),
            "new_start": live.start.isoformat() if live else "", "new_end": live.end.isoformat() if live else "",
            "cancelled": live is None, "old_location": told.location,
            "new_location": live.location if live else ""}


def sample_meeting_context() -> dict[str, Any]:
    return {"meeting": {
        "title": "第一党支部支委会", "kind": "支委会", "start": "2026-03-06T14:30:00+08:00",
        "end": "2026-03-06T16:00:00+08:00", "date": "2026-03-06", "start_time": "14:30", "end_time": "16:00",
        "location": "三楼会议室", "video": "https://meeting.tencent.com/dm/example", "host": "张三",
        "agenda": "研究部署本月支部工作", "branch": "第一党支部", "moved_from": "2026-03-05",
        "holiday_note": "因节假日，本次会议由3月5日（周四）顺延。"}}


def sample_change_context() -> dict[str, Any]:
    return {**sample_meeting_context(), "change": {
        "old_start": "2026-03-06T14:30:00+08:00", "old_end": "2026-03-06T16:00:00+08:00",
        "new_start": "2026-03-09T15:00:00+08:00", "new_end": "2026-03-09T16:30:00+08:00",
        "cancelled": False, "old_location": "三楼会议室", "new_location": "五楼党员活动室"}}


def cn_moment(moment: datetime) -> str:
    """2026年3月6日（周五）14:30"""
    local = moment.astimezone(BEIJING)
    return f"{local.year}年{local.month}月{local.day}日（周{WEEKDAYS[local.weekday()]}）{local:%H:%M}"


# --- compliance (三会一课) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    kind: str
    period: str                 # monthly | quarterly
    aliases: tuple[str, ...] = ()

    @property
    def words(self) -> str:
        return "每月至少1次（全年不少于12次）" if self.period == "monthly" else "每季度至少1次（全年不少于4次）"


REQUIREMENTS = (
    Requirement("支部党员大会", "quarterly", ("党员大会", "支部大会")),
    Requirement("支委会", "monthly", ("支部委员会", "支部委员会会议")),
    Requirement("党小组会", "monthly"),
    Requirement("党课", "quarterly"),
)


@dataclass(frozen=True)
class ComplianceRow:
    branch: str
    branch_name: str
    kind: str
    requirement: str
    count: int
    missing: tuple[str, ...]    # '3月' or '第二季度' without a meeting
    message: str                # '' when the requirement is met

    @property
    def ok(self) -> bool:
        return not self.missing


def meeting_compliance(occurrences: Iterable[MeetingOccurrence], year: int,
                       branches: Mapping[str, str]) -> list[ComplianceRow]:
    """One row per branch and 三会一课 kind: held (not cancelled) meetings of the year against the rule."""
    held = [m for m in occurrences if m.status == "confirmed" and m.start.astimezone(BEIJING).year == year]
    return [_row(branch, name, need, held) for branch, name in branches.items() for need in REQUIREMENTS]


def _row(branch: str, name: str, need: Requirement, held: list[MeetingOccurrence]) -> ComplianceRow:
    months = [m.start.astimezone(BEIJING).month for m in held
              if m.branch == branch and (m.kind == need.kind or m.kind in need.aliases)]
    if need.period == "monthly":
        missing = tuple(f"{n}月" for n in range(1, 13) if n not in months)
    else:
        quarters = {(n - 1) // 3 for n in months}
        missing = tuple(f"第{'一二三四'[q]}季度" for q in range(4) if q not in quarters)
    message = f"{'、'.join(missing)}未安排{need.kind}" if missing else ""
    return ComplianceRow(branch, name, need.kind, need.words, len(months), missing, message)


def format_compliance(rows: Iterable[ComplianceRow]) -> str:
    """A plain-text table for the terminal, columns aligned for Chinese characters."""
    table = [("支部", "会议", "要求", "已安排", "情况")]
    table += [(r.branch_name or r.branch, r.kind, r.requirement, f"{r.count}次", r.message or "符合要求")
              for r in rows]
    widths = [max(_width(row[i]) for row in table) for i in range(5)]
    lines = ["  ".join(_pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))

"""Calendars: holiday data per year (and what is missing), meeting series, .ics upload."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import redirect, render_template, request, url_for

from bot.calendars.holiday_file import FESTIVAL_NAMES
from bot.calendars.holiday_status import holiday_alert
from bot.calendars.meeting_file import POLICIES
from bot.holiday_watch import read_candidate, watched_year
from bot.plan import PlanState, plan_occurrences
from bot.store.confirmations import confirmed_item_branches
from bot.web.common import (
    console,
    mask_secrets,
    notice,
    now,
    parse_day,
    parse_int,
    record,
    runtime,
    settings,
    today,
)
from bot.web.ics_upload import UploadRefused, accept
from bot.web.year_calendar import WEEK_HEADER, by_day, period_span, year_grid


def holiday_years() -> list[dict[str, Any]]:
    calendar = runtime().calendar()
    years = []
    for year in sorted(calendar.years, reverse=True):
        notice_info = calendar.notice(year)
        years.append({"year": year, "title": notice_info["title"], "published": notice_info["published"],
                      "amendments": notice_info["amendments"], "periods": calendar.periods(year)})
    return years


def watch_candidate() -> dict[str, Any] | None:
    """A notice the daily watch found for a missing year, waiting for confirmation."""
    year = watched_year(runtime().calendar().years, today())
    text = read_candidate(settings().path("data"), year) if year is not None else None
    return {"year": year, "text": text} if text else None


def meeting_sources() -> tuple[list[Any], list[Any]]:
    meetings = runtime().meetings()
    if meetings is None:
        return [], []
    return list(meetings.series), list(meetings.calendars)


def year_view(year: int, chosen: date | None) -> dict[str, Any]:
    """The year's month grids with the sends planned on each day, and the chosen day's sends."""
    rt = runtime()
    start, end = date(year, 1, 1), date(year, 12, 31)
    state = PlanState(confirmed=frozenset(confirmed_item_branches(rt.store)))  # what matters here: who confirmed
    days = by_day(plan_occurrences(rt.plan_inputs(), start, end, now(), state))
    counts = {day: len(found) for day, found in days.items()}
    chosen = chosen if chosen is not None and chosen.year == year else None
    return {"year": year, "months": year_grid(rt.calendar(), year, counts, today()), "week_header": WEEK_HEADER,
            "day_url": url_for("console.calendars", year=year) + "&day=",
            "chosen": chosen, "chosen_sends": days.get(chosen, []) if chosen else [],
            "years_shown": sorted(set(rt.calendar().years) | {today().year, today().year + 1})}


def render_calendars(status: int = 200, upload_error: str | None = None, import_error: str | None = None,
                     import_text: str = "") -> Any:
    series, sources = meeting_sources()
    branches = {b.id: b.name for b in settings().organisation.branches}
    chosen = parse_day(request.args.get("day"))
    year = parse_int(request.args.get("year"), chosen.year if chosen else today().year, 2000, 2100)
    return render_template(
        "calendars.html", grid=year_view(year, chosen), years=holiday_years(), period_span=period_span,
        alert=holiday_alert(runtime().calendar().years, today()),
        series=series, sources=sources, branches=branches, policies=POLICIES, festivals=FESTIVAL_NAMES,
        upload_error=upload_error, import_error=import_error, import_text=import_text,
        watched=watch_candidate(),
        ics_errors=[mask_secrets(e) for e in runtime().loaded().ics_errors],
        reload_error=mask_secrets(runtime().last_reload_error) if runtime().last_reload_error else None,
        meetings_loaded=runtime().meetings() is not None), status


@console.get("/calendars")
def calendars() -> Any:
    return render_calendars()


@console.post("/calendars/upload")
def calendar_upload() -> Any:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_calendars(422, "请选择要上传的 .ics 文件。")
    rt = runtime()
    try:
        saved = accept(rt.settings().path("schedules"), upload.filename, upload.read(), today())
    except UploadRefused as exc:
        return render_calendars(422, f"日历文件未被采用，未写入任何内容。原因：{exc}")
    record("上传日历文件", f"schedules/{saved.name}", before="覆盖原有文件" if saved.replaced else None,
           after=f"{saved.events} 个日程（未来一年）")
    rt.reload_if_changed()
    rt.request_replan()
    _tell_result(saved.name, saved.events)
    return redirect(url_for("console.calendars"))


def _tell_result(name: str, events: int) -> None:
    rt = runtime()
    if rt.last_reload_error:
        notice(f"已保存 schedules/{name}，但重新加载日程时发现问题：{mask_secrets(rt.last_reload_error)}", "danger")
        return
    used = any(s.path is not None and s.path.name == name for s in meeting_sources()[1])
    tail = "已重新加载，会议提醒将按新日历生成。" if used else \
        "该文件尚未在 schedules/meetings.yaml 的 calendars 中引用，引用后才会据此生成会议提醒。"
    notice(f"已保存 schedules/{name}（未来一年共 {events} 个日程）。{tail}", "success")

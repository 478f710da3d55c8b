"""Importing the State Council's notice in the console: paste or upload, preview, confirm.

The preview shows the arrangement as month grids and what it changes in the plan (the same
window planned with and without it). Saving re-reads the same text and writes only if the result
is still the one previewed; it is audited and the service re-plans at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from flask import redirect, render_template, request, url_for

from bot.calendars.holidays import HolidayCalendar
from bot.calendars.notice_checks import NoticeRefused
from bot.calendars.notice_import import ImportResult, period_line
from bot.errors import BotError
from bot.holiday_watch import candidate_path
from bot.inputs import holidays_folder, notices_on_file, read_notice_text, write_notice_file
from bot.plan import build_plan, plan_changes
from bot.web.common import console, mask_secrets, notice, now, record, runtime, settings, today
from bot.web.views_calendars import render_calendars
from bot.web.year_calendar import WEEK_HEADER, notice_grids

MAX_NOTICE_BYTES = 512 * 1024  # a saved news page with its scripts fits; a stray video does not


def _folder() -> Path:
    return holidays_folder(settings())


def _digest(result: ImportResult) -> str:
    return hashlib.sha256(result.yaml.encode("utf-8")).hexdigest()


def _submitted_text() -> str:
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        data = upload.read(MAX_NOTICE_BYTES + 1)
        if len(data) > MAX_NOTICE_BYTES:
            raise BotError("上传的文件超过 512 KB，不像是一份通知。处理办法：只复制通知全文粘贴到文本框")
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BotError("上传的文件不是 UTF-8 编码的文本或网页。处理办法：另存为 UTF-8 后再上传，或直接粘贴全文") from None
    return request.form.get("text", "")


def _changes(result: ImportResult) -> Any:
    """The plan from today to the end of the notice's year, without and with the notice."""
    start = today()
    end = max(date(result.notice.year, 12, 31), start)
    others = [n for year, n in notices_on_file(_folder()).items() if year != result.notice.year]
    inputs, state, moment = runtime().plan_inputs(), runtime().plan_state(), now()
    after_inputs = replace(inputs, calendar=HolidayCalendar([*others, result.notice]))
    before = build_plan(inputs, start, end, moment, state)
    return plan_changes(before, build_plan(after_inputs, start, end, moment, state)), start, end


@console.post("/calendars/notice/preview")
def notice_preview() -> Any:
    text = ""
    try:
        text = _submitted_text()
        if not text.strip():
            raise BotError("请粘贴通知全文或选择通知文件。")
        result = read_notice_text(text, _folder())
    except BotError as exc:
        return render_calendars(422, import_error=mask_secrets(str(exc)), import_text=text)
    changes, start, end = _changes(result)
    return render_template("notice_preview.html", result=result, lines=result.summary(), text=text,
                           digest=_digest(result), grids=notice_grids(result.notice), week_header=WEEK_HEADER,
                           changes=changes, start=start, end=end, verb=result.verb)


@console.post("/calendars/notice/save")
def notice_save() -> Any:
    text = request.form.get("text", "")
    try:
        result = read_notice_text(text, _folder())
    except (NoticeRefused, BotError) as exc:
        return render_calendars(422, import_error=mask_secrets(str(exc)), import_text=text)
    if _digest(result) != request.form.get("digest"):
        return render_calendars(409, import_error="节假日安排文件在预览之后已有变化，未保存。请重新预览后再确认。",
                                import_text=text)
    path = write_notice_file(_folder(), result.notice.year, result.yaml)
    candidate_path(settings().path("data"), result.notice.year).unlink(missing_ok=True)
    _record(result, path)
    rt = runtime()
    rt.reload_if_changed()
    rt.request_replan()
    if rt.last_reload_error:
        notice(f"已保存 {path.name}，但重新加载日程时发现问题：{mask_secrets(rt.last_reload_error)}", "danger")
    else:
        notice(f"已{result.verb} schedules/holidays/{path.name}，发送计划已按新安排重新排期。", "success")
    return redirect(url_for("console.calendars"))


def _record(result: ImportResult, path: Path) -> None:
    head = result.amendment.title if result.amendment else result.notice.title
    before = "\n".join(period_line(p) for p in result.previous.periods) if result.previous else None
    after = "\n".join([head, *(period_line(p) for p in result.notice.periods)])
    record(f"导入国务院节假日通知（{result.verb}）", f"schedules/holidays/{path.name}", before, after)

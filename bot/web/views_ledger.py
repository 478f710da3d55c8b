"""The study ledger (学习台账): items × branches (20 branches a page), complete exports, and
confirmations recorded by hand."""

from __future__ import annotations

import io
import logging
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import abort, g, redirect, render_template, request, send_file, url_for

from bot import reports
from bot.inbox.callback import close_cards
from bot.inbox.ledger import report_rows
from bot.store.confirmations import ConfirmResult, confirm
from bot.web.charts import Bar, stacked_bars
from bot.web.common import actor, console, notice, now, page_of, parse_int, record, runtime, settings

log = logging.getLogger(__name__)
BRANCHES_PER_PAGE = 20
STATUS = {"confirmed": "已确认", "late": "逾期确认", "pending": "待确认", "missing": "未完成"}
NO_STUDIES = "尚未配置学习内容（schedules/studies.yaml 不存在），台账为空。"
MEDIA = {"csv": "text/csv; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _years(schedule: Any) -> list[int]:
    zone = settings().zone
    return sorted({i.publish_at.astimezone(zone).year for i in schedule.items} | {now().year}, reverse=True)


def _rows(year: int) -> list[Any]:
    return report_rows(runtime().store, settings(), runtime().studies(), now(), year=year)


@dataclass(frozen=True)
class Cell:
    status: str
    label: str
    detail: str          # '05-20 10:00' or '05-20 10:00 补录'
    confirm_url: str | None


def branch_columns(rows: list[Any]) -> list[tuple[str, str]]:
    """The branches (id, name) the rows cover, in config order."""
    present = {row.branch for row in rows}
    return [(b.id, b.name) for b in settings().organisation.branches if b.id in present]


def matrix(rows: list[Any], branch_ids: list[str], page: int) -> list[tuple[Any, list[Cell | None]]]:
    """One line per item: (its first row, a cell per branch of the page, in column order)."""
    shown = set(branch_ids)
    lines: dict[str, tuple[Any, dict[str, Cell]]] = {}
    base = url_for("console.ledger_confirm_form")
    can_change = g.user.can_change
    for row in rows:
        line = lines.setdefault(row.item, (row, {}))
        if row.branch in shown:
            url = None
            if row.confirmed_at is None and can_change:
                url = f"{base}?{urlencode({'item': row.item, 'branch': row.branch, 'page': page})}"
            line[1][row.branch] = Cell(row.status, STATUS[row.status], _detail(row), url)
    return [(first, [cells.get(b) for b in branch_ids]) for first, cells in lines.values()]


def _detail(row: Any) -> str:
    if row.confirmed_at is None:
        return ""
    at = row.confirmed_at.astimezone(settings().zone)
    if row.source == "manual":  # recorded by an administrator (named in the audit log)
        return f"{at:%m-%d %H:%M} 补录"
    return f"{at:%m-%d %H:%M} {row.confirmed_by}" if row.confirmed_by else f"{at:%m-%d %H:%M}"


def chart_bars(rows: list[Any]) -> tuple[list[Bar], list[Bar]]:
    """(one bar per branch in config order, one bar per item in publication order) over the year's rows."""
    by_branch: dict[str, Counter[str]] = {}
    by_item: dict[str, tuple[str, Counter[str]]] = {}
    for row in rows:
        by_branch.setdefault(row.branch, Counter())[row.status] += 1
        by_item.setdefault(row.item, (row.title, Counter()))[1][row.status] += 1
    branches = [Bar(name, dict(by_branch[b])) for b, name in branch_columns(rows)]
    return branches, [Bar(title, dict(counts)) for title, counts in by_item.values()]


@console.get("/ledger")
def ledger_page() -> Any:
    schedule = runtime().studies()
    if schedule is None:
        return render_template("ledger.html", unavailable=NO_STUDIES)
    year = parse_int(request.args.get("year"), now().year, 2000, 2100)
    rows = _rows(year)
    branches = branch_columns(rows)
    page = page_of(request.args.get("page"), len(branches), BRANCHES_PER_PAGE)
    shown = branches[page.offset:page.offset + page.size]
    lines = matrix(rows, [b for b, _ in shown], page.number)
    branch_bars, item_bars = chart_bars(rows)
    return render_template("ledger.html", unavailable=None, year=year, years=_years(schedule), lines=lines,
                           branches=shown, page=page, summary=reports.summarize(rows),
                           branch_chart=stacked_bars(branch_bars, f"{year}年各支部学习完成情况"),
                           item_chart=stacked_bars(item_bars, f"{year}年各期学习完成情况"))


@console.get("/ledger/export.<fmt>")
def ledger_export(fmt: str) -> Any:
    if fmt not in MEDIA:
        abort(404)
    if runtime().studies() is None:
        abort(409, NO_STUDIES)
    year = parse_int(request.args.get("year"), now().year, 2000, 2100)
    rows = _rows(year)
    data = _export_bytes(fmt, rows, year)
    name = f"学习台账-{year}年.{fmt}"
    return send_file(io.BytesIO(data), mimetype=MEDIA[fmt], as_attachment=True, download_name=name)


def _export_bytes(fmt: str, rows: list[Any], year: int) -> bytes:
    summary = reports.summarize(rows)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"ledger.{fmt}"
        if fmt == "csv":
            reports.write_csv(path, rows, summary)
        else:
            title = f"{settings().organisation.name}{year}年学习台账"
            reports.write_xlsx(path, rows, summary, title=title, generated_at=now())
        return path.read_bytes()


def _item_and_branch(source: Any) -> tuple[Any, Any]:
    schedule = runtime().studies()
    item = schedule.get(source.get("item", "")) if schedule is not None else None
    if item is None:
        abort(404, "该学习内容不存在。")
    branch = next((b for b in item.branches(settings()) if b.id == source.get("branch", "")), None)
    if branch is None:
        abort(404, "该支部不在此学习内容的范围内。")
    return item, branch


@console.get("/ledger/confirm")
def ledger_confirm_form() -> Any:
    item, branch = _item_and_branch(request.args)
    return render_template("ledger_confirm.html", item=item, branch=branch, error=None, reason="",
                           by=branch.secretary.name, at=now().strftime("%Y-%m-%dT%H:%M"), page=_branch_page(), back=_back(item))


def _branch_page() -> int:
    """The page of branches the administrator came from (carried through the form)."""
    return parse_int(request.values.get("page"), 1)


def _back(item: Any) -> str:
    year = item.publish_at.astimezone(settings().zone).year
    return url_for("console.ledger_page", year=year, page=_branch_page())


def _parse_moment(text: str) -> datetime | None:
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M").replace(tzinfo=settings().zone)
    except ValueError:
        return None


def _close_cards(result: ConfirmResult, userid: str) -> None:
    """The secretary's study cards lose their live button, as when the secretary confirms."""
    rt = runtime()
    store, settings_now, at = rt.store, rt.settings(), rt.clock.now()
    rt.after_response(lambda: close_cards(store, settings_now, userid, [result], None, at))


def _form_error(reason: str, by: str, at: datetime | None) -> str | None:
    if not reason:
        return "请填写补录原因（如：线下已学习，书记未在企业微信中确认）。"
    if not by:
        return "请填写确认人。"
    if at is None:
        return "确认时间格式不正确。"
    if at > now():
        return "确认时间不能晚于当前时间。"
    return None


@console.post("/ledger/confirm")
def ledger_confirm() -> Any:
    item, branch = _item_and_branch(request.form)
    reason = request.form.get("reason", "").strip()[:500]
    by = request.form.get("by", "").strip()[:100]
    at = _parse_moment(request.form.get("at", ""))
    error = _form_error(reason, by, at)
    if error:
        return render_template("ledger_confirm.html", item=item, branch=branch, error=error, reason=reason,
                               by=by, at=request.form.get("at", ""), page=_branch_page(), back=_back(item)), 422
    result = confirm(runtime().store, item.id, branch.id, by, at, "manual", note=reason,
                     recorded_by=actor(), deadline=item.deadline)
    if not result.created:
        notice(f"{branch.name}已于 {result.confirmed_at:%Y-%m-%d %H:%M} 确认“{item.title}”，未作更改。", "info")
        return redirect(_back(item))
    record("补录学习确认", f"{item.title} · {branch.name}", before="未确认",
           after=f"{by} {at:%Y-%m-%d %H:%M} 确认{'（逾期）' if result.late else ''}；原因：{reason}")
    runtime().request_replan()  # the branch's pending nudges are no longer needed
    _close_cards(result, branch.secretary.userid)
    notice(f"已补录{branch.name}对“{item.title}”的学习确认。", "success")
    return redirect(_back(item))

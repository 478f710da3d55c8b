"""The study ledger as the office reads it: summary figures, a text table, CSV, Excel and JSON.

CSV is written with a BOM so that Excel opens the Chinese correctly; the Excel file has a title,
Chinese headers, widths, a frozen header and a landscape, fit-to-width print setup.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.clock import BEIJING
from bot.csv_files import safe_cell, write_rows
from bot.inbox.ledger import ReportRow
from bot.store.confirmations import SOURCE_LABELS

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

STATUS_LABELS = {"confirmed": "按时完成", "late": "逾期完成", "pending": "未完成（未到截止时间）",
                 "missing": "逾期未完成"}
HEADERS = ("学习内容", "期号", "支部", "支部书记", "截止时间", "完成情况", "确认时间", "确认人", "确认方式", "备注")
WIDTHS = (34, 6, 14, 10, 18, 20, 18, 12, 12, 24)


@dataclass(frozen=True)
class Figures:
    """Counts over (item, branch) pairs; the on-time rate leaves out pairs still before their deadline."""

    total: int
    confirmed: int
    late: int
    pending: int
    missing: int

    @property
    def on_time_rate(self) -> float | None:
        decided = self.total - self.pending
        return self.confirmed / decided if decided else None


@dataclass(frozen=True)
class ItemSummary:
    item: str
    title: str
    figures: Figures


@dataclass(frozen=True)
class YearSummary:
    year: int
    series: str | None
    items: int
    figures: Figures

    @property
    def sentence(self) -> str:
        """'2026年全年学习《警示教育通报》12期，各支部按时完成率98%'"""
        what = f"《{self.series}》{self.items}期" if self.series else f"学习材料{self.items}项"
        return f"{self.year}年全年学习{what}，各支部按时完成率{percent(self.figures.on_time_rate)}"

    @property
    def report_sentence(self) -> str:
        """The sentence with its figures, to paste into a report."""
        f = self.figures
        tail = f"；另有{f.pending}支部次未到截止时间" if f.pending else ""
        return (f"{self.sentence}（应完成{f.total - f.pending}支部次，按时完成{f.confirmed}，逾期完成{f.late}，"
                f"逾期未完成{f.missing}{tail}）。")


@dataclass(frozen=True)
class ReportSummary:
    items: tuple[ItemSummary, ...]
    years: tuple[YearSummary, ...]


def figures(rows: Sequence[ReportRow]) -> Figures:
    count = {status: sum(1 for r in rows if r.status == status) for status in STATUS_LABELS}
    return Figures(len(rows), count["confirmed"], count["late"], count["pending"], count["missing"])


def summarize(rows: Sequence[ReportRow]) -> ReportSummary:
    by_item: dict[str, list[ReportRow]] = {}
    by_year: dict[tuple[int, str | None], list[ReportRow]] = {}
    for row in rows:
        by_item.setdefault(row.item, []).append(row)
        by_year.setdefault((row.year, row.series), []).append(row)
    items = tuple(ItemSummary(k, v[0].title, figures(v)) for k, v in by_item.items())
    years = tuple(YearSummary(year, series, len({r.item for r in v}), figures(v))
                  for (year, series), v in sorted(by_year.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")))
    return ReportSummary(items, years)


def percent(rate: float | None) -> str:
    """0.98 → '98%', 0.9833 → '98.3%', None → '—'."""
    if rate is None:
        return "—"
    value = rate * 100
    return f"{value:.0f}%" if abs(value - round(value)) < 0.05 else f"{value:.1f}%"


def _time(value: datetime | None) -> str:
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") if value else ""


def cells(row: ReportRow) -> list[str]:
    """One row as the office reads it, in HEADERS order."""
    return [row.title, "" if row.number is None else str(row.number), row.branch_name, row.secretary,
            _time(row.deadline), STATUS_LABELS[row.status], _time(row.confirmed_at), row.confirmed_by or "",
            SOURCE_LABELS.get(row.source or "", ""), row.note or ""]


# ---- text -----------------------------------------------------------------------------------


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def format_report(rows: Sequence[ReportRow], summary: ReportSummary) -> str:
    """A plain-text table for the terminal, followed by the figures per item and per year."""
    if not rows:
        return "没有符合条件的学习记录。"
    table = [list(HEADERS[:8])] + [cells(r)[:8] for r in rows]
    widths = [max(_width(line[c]) for line in table) for c in range(8)]
    lines = ["  ".join(_pad(v, w) for v, w in zip(line, widths, strict=True)).rstrip() for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    for item in summary.items:
        f = item.figures
        lines.append(f"{item.title}：应完成{f.total}个支部，按时完成{f.confirmed}个，逾期完成{f.late}个，"
                     f"未完成{f.pending + f.missing}个（其中逾期{f.missing}个）")
    lines.extend(year.sentence for year in summary.years)
    return "\n".join(lines)


def report_json(rows: Sequence[ReportRow]) -> list[dict[str, Any]]:
    """For ``report --json``: times as ISO strings with +08:00, or null."""
    return [{"item": r.item, "title": r.title, "number": r.number, "year": r.year, "branch": r.branch,
             "branch_name": r.branch_name, "status": r.status, "deadline": r.deadline.isoformat(),
             "confirmed_at": r.confirmed_at.astimezone(BEIJING).isoformat() if r.confirmed_at else None,
             "confirmed_by": r.confirmed_by, "source": r.source, "note": r.note} for r in rows]


# ---- files ----------------------------------------------------------------------------------


def write_csv(path: str | Path, rows: Sequence[ReportRow], summary: ReportSummary | None = None) -> Path:
    """UTF-8 with BOM, Chinese headers; the yearly sentences follow the table after a blank line."""
    path = Path(path)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        write_rows(handle, HEADERS, [cells(r) for r in rows])
        if summary and summary.years:
            write_rows(handle, [], [[year.sentence] for year in summary.years])
    return path


def write_xlsx(path: str | Path, rows: Sequence[ReportRow], summary: ReportSummary, title: str = "学习台账",
               generated_at: datetime | None = None) -> Path:
    """An Excel file an office prints: the ledger sheet and a summary sheet (title, widths, A4 landscape).

    openpyxl is imported here, not with the module: `run` rarely exports, and it costs ~20 MB and a
    tenth of a second at every start."""
    from openpyxl import Workbook
    book = Workbook()
    ledger = book.active
    assert ledger is not None
    ledger.title = "学习台账"
    subtitle = f"统计时间：{_time(generated_at)}" if generated_at else ""
    _table(ledger, title, subtitle, HEADERS, [cells(r) for r in rows], WIDTHS)
    _summary_sheet(book.create_sheet("汇总"), title, summary)
    path = Path(path)
    book.save(path)
    return path


HEADER_FILL = "D9D9D9"
RULE_COLOUR = "999999"


def _summary_sheet(sheet: Worksheet, title: str, summary: ReportSummary) -> None:
    from openpyxl.styles import Font
    headers = ("学习内容", "应完成支部", "按时完成", "逾期完成", "未到截止", "逾期未完成", "按时完成率")
    body = [[i.title, i.figures.total, i.figures.confirmed, i.figures.late, i.figures.pending, i.figures.missing,
             percent(i.figures.on_time_rate)] for i in summary.items]
    _table(sheet, f"{title}汇总", "", headers, body, (34, 12, 10, 10, 10, 12, 12))
    row = sheet.max_row + 2
    for year in summary.years:
        sheet.cell(row=row, column=1, value=safe_cell(year.sentence)).font = Font(bold=True)
        row += 1


def _table(sheet: Worksheet, title: str, subtitle: str, headers: Sequence[str], body: Sequence[Sequence[Any]],
           widths: Sequence[int]) -> None:
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter
    thin = Side(style="thin", color=RULE_COLOUR)
    border, fill = Border(left=thin, right=thin, top=thin, bottom=thin), PatternFill("solid", fgColor=HEADER_FILL)
    last = get_column_letter(len(headers))
    sheet.append([safe_cell(title)])
    sheet.merge_cells(f"A1:{last}1")
    sheet["A1"].font = Font(bold=True, size=16)
    sheet["A1"].alignment = Alignment(horizontal="center", vertical="center")
    sheet.row_dimensions[1].height = 30
    sheet.append([safe_cell(subtitle)])
    sheet.merge_cells(f"A2:{last}2")
    sheet.append(list(headers))
    for cell in sheet[3]:
        cell.font, cell.fill, cell.border = Font(bold=True), fill, border
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for values in body:  # people's words (a 确认人 may write =HYPERLINK(…)) never become formulas
        sheet.append([safe_cell(value) for value in values])
        for cell in sheet[sheet.max_row]:
            cell.border, cell.alignment = border, Alignment(vertical="center", wrap_text=True)
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    _print_setup(sheet)


def _print_setup(sheet: Worksheet) -> None:
    sheet.freeze_panes = "A4"
    sheet.print_title_rows = "3:3"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_options.horizontalCentered = True

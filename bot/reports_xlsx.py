"""The study ledger as an Excel workbook an office prints: title, headers, widths, A4 landscape."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.reports import HEADERS, WIDTHS, ReportRow, ReportSummary, _time, cells, percent

_THIN = Side(style="thin", color="999999")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEADER_FILL = PatternFill("solid", fgColor="D9D9D9")


def write_workbook(path: str | Path, rows: Sequence[ReportRow], summary: ReportSummary, title: str,
                   generated_at: datetime | None) -> Path:
    """An Excel file an office prints: the ledger sheet and a summary sheet."""
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


def _summary_sheet(sheet: Worksheet, title: str, summary: ReportSummary) -> None:
    headers = ("学习内容", "应完成支部", "按时完成", "逾期完成", "未到截止", "逾期未完成", "按时完成率")
    body = [[i.title, i.figures.total, i.figures.confirmed, i.figures.late, i.figures.pending, i.figures.missing,
             percent(i.figures.on_time_rate)] for i in summary.items]
    _table(sheet, f"{title}汇总", "", headers, body, (34, 12, 10, 10, 10, 12, 12))
    row = sheet.max_row + 2
    for year in summary.years:
        sheet.cell(row=row, column=1, value=year.sentence).font = Font(bold=True)
        row += 1


def _table(sheet: Worksheet, title: str, subtitle: str, headers: Sequence[str], body: Sequence[Sequence[Any]],
           widths: Sequence[int]) -> None:
    last = get_column_letter(len(headers))
    sheet.append([title])
    sheet.merge_cells(f"A1:{last}1")
    sheet["A1"].font = Font(bold=True, size=16)
    sheet["A1"].alignment = Alignment(horizontal="center", vertical="center")
    sheet.row_dimensions[1].height = 30
    sheet.append([subtitle])
    sheet.merge_cells(f"A2:{last}2")
    sheet.append(list(headers))
    for cell in sheet[3]:
        cell.font, cell.fill, cell.border = Font(bold=True), _HEADER_FILL, _BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for values in body:
        sheet.append(list(values))
        for cell in sheet[sheet.max_row]:
            cell.border, cell.alignment = _BORDER, Alignment(vertical="center", wrap_text=True)
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

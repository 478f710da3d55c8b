"""CSV files an office opens in Excel or WPS: UTF-8 with a BOM, and no cell run as a formula.

A cell that begins with = + - @ (or a tab or carriage return) would be taken for a formula by a
spreadsheet; such a cell is written with a leading apostrophe, which the spreadsheet hides.
``safe_cell`` is the one rule for every export: the XLSX ledger uses it too (openpyxl would
otherwise store such a string as a live formula).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value, or a string that no spreadsheet runs as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_rows(handle: Any, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    writer = csv.writer(handle)
    writer.writerow(headers)
    writer.writerows([safe_cell(value) for value in row] for row in rows)


def csv_stream(headers: Sequence[str], rows: Iterable[Sequence[Any]], chunk: int = 500) -> Iterator[bytes]:
    """The file in pieces of ``chunk`` rows (a BOM first), for a download that never sits in memory whole."""
    yield "\ufeff".encode()
    yield _encoded([headers])
    pending = iter(rows)
    while piece := list(islice(pending, chunk)):
        yield _encoded([[safe_cell(value) for value in row] for row in piece])


def _encoded(rows: Iterable[Sequence[Any]]) -> bytes:
    handle = io.StringIO(newline="")
    csv.writer(handle).writerows(rows)
    return handle.getvalue().encode("utf-8")

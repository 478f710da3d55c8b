"""What the commands share: exit codes, the default window, JSON output."""

from __future__ import annotations

import json
from datetime import date, timedelta

from bot.clock import SystemClock

EXIT_OK, EXIT_WARNINGS, EXIT_ERRORS = 0, 1, 2


def today_in_beijing() -> date:
    return SystemClock().now().date()


def default_window(start: date | None, end: date | None) -> tuple[date, date]:
    start = start or today_in_beijing()
    return start, end or start + timedelta(days=90)


def print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))

"""The overview: deliveries by status, the next messages, holiday data and reload problems."""

from __future__ import annotations

from typing import Any

from flask import render_template

from bot.calendars.holiday_status import holiday_alert
from bot.formatting import STATUS_LABELS
from bot.store.queries import list_deliveries, status_counts
from bot.web.common import console, now, runtime, today

NEXT_COUNT = 10
ATTENTION = ("failed", "unknown", "missed")


@console.get("/")
def overview() -> Any:
    rt = runtime()
    counts = status_counts(rt.store)
    upcoming = list_deliveries(rt.store, status=("pending", "retry"), since=now(), order="asc", limit=NEXT_COUNT)
    return render_template(
        "overview.html", counts=[(s, STATUS_LABELS[s], n) for s, n in counts.items()],
        attention=sum(counts[s] for s in ATTENTION), upcoming=upcoming,
        alert=holiday_alert(rt.calendar().years, today()), reload_error=rt.last_reload_error,
        ics_errors=rt.loaded().ics_errors, stalled=rt.stalled_minutes(), unheard=rt.undelivered_alerts())

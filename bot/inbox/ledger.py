"""The study ledger (学习台账): who studied what, report rows, and nudges a confirmation made moot.

Confirmations are stored by ``bot.store.confirmations`` (the first one stands); answering a
secretary's reply or card click is ``bot.inbox.responder``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from bot.clock import BEIJING
from bot.config import Branch, Settings
from bot.rules.studies import StudyItem, StudySchedule
from bot.store import Store
from bot.store.confirmations import Recorded, all_confirmations, confirmed_item_branches
from bot.store.outbox import set_status
from bot.store.queries import list_deliveries

log = logging.getLogger(__name__)

Status = Literal["confirmed", "late", "pending", "missing"]
NUDGE_CONFIRMED = "该支部已确认完成学习，不再催办"


def cancel_confirmed_nudges(store: Store, now: datetime) -> int:
    """A nudge due now to a branch that has confirmed since it was planned is cancelled, not sent;
    the number cancelled. The service runs this before each dispatch pass."""
    nudges = list_deliveries(store, status=("pending", "retry"), kind="study_nudge",
                             until=now + timedelta(seconds=1), limit=10_000, order="asc")
    if not nudges:
        return 0
    confirmed = confirmed_item_branches(store, {row.item for row in nudges if row.item})
    cancelled = 0
    for row in nudges:
        if (row.item, (row.meta or {}).get("branch")) in confirmed and set_status(
                store, row.id, "cancelled", error=NUDGE_CONFIRMED):
            log.info("已取消 %s → %s：%s", row.kind, row.target, NUDGE_CONFIRMED)
            cancelled += 1
    return cancelled


@dataclass(frozen=True)
class ReportRow:
    item: str
    title: str
    series: str | None
    number: int | None
    year: int
    branch: str
    branch_name: str
    secretary: str
    deadline: datetime
    status: Status
    confirmed_at: datetime | None
    confirmed_by: str | None
    source: str | None
    note: str | None


def report_rows(store: Store, settings: Settings, schedule: StudySchedule, now: datetime, year: int | None = None,
                item: str | None = None) -> list[ReportRow]:
    """One row per published item and audience branch; ``year`` is the publish year (Beijing)."""
    confirmations = all_confirmations(store)
    chosen = [i for i in schedule.items if i.publish_at <= now and (item is None or i.id == item)
              and (year is None or i.publish_at.astimezone(BEIJING).year == year)]
    chosen.sort(key=lambda i: (i.publish_at, i.id))
    people = person_names(settings)
    return [_row(i, b, confirmations.get((i.id, b.id)), now, people) for i in chosen for b in i.branches(settings)]


def person_names(settings: Settings) -> dict[str, str]:
    """userid → name, for the ledger (people read names; a console account stays as it is)."""
    return {b.secretary.userid: b.secretary.name for b in settings.organisation.branches}


def study_status(store: Store, settings: Settings, schedule: StudySchedule, now: datetime,
                 item: str) -> list[ReportRow]:
    """Who has and has not confirmed one item, at ``now``."""
    return report_rows(store, settings, schedule, now, item=item)


def _row(item: StudyItem, branch: Branch, row: Recorded | None, now: datetime,
         people: dict[str, str]) -> ReportRow:
    if row is not None:
        status: Status = "late" if row.late else "confirmed"
    else:
        status = "pending" if now <= item.deadline else "missing"
    return ReportRow(
        item=item.id, title=item.title, series=item.series, number=item.number,
        year=item.publish_at.astimezone(BEIJING).year, branch=branch.id, branch_name=branch.name,
        secretary=branch.secretary.name, deadline=item.deadline.astimezone(BEIJING), status=status,
        confirmed_at=row.confirmed_at.astimezone(BEIJING) if row else None,
        confirmed_by=people.get(row.confirmed_by, row.confirmed_by) if row else None, source=row.source if row else None,
        note=row.note if row else None)

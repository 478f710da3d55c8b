"""Study confirmations: one row per (item, branch), the first confirmation stands.

``confirm_in`` records one inside the caller's transaction (the inbox writer's batch); ``Known``
caches what a batch has read, by branch, so a batch of replies reads each branch once.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.clock import BEIJING
from bot.store.db import Store
from bot.store.models import Confirmation

log = logging.getLogger(__name__)

Source = Literal["reply", "button", "manual"]
SOURCE_LABELS = {"reply": "回复消息", "button": "点击卡片", "manual": "管理员补录"}


@dataclass(frozen=True)
class ConfirmResult:
    item: str
    branch: str
    confirmed_by: str
    confirmed_at: datetime
    late: bool
    source: str
    created: bool  # False: the branch had already confirmed (the first confirmation stands)


# ---- confirmations --------------------------------------------------------------------------


def confirm(store: Store, item: str, branch: str, by: str, at: datetime, source: Source, note: str | None = None,
            recorded_by: str | None = None, *, deadline: datetime | None = None) -> ConfirmResult:
    """Record that ``branch`` studied ``item`` (late when ``at`` is after ``deadline``); idempotent."""
    with store.session() as session:
        return confirm_in(session, item, branch, by, at, source, note, recorded_by, deadline=deadline)


def confirm_in(session: Session, item: str, branch: str, by: str, at: datetime, source: Source,
               note: str | None = None, recorded_by: str | None = None, *,
               deadline: datetime | None = None, known: Known | None = None) -> ConfirmResult:
    """``known``: the confirmations this transaction has read, which saves the look-up when current."""
    existing = known.get(item, branch) if known is not None and known.has(branch) else _confirmation(
        session, item, branch)
    if existing is not None:
        return existing
    row = Confirmation(item=item, branch=branch, confirmed_by=by, confirmed_at=at, source=source, note=note,
                       late=deadline is not None and at > deadline, recorded_by=recorded_by)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another replica confirmed it a moment ago: theirs stands
        existing = _confirmation(session, item, branch)
        assert existing is not None
        return _remember(known, existing)
    log.info("学习已确认：%s，支部 %s，确认人 %s（%s%s）", item, branch, by, SOURCE_LABELS.get(source, source),
             "，逾期" if row.late else "")
    return replace(_remember(known, _result(row, created=False)), created=True)


# Core statements (no ORM entities): answering a reply reads these on every callback.
_CONFIRMATIONS = Confirmation.__table__
_COLUMNS = select(*(_CONFIRMATIONS.c[name] for name in ("item", "branch", "confirmed_by", "confirmed_at", "late",
                                                         "source")))
_ONE = _COLUMNS.where(_CONFIRMATIONS.c.item == bindparam("item"), _CONFIRMATIONS.c.branch == bindparam("branch"))
_OF_BRANCHES = _COLUMNS.where(_CONFIRMATIONS.c.branch.in_(bindparam("branches", expanding=True)))


def _confirmation(session: Session, item: str, branch: str) -> ConfirmResult | None:
    row = session.connection().execute(_ONE, {"item": item, "branch": branch}).first()
    return None if row is None else _result(row, created=False)


def _result(row: Any, created: bool) -> ConfirmResult:
    """From a Confirmation or a row of ``_COLUMNS``."""
    return ConfirmResult(row.item, row.branch, row.confirmed_by, row.confirmed_at.astimezone(BEIJING),
                         bool(row.late), row.source, created)


def _remember(known: Known | None, result: ConfirmResult) -> ConfirmResult:
    if known is not None:
        known.add(result)
    return result


def confirmed_pairs(session: Session, items: Collection[str] | None = None) -> set[tuple[str, str]]:
    """Every (item, branch) confirmed (of these items, when given): what the plan and the nudges need."""
    statement = select(Confirmation.item, Confirmation.branch)
    if items is not None:
        statement = statement.where(Confirmation.item.in_(sorted(items)))
    return {(item, branch) for item, branch in session.execute(statement)}


@dataclass
class Known:
    """Confirmations read in one transaction, by branch, so a batch of replies reads each branch once.

    ``confirm_in`` keeps it current. Whoever rolls back a savepoint that may have confirmed
    something must drop it (and start a new one).
    """

    by_branch: dict[str, dict[str, ConfirmResult]] = field(default_factory=dict)

    def load(self, session: Session, branches: Iterable[str]) -> None:
        missing = set(branches) - self.by_branch.keys()
        if not missing:
            return
        for branch in missing:
            self.by_branch[branch] = {}
        for row in session.connection().execute(_OF_BRANCHES, {"branches": sorted(missing)}):
            self.by_branch[row.branch][row.item] = _result(row, created=False)

    def has(self, branch: str) -> bool:
        return branch in self.by_branch

    def of(self, branch: str) -> dict[str, ConfirmResult]:
        return self.by_branch[branch]

    def get(self, item: str, branch: str) -> ConfirmResult | None:
        return self.by_branch[branch].get(item)

    def add(self, result: ConfirmResult) -> None:
        if result.branch in self.by_branch:
            self.by_branch[result.branch][result.item] = result


@dataclass(frozen=True)
class Recorded:
    """A confirmation as the ledger's report shows it."""

    confirmed_at: datetime
    confirmed_by: str
    source: str
    note: str | None
    late: bool


def all_confirmations(store: Store) -> dict[tuple[str, str], Recorded]:
    """(item, branch) → the confirmation, for every one recorded."""
    with store.session(readonly=True) as session:
        return {(r.item, r.branch): Recorded(r.confirmed_at, r.confirmed_by, r.source, r.note, bool(r.late))
                for r in session.scalars(select(Confirmation))}


def confirmed_item_branches(store: Store, items: Collection[str] | None = None) -> set[tuple[str, str]]:
    with store.session(readonly=True) as session:
        return confirmed_pairs(session, items)


def count_confirmations(store: Store) -> int:
    with store.session(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(Confirmation)) or 0

"""Claims: a worker leases due rows in a batch, and marks each one 'sending' just before its own send.

After a crash only a row left 'sending' may have reached WeCom (it is claimed again and marked
``resent``); a row claimed but never started is claimed again when its lease ends, at once at
start-up (``end_sending_leases``). Outcomes are recorded by ``bot.store.outbox``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, or_, select, update

from bot.store.db import Store
from bot.store.models import Delivery, require_aware
from bot.store.queries import DeliveryRow

TABLE = Delivery.__table__
CLAIMABLE = ("pending", "retry")
LEASED = ("sending", *CLAIMABLE)  # a claimed row keeps its status until its send begins


def claim_due(store: Store, now: datetime, worker: str, limit: int = 100,
              lease_seconds: int = 60) -> list[DeliveryRow]:
    """Lease up to ``limit`` due rows to ``worker``: attempts + 1, not yet 'sending' (``begin_send``);
    a row abandoned while 'sending' becomes 'retry' and ``resent`` (it may have reached WeCom)."""
    require_aware(now, "now")
    with store.session() as session:
        # PostgreSQL skips rows another claimer holds; SQLite's BEGIN IMMEDIATE serialises claimers.
        ids = session.scalars(
            select(Delivery.id).where(_claimable(now)).order_by(Delivery.due_at, Delivery.id)
            .limit(limit).with_for_update(skip_locked=True)
        ).all()
        if not ids:
            return []
        claimed = session.scalars(
            update(Delivery).where(Delivery.id.in_(ids))
            .values(status=case((Delivery.status == "sending", "retry"), else_=Delivery.status),
                    attempts=Delivery.attempts + 1, worker=worker,
                    lease_until=now + timedelta(seconds=lease_seconds), updated_at=now,
                    resent=case((Delivery.status == "sending", True), else_=Delivery.resent))
            .returning(Delivery).execution_options(synchronize_session=False)
        ).all()
        rows = [DeliveryRow.of(d) for d in claimed]
    return sorted(rows, key=lambda r: (r.due_at, r.id))


def begin_send(store: Store, row: DeliveryRow, worker: str, now: datetime, lease_seconds: int) -> bool:
    """Mark one claimed row 'sending' right before its HTTP call, leased anew for that send; False if
    the claim is lost: the lease ran out (another worker may hold the row), or it was cancelled meanwhile."""
    statement = (update(TABLE).where(TABLE.c.id == row.id, TABLE.c.attempts == row.attempts, TABLE.c.worker == worker,
                                     TABLE.c.status.in_(CLAIMABLE), TABLE.c.lease_until > require_aware(now, "now"))
                 .values(status="sending", lease_until=now + timedelta(seconds=lease_seconds), updated_at=now))
    with store.session() as session:
        return session.execute(statement).rowcount == 1


def _claimable(now: datetime) -> ColumnElement[bool]:
    due = and_(Delivery.status.in_(CLAIMABLE), Delivery.due_at <= now,
               or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
               or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now))
    abandoned = and_(Delivery.status == "sending",
                     or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now))
    return or_(due, abandoned)


def end_sending_leases(store: Store, now: datetime) -> int:
    """Every row left leased (claimed or 'sending') is claimable at once (the caller holds the dispatch lock)."""
    with store.session() as session:
        result = session.execute(update(Delivery).where(Delivery.status.in_(LEASED), Delivery.lease_until > now)
                                 .values(lease_until=now).execution_options(synchronize_session=False))
        return result.rowcount or 0

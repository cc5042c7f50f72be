"""The store of locks: opening, ending, and the SQL conditions of their state."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Sequence

from sqlalchemy import and_, insert, or_, select, update

from ...domain.model import EndCause, LockKind, LockView
from ...domain.records import LockRecord
from ..tables import locks
from .base import Store

SYSTEM = "system"


def effective(now: datetime):
    """SQL condition: the lock binds at ``now`` (not ended, end time not passed)."""
    return and_(locks.c.ended_at.is_(None), or_(locks.c.ends_at.is_(None), locks.c.ends_at > now))


def pin_due(now: datetime):
    """SQL conditions: an open PIN lock whose end time has passed (ix_locks_pin_due's rows)."""
    return (locks.c.kind == LockKind.PIN.value, locks.c.ended_at.is_(None), locks.c.ends_at <= now)


class LockStore(Store):
    def end_due_pin(self, now: datetime, card_nos: Sequence[str] | None = None,
                    limit: int | None = None) -> list[tuple[int, str, datetime]]:
        """Ends every open PIN lock whose end time passed (at that end time, cause expired, by
        'system'); returns (id, card_no, ends_at) sorted by (ends_at, id). Does not touch cards
        or the audit trail."""
        lock = locks.c
        due = select(lock.id).where(*pin_due(now)).order_by(lock.ends_at, lock.id)
        if card_nos is not None:
            due = due.where(lock.card_no.in_(list(card_nos)))
        if limit is not None:
            due = due.limit(limit)
        # One statement finds and ends the locks (the partial index ix_locks_pin_due leads the
        # subquery); ``ended_at IS NULL`` is checked again on each row, so a lock that another
        # writer has just ended is neither ended nor audited twice.
        rows = self.conn.execute(
            update(locks).where(lock.id.in_(due.scalar_subquery().correlate(None)), lock.ended_at.is_(None))
            .values(ended_at=lock.ends_at, end_cause=EndCause.EXPIRED.value, ended_by=SYSTEM)
            .returning(lock.id, lock.card_no, lock.ends_at)).all()
        rows.sort(key=lambda row: (row.ends_at, row.id))  # RETURNING comes in no particular order
        return [(row.id, row.card_no, row.ends_at) for row in rows]

    def end(self, lock_ids: Sequence[int], at: datetime, cause: EndCause, by: str) -> None:
        """End these locks (those still open) at ``at``."""
        self.conn.execute(update(locks).where(locks.c.id.in_(list(lock_ids)), locks.c.ended_at.is_(None))
                          .values(ended_at=at, end_cause=cause.value, ended_by=by))

    def open_for(self, card_nos: Sequence[str], now: datetime) -> dict[str, list[LockView]]:
        """The locks binding these cards at ``now``, oldest first."""
        found: dict[str, list[LockView]] = defaultdict(list)
        if not card_nos:
            return found
        lock = locks.c
        for card_no, kind, reason, since, until in self.conn.execute(
                select(lock.card_no, lock.kind, lock.reason, lock.started_at, lock.ends_at)
                .where(lock.card_no.in_(list(card_nos)), effective(now)).order_by(lock.started_at, lock.id)):
            found[card_no].append(LockView(kind, reason, since, until, now))
        return found

    def effective(self, card_no: str, now: datetime, kind: LockKind | None = None) -> list[LockRecord]:
        """The locks binding the card at ``now`` (of ``kind`` only, if given), by id."""
        stmt = select(*locks.c).where(locks.c.card_no == card_no, effective(now)).order_by(locks.c.id)
        if kind is not None:
            stmt = stmt.where(locks.c.kind == kind.value)
        return [LockRecord(*row) for row in self.conn.execute(stmt)]

    def any_effective(self, card_no: str, now: datetime) -> bool:
        return self.conn.execute(
            select(locks.c.id).where(locks.c.card_no == card_no, effective(now)).limit(1)).first() is not None

    def open(self, card_no: str, kind: LockKind, reason: str, started_at: datetime, ends_at: datetime | None,
             created_by: str) -> int:
        """A new lock on the card; its id."""
        return self.conn.execute(insert(locks).values(
            card_no=card_no, kind=kind.value, reason=reason, started_at=started_at, ends_at=ends_at,
            created_by=created_by).returning(locks.c.id)).scalar_one()

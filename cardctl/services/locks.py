"""Ending locks, and the SQL conditions of a lock's state; shared by verify, unlock, status
and the cron sweep (reading locks: ``services/reads.py``).

Core statements over ``storage.tables``: each function runs in the caller's
transaction, an ORM Session or a Core Connection alike (``db`` below), so the read
paths and the sweep use them without loading the ORM.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import and_, or_, select, update

from ..domain.model import EndCause, LockKind
from ..storage.audit import AuditTrail, EventDraft
from ..storage.tables import cards, locks

SYSTEM = "system"
_IN_LIMIT = 10_000  # values in one IN (...) list: under SQLite's and PostgreSQL's parameter limits


def effective(now: datetime):
    """SQL condition: the lock binds at ``now`` (not ended, end time not passed)."""
    return and_(locks.c.ended_at.is_(None), or_(locks.c.ends_at.is_(None), locks.c.ends_at > now))


def pin_due(now: datetime):
    """SQL conditions: an open PIN lock whose end time has passed (ix_locks_pin_due's rows)."""
    return (locks.c.kind == LockKind.PIN.value, locks.c.ended_at.is_(None), locks.c.ends_at <= now)


def end_due_pin_locks(db, audit: AuditTrail, now: datetime,
                      card_nos: Iterable[str] | None = None, limit: int | None = None) -> list[tuple[str, datetime]]:
    """Record the end of every PIN lock whose end time has passed, at that end time.

    The failure count of each such card resets, as the lock's expiry implies.
    Returns (card_no, ended_at) pairs. Runs inside the caller's write transaction.
    """
    lock = locks.c
    due = select(lock.id).where(*pin_due(now)).order_by(lock.ends_at, lock.id)
    if card_nos is not None:
        due = due.where(lock.card_no.in_(list(card_nos)))
    if limit is not None:
        due = due.limit(limit)
    # One statement finds and ends the locks (the partial index ix_locks_pin_due leads
    # the subquery); ``ended_at IS NULL`` is checked again on each row, so a lock that
    # another writer has just ended is neither ended nor audited twice. Core skips the
    # ORM's bookkeeping: callers holding a Card object refresh it.
    rows = db.execute(
        update(locks).where(lock.id.in_(due.scalar_subquery().correlate(None)), lock.ended_at.is_(None))
        .values(ended_at=lock.ends_at, end_cause=EndCause.EXPIRED.value, ended_by=SYSTEM)
        .returning(lock.id, lock.card_no, lock.ends_at)).all()
    if not rows:
        return []
    rows.sort(key=lambda row: (row.ends_at, row.id))  # RETURNING comes in no particular order
    ended_cards = sorted({row.card_no for row in rows})
    for start in range(0, len(ended_cards), _IN_LIMIT):
        db.execute(update(cards).where(cards.c.card_no.in_(ended_cards[start:start + _IN_LIMIT]))
                   .values(failures=0))
    audit.append(db, [
        EventDraft("lock.expire", "ended", row.card_no, detail={"kind": "pin", "lock": row.id}, at=row.ends_at)
        for row in rows
    ], now)
    return [(row.card_no, row.ends_at) for row in rows]


def end_locks(db, audit: AuditTrail, now: datetime, lock_ids: Sequence[int],
              cause: EndCause, operator: str) -> None:
    db.execute(update(locks).where(locks.c.id.in_(lock_ids), locks.c.ended_at.is_(None))
               .values(ended_at=now, end_cause=cause.value, ended_by=operator))

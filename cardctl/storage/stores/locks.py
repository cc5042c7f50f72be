"""The store of locks: opening, ending, and the SQL conditions of their state.

A lock binds while it is not ended and its end time, if it has one, has not passed
(docs/domain.md, locks); a PIN lock past its end time is recorded as ended *at that
time* by ``end_due_pin``. Every statement that ends a set of locks is ``LockStore.end``
(or ``end_due_pin`` for expiry), so each end is written the same way: only locks still
open are touched, and who ended it and why go with the time.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Iterable, Iterator, Sequence

from sqlalchemy import and_, exists, func, insert, or_, select, update

from ...domain.model import EndCause, LockKind, LockView
from ...domain.records import LockRecord
from ..tables import locks
from .base import Store, chunks

SYSTEM = "system"  # who ends a lock that ended by itself


def effective(now: datetime):
    """SQL condition: the lock binds at ``now`` (not ended, end time not passed)."""
    return and_(locks.c.ended_at.is_(None), or_(locks.c.ends_at.is_(None), locks.c.ends_at > now))


def pin_due(now: datetime):
    """SQL conditions: an open PIN lock whose end time has passed (ix_locks_pin_due's rows)."""
    return (locks.c.kind == LockKind.PIN.value, locks.c.ended_at.is_(None), locks.c.ends_at <= now)


class LockStore(Store):
    def end_due_pin(self, now: datetime, card_nos: Iterable[str] | None = None,
                    limit: int | None = None) -> list[tuple[int, str, datetime]]:
        """End every open PIN lock whose end time passed, at that end time (cause expired, by
        'system'); returns (id, card_no, ends_at) sorted by (ends_at, id). Cards and the
        audit trail are the caller's."""
        if card_nos is None:
            return self._end_due_pin(now, None, limit)
        ended = [row for part in chunks(list(card_nos)) for row in self._end_due_pin(now, part, limit)]
        ended.sort(key=lambda row: (row[2], row[0]))
        return ended

    def _end_due_pin(self, now: datetime, card_nos: Sequence[str] | None,
                     limit: int | None) -> list[tuple[int, str, datetime]]:
        lock = locks.c
        due = select(lock.id).where(*pin_due(now)).order_by(lock.ends_at, lock.id)
        if card_nos is not None:
            due = due.where(lock.card_no.in_(card_nos))
        if limit is not None:
            due = due.limit(limit)
        # One statement finds and ends the locks (the partial index ix_locks_pin_due leads
        # the subquery); ``ended_at IS NULL`` is checked again on each row, so a lock that
        # another writer has just ended is neither ended nor audited twice.
        rows = self.conn.execute(
            update(locks).where(lock.id.in_(due.scalar_subquery().correlate(None)), lock.ended_at.is_(None))
            .values(ended_at=lock.ends_at, end_cause=EndCause.EXPIRED.value, ended_by=SYSTEM)
            .returning(lock.id, lock.card_no, lock.ends_at)).all()
        ended = [(row.id, row.card_no, row.ends_at) for row in rows]
        ended.sort(key=lambda row: (row[2], row[0]))  # RETURNING comes in no particular order
        return ended

    def due_pin(self, now: datetime, batch: int = 10_000) -> Iterator[tuple[str, datetime]]:
        """(card_no, ends_at) of every open PIN lock past its end time, in the order
        ``end_due_pin`` ends them; streamed ``batch`` rows at a time, nothing changed."""
        lock = locks.c
        yield from self.conn.execution_options(yield_per=batch).execute(
            select(lock.card_no, lock.ends_at).where(*pin_due(now)).order_by(lock.ends_at, lock.id))

    def end(self, lock_ids: Sequence[int], at: datetime, cause: EndCause, by: str) -> None:
        """End these locks at ``at``; a lock another writer has already ended keeps its end."""
        for part in chunks(list(lock_ids)):
            self.conn.execute(update(locks).where(locks.c.id.in_(part), locks.c.ended_at.is_(None))
                              .values(ended_at=at, end_cause=cause.value, ended_by=by))

    def open_for(self, card_nos: Sequence[str], now: datetime) -> dict[str, list[LockView]]:
        """The locks binding these cards at ``now``, oldest first."""
        found: dict[str, list[LockView]] = defaultdict(list)
        lock = locks.c
        for part in chunks(list(card_nos)):
            for card_no, kind, reason, since, until, escalated in self.conn.execute(
                    select(lock.card_no, lock.kind, lock.reason, lock.started_at, lock.ends_at, lock.escalated)
                    .where(lock.card_no.in_(part), effective(now)).order_by(lock.started_at, lock.id)):
                found[card_no].append(LockView(kind, reason, since, until, now, bool(escalated)))
        return found

    def held(self, card_nos: Sequence[str], now: datetime) -> dict[str, list[tuple[int, LockView]]]:
        """The locks binding these cards at ``now`` with their ids, in the order they were opened
        (by id): what an unlock may end and what it must keep."""
        found: dict[str, list[tuple[int, LockView]]] = {}
        lock = locks.c
        for part in chunks(list(card_nos)):
            for lock_id, card_no, kind, reason, since, until, escalated in self.conn.execute(
                    select(lock.id, lock.card_no, lock.kind, lock.reason, lock.started_at, lock.ends_at,
                           lock.escalated)
                    .where(lock.card_no.in_(part), effective(now)).order_by(lock.id)):
                found.setdefault(card_no, []).append(
                    (lock_id, LockView(kind, reason, since, until, now, bool(escalated))))
        return found

    def effective(self, card_no: str, now: datetime, kind: LockKind | None = None) -> list[LockRecord]:
        """The locks binding ``card_no`` at ``now`` (of ``kind`` only, if given), by id."""
        stmt = select(locks).where(locks.c.card_no == card_no, effective(now)).order_by(locks.c.id)
        if kind is not None:
            stmt = stmt.where(locks.c.kind == kind.value)
        return [LockRecord(**row._mapping) for row in self.conn.execute(stmt)]

    def any_effective(self, card_no: str, now: datetime) -> bool:
        return bool(self.conn.scalar(select(exists().where(locks.c.card_no == card_no, effective(now)))))

    def open(self, card_no: str, kind: LockKind, reason: str, started_at: datetime,
             ends_at: datetime | None, created_by: str, escalated: bool = False) -> int:
        """A new lock; its id. ``escalated``: a PIN lock only an identity check ends."""
        return self.conn.execute(insert(locks).values(
            card_no=card_no, kind=kind.value, reason=reason, started_at=started_at, ends_at=ends_at,
            created_by=created_by, escalated=escalated).returning(locks.c.id)).scalar_one()

    def pin_locks_since(self, card_no: str, since: datetime) -> int:
        """How many PIN locks of ``card_no`` started after ``since``, however each ended
        (ix_locks_card_all): what escalation counts (docs/domain.md)."""
        lock = locks.c
        return int(self.conn.scalar(select(func.count()).select_from(locks).where(
            lock.card_no == card_no, lock.started_at > since, lock.kind == LockKind.PIN.value)) or 0)

    def open_many(self, kind: LockKind, reasons: Sequence[tuple[str, str]], started_at: datetime,
                  created_by: str, batch: int = 5000) -> None:
        """Open one lock of ``kind`` on each card of ``reasons`` ((card_no, reason) pairs), without
        an end time; one executemany per ``batch`` cards."""
        for part in chunks(reasons, batch):
            self.conn.execute(insert(locks), [
                {"card_no": card_no, "kind": kind.value, "reason": reason, "started_at": started_at,
                 "ends_at": None, "created_by": created_by} for card_no, reason in part])

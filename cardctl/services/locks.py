"""Reading and ending locks, shared by verify, unlock, status and the cron sweep."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from ..domain.model import EndCause, LockKind, LockView
from ..storage.audit import AuditTrail, EventDraft
from ..storage.models import Card, Lock

SYSTEM = "system"


def effective(now: datetime):
    """SQL condition: the lock binds at ``now`` (not ended, end time not passed)."""
    return and_(Lock.ended_at.is_(None), or_(Lock.ends_at.is_(None), Lock.ends_at > now))


def open_locks(session: Session, card_nos: Sequence[str], now: datetime) -> dict[str, list[LockView]]:
    """Effective locks of these cards, oldest first."""
    found: dict[str, list[LockView]] = defaultdict(list)
    if not card_nos:
        return found
    rows = session.execute(
        select(Lock.card_no, Lock.kind, Lock.reason, Lock.started_at, Lock.ends_at)
        .where(Lock.card_no.in_(card_nos), effective(now))
        .order_by(Lock.started_at, Lock.id)
    )
    for card_no, kind, reason, since, until in rows:
        found[card_no].append(LockView(kind, reason, since, until, now))
    return found


def _pin_due(now: datetime):
    """SQL conditions: an open PIN lock whose end time has passed (ix_locks_pin_due's rows)."""
    return (Lock.kind == LockKind.PIN.value, Lock.ended_at.is_(None), Lock.ends_at <= now)


def count_due_pin_locks(session: Session, now: datetime) -> int:
    """How many PIN locks the cron sweep would end now: a count over the partial index."""
    return session.scalar(select(func.count()).select_from(Lock).where(*_pin_due(now)))


def expired_pin_cards(session: Session, card_nos: Sequence[str], now: datetime) -> set[str]:
    """Cards whose PIN lock has passed its end but is not yet recorded as ended."""
    if not card_nos:
        return set()
    return set(session.scalars(select(Lock.card_no).where(
        Lock.card_no.in_(card_nos), Lock.kind == LockKind.PIN.value,
        Lock.ended_at.is_(None), Lock.ends_at <= now)))


def end_due_pin_locks(session: Session, audit: AuditTrail, now: datetime,
                      card_nos: Iterable[str] | None = None, limit: int | None = None) -> list[tuple[str, datetime]]:
    """Record the end of every PIN lock whose end time has passed, at that end time.

    The failure count of each such card resets, as the lock's expiry implies.
    Returns (card_no, ended_at) pairs. Runs inside the caller's write transaction.
    """
    due = select(Lock.id).where(*_pin_due(now)).order_by(Lock.ends_at, Lock.id)
    if card_nos is not None:
        due = due.where(Lock.card_no.in_(list(card_nos)))
    if limit is not None:
        due = due.limit(limit)
    # One statement finds and ends the locks (the partial index ix_locks_pin_due leads
    # the subquery); ``ended_at IS NULL`` is checked again on each row, so a lock that
    # another writer has just ended is neither ended nor audited twice. Core, on the
    # session's connection, skips the ORM's bookkeeping: callers holding a Card refresh it.
    conn = session.connection()
    rows = conn.execute(
        update(Lock).where(Lock.id.in_(due.scalar_subquery().correlate(None)), Lock.ended_at.is_(None))
        .values(ended_at=Lock.ends_at, end_cause=EndCause.EXPIRED.value, ended_by=SYSTEM)
        .returning(Lock.id, Lock.card_no, Lock.ends_at)).all()
    if not rows:
        return []
    rows.sort(key=lambda row: (row.ends_at, row.id))  # RETURNING comes in no particular order
    cards = sorted({row.card_no for row in rows})
    for start in range(0, len(cards), 10_000):
        conn.execute(update(Card).where(Card.card_no.in_(cards[start:start + 10_000])).values(failures=0))
    audit.append(session, [
        EventDraft("lock.expire", "ended", row.card_no, detail={"kind": "pin", "lock": row.id}, at=row.ends_at)
        for row in rows
    ], now)
    return [(row.card_no, row.ends_at) for row in rows]


def end_locks(session: Session, audit: AuditTrail, now: datetime, lock_ids: Sequence[int],
              cause: EndCause, operator: str) -> None:
    session.execute(update(Lock).where(Lock.id.in_(lock_ids), Lock.ended_at.is_(None))
                    .values(ended_at=now, end_cause=cause.value, ended_by=operator))

"""The store of the arrears ledger: debts (+) and payments (-) in fen, per holder or per
employer unit, and the cards whose arrears lock a balance decides (docs/domain.md, arrears)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, insert, or_, select, text

from ...domain.model import CardStatus, LockKind
from ..db import PG_WRITE_LOCK
from ..tables import arrears as ledger
from ..tables import cards, locks
from .base import Store


def _scope(holder_id: int | None, unit: str | None, card_no: str | None) -> ColumnElement[bool]:
    """The cards of one holder, of one unit, or one card: exactly one is given."""
    assert [holder_id, unit, card_no].count(None) == 2, "one scope: a holder, a unit or a card"
    if holder_id is not None:
        return cards.c.holder_id == holder_id
    if unit is not None:
        return cards.c.unit == unit
    return cards.c.card_no == card_no


def _sum_where(condition: ColumnElement[bool]):
    return select(func.coalesce(func.sum(ledger.c.amount_fen), 0)).where(condition).correlate(cards).scalar_subquery()


def _open_arrears_lock() -> ColumnElement[bool]:
    return exists().where(locks.c.card_no == cards.c.card_no, locks.c.kind == LockKind.ARREARS.value,
                          locks.c.ended_at.is_(None))


_OWN = _sum_where(ledger.c.holder_id == cards.c.holder_id)
_OF_UNIT = _sum_where(ledger.c.unit == cards.c.unit)
_OWES = or_(_OWN > 0, _OF_UNIT > 0)


class ArrearsStore(Store):
    def serialise(self) -> None:
        """Make this transaction the only one changing the ledger until it ends.

        A unit's balance has no row of its own to lock. Every write transaction already
        queues on one lock (BEGIN IMMEDIATE on SQLite, the advisory write lock on PostgreSQL),
        so no two payments can both see the old balance. The audit head is not locked here:
        operator logins may not lock or move it (docs/security.md). Taking the same advisory
        lock again keeps this true should a caller ever reach here through another path."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_WRITE_LOCK})

    def add(self, holder_id: int | None, unit: str | None, amount_fen: int, at: datetime, operator: str,
            period: str | None = None, receipt: str | None = None) -> None:
        """One ledger entry: a debt (amount > 0) or a payment (amount < 0)."""
        self.conn.execute(insert(ledger).values(holder_id=holder_id, unit=unit, amount_fen=amount_fen, period=period,
                                                receipt=receipt, at=at, operator=operator))

    def balance(self, holder_id: int | None = None, unit: str | None = None) -> int:
        """The balance in fen of a holder (their own debts) or of a unit."""
        column = ledger.c.holder_id == holder_id if holder_id is not None else ledger.c.unit == unit
        # int(): PostgreSQL sums a BIGINT column as NUMERIC
        return int(self.conn.scalar(select(func.coalesce(func.sum(ledger.c.amount_fen), 0)).where(column)))

    def owing_unlocked(self, *, holder_id: int | None = None, unit: str | None = None,
                       card_no: str | None = None) -> list[tuple[str, int, int]]:
        """(card_no, own balance, unit balance) of the cards in scope that are not void, owe
        (themselves or through their unit), and have no open arrears lock; by card number."""
        return [(row[0], int(row[1]), int(row[2])) for row in self.conn.execute(
            select(cards.c.card_no, _OWN, _OF_UNIT).where(
                _scope(holder_id, unit, card_no), cards.c.status != CardStatus.VOID.value, _OWES,
                ~_open_arrears_lock()).order_by(cards.c.card_no))]

    def paid_up_locks(self, *, holder_id: int | None = None, unit: str | None = None,
                      card_no: str | None = None) -> list[tuple[int, str]]:
        """(lock id, card_no) of the open arrears locks of the cards in scope that owe nothing
        any more, void cards included; by card number."""
        return [(row[0], row[1]) for row in self.conn.execute(
            select(locks.c.id, cards.c.card_no).join(locks, and_(
                locks.c.card_no == cards.c.card_no, locks.c.kind == LockKind.ARREARS.value,
                locks.c.ended_at.is_(None)))
            .where(_scope(holder_id, unit, card_no), ~_OWES).order_by(cards.c.card_no, locks.c.id))]

    def locked_cards(self, *, holder_id: int | None = None, unit: str | None = None,
                     card_no: str | None = None, limit: int | None = None) -> list[str]:
        """The cards in scope with an open arrears lock, by card number."""
        stmt = select(cards.c.card_no).where(_scope(holder_id, unit, card_no), _open_arrears_lock()) \
            .order_by(cards.c.card_no)
        return list(self.conn.scalars(stmt if limit is None else stmt.limit(limit)))

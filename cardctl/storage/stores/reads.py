"""``storage.reads.ReadStore`` on SQLAlchemy Core (SQLite and PostgreSQL), and the reads of
``status`` only Core serves: filtered listings, counts and the summary.

The named statements are ``storage/statements.py``'s, as on the start-up path
(``storage/lite.py``); ``CoreReads`` runs them on a Core connection. ``core_read_store``
is the ``ReadSource`` of a ``storage.db.Database``.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any, Iterator, Sequence

from sqlalchemy import and_, case, func, literal, select

from ...domain.model import CardStatus
# the SQL twins of the read-time rules, as in storage/statements.py
from .cards import lapsed
from .locks import effective
from ..reads import CardRow, Filters, NamedReads, pages
from ..statements import card_query, statement, status_is
from ..tables import cards, locks
from .base import Store

PAGE = 1000


class CoreReads(NamedReads, Store):
    """The read store of one Core transaction (a Connection, or a legacy ORM Session)."""

    def _rows(self, name: str, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        return self.conn.execute(statement(name), params).all()

    def server_time(self) -> datetime:
        """The PostgreSQL server's clock now, in this transaction."""
        from ..db import _PG_CLOCK, _utc

        return _utc(self.conn.execute(_PG_CLOCK).scalar())

    # -- status: listings and counts ---------------------------------------------------------

    def card_pages(self, filters: Filters, now: datetime, limit: int | None = None) -> Iterator[list[CardRow]]:
        """Matching cards in card-number order, streamed a page at a time."""
        stmt = card_query(filters, now).order_by(cards.c.card_no)
        if limit is not None:
            stmt = stmt.limit(limit)
        yield from pages(iter(self.conn.execute(stmt.execution_options(yield_per=PAGE))), PAGE)

    def count_cards(self, filters: Filters, now: datetime) -> int:
        inner = card_query(filters, now).with_only_columns(cards.c.card_no).subquery()
        return self.conn.scalar(select(func.count()).select_from(inner))

    def count_by_status(self, filters: Filters, now: datetime) -> dict[str, int]:
        """Matching cards per effective status, each card once whatever locks it holds."""
        status = case((lapsed(now), literal(CardStatus.ACTIVE.value)), else_=cards.c.status)
        inner = card_query(filters, now).with_only_columns(status.label("status")).subquery()
        return dict(self.conn.execute(select(inner.c.status, func.count()).group_by(inner.c.status)).all())

    def summary(self, filters: Filters, now: datetime) -> list[tuple[str, str, str, int]]:
        """(region, effective status, lock kind or 'none', cards), a card counted once under
        each kind of lock in force it holds."""
        card, lock = cards.c, locks.c
        kind = func.coalesce(lock.kind, literal("none"))
        status = case((lapsed(now), literal(CardStatus.ACTIVE.value)), else_=card.status)
        stmt = (select(card.region, status.label("status"), kind.label("lock"), func.count().label("cards"))
                .select_from(cards)
                .outerjoin(locks, and_(lock.card_no == card.card_no, effective(now)))
                .group_by(card.region, status, kind)
                .order_by(card.region, status, kind))
        if filters.status:
            stmt = stmt.where(status_is(filters.status, now))
        if filters.region:
            stmt = stmt.where(card.region.startswith(filters.region, autoescape=True))
        if filters.locked:
            stmt = stmt.where(lock.id.is_not(None))
        if filters.kind:  # the cards holding that kind, counted under each kind they hold
            held = select(lock.card_no).where(lock.kind == filters.kind, effective(now))
            stmt = stmt.where(card.card_no.in_(held.correlate(None)))  # its own locks, not the joined row
        return [tuple(row) for row in self.conn.execute(stmt)]


@contextlib.contextmanager
def core_read_store(db) -> Iterator[CoreReads]:
    """One read transaction of ``db`` (a ``storage.db.Database``) and its read store."""
    with db.connect_read() as conn:
        yield CoreReads(conn)


class CoreSource:
    """The ``storage.reads.ReadSource`` of a ``storage.db.Database``: Core read transactions."""

    def __init__(self, db) -> None:
        self.db = db

    def read_store(self):
        return core_read_store(self.db)

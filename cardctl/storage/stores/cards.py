"""The store of cards and their holders."""

from __future__ import annotations

from datetime import datetime
from typing import Iterator, Sequence

from sqlalchemy import and_, select, update

from ...domain.model import CardStatus, LossKind
from ...domain.records import CardRecord, CardState
from ..tables import cards, holders
from .base import Store, chunks


class CardStore(Store):
    # -- added for the lock use cases (unlock, the cron sweep, arrears) --

    def get(self, card_no: str, for_update: bool = False) -> CardRecord | None:
        stmt = select(cards).where(cards.c.card_no == card_no)
        row = self.conn.execute(stmt.with_for_update() if for_update else stmt).one_or_none()
        return None if row is None else CardRecord(**row._mapping)

    def reset_failures(self, card_nos: Sequence[str]) -> None:
        """The consecutive-failure count of these cards back to zero."""
        for part in chunks(list(card_nos)):
            self.conn.execute(update(cards).where(cards.c.card_no.in_(part)).values(failures=0))

    def states(self, card_nos: Sequence[str], with_holder: bool = False,
               for_update: bool = False) -> dict[str, CardState]:
        """What an unlock decides on for each of these cards that exists; with ``with_holder``
        also its region and its holder's keyed ID hash. ``for_update``: under the cards' row
        locks. One statement per ``chunks`` slice, plain columns only (no ORM objects)."""
        card = cards.c
        found: dict[str, CardState] = {}
        for part in chunks(list(card_nos)):
            stmt = select(card.card_no, card.status, card.loss_kind, card.loss_lapses_at).where(card.card_no.in_(part))
            if with_holder:
                stmt = stmt.add_columns(card.region, holders.c.id_hash).join(holders, holders.c.id == card.holder_id)
            if for_update:
                stmt = stmt.with_for_update(of=cards)
            for row in self.conn.execute(stmt):
                found[row[0]] = CardState(*row)
        return found

    def lapsed_losses(self, now: datetime, card_nos: Sequence[str] | None = None, limit: int | None = None,
                      for_update: bool = True) -> list[tuple[str, datetime]]:
        """(card_no, lapses_at) of the temporary loss reports past their lapse time, oldest first,
        under the cards' row locks unless ``for_update`` is false; read through the status index."""
        card = cards.c
        due = select(card.card_no, card.loss_lapses_at).where(lapsed(now)).order_by(card.loss_lapses_at, card.card_no)
        if card_nos is not None:
            due = due.where(card.card_no.in_(list(card_nos)))
        if limit is not None:
            due = due.limit(limit)
        return [(row[0], row[1]) for row in self.conn.execute(due.with_for_update() if for_update else due)]

    def due_lapses(self, now: datetime, batch: int = 10_000) -> Iterator[tuple[str, datetime]]:
        """``lapsed_losses`` read-only and streamed ``batch`` rows at a time."""
        card = cards.c
        yield from self.conn.execution_options(yield_per=batch).execute(
            select(card.card_no, card.loss_lapses_at).where(lapsed(now)).order_by(card.loss_lapses_at, card.card_no))

    def end_losses(self, card_nos: Sequence[str]) -> None:
        """These lost cards are active again, their loss report gone."""
        for part in chunks(list(card_nos)):
            self.conn.execute(update(cards).where(cards.c.card_no.in_(part), cards.c.status == CardStatus.LOST.value)
                              .values(status=CardStatus.ACTIVE.value, **CLEARED))


CLEARED = {"loss_kind": None, "lost_at": None, "loss_lapses_at": None}  # the columns of a loss report


def lapsed(now: datetime):
    """SQL twin of ``effective_status``: a temporary loss report past its lapse time (led by
    the status index)."""
    card = cards.c
    return and_(card.status == CardStatus.LOST.value, card.loss_kind == LossKind.TEMPORARY.value,
                card.loss_lapses_at <= now)

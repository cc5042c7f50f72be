"""The store of cards and their holders."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator, Sequence

from sqlalchemy import and_, exists, select, update

from ...domain.model import CardStatus, LossKind
from ...domain.records import CardRecord, CardState, HolderRecord
from ..tables import cards, holders, locks
from .base import Store, chunks
from .locks import effective

_CARD_COLUMNS = tuple(cards.c)


def _card(row) -> CardRecord:
    return CardRecord(*row[:len(_CARD_COLUMNS)])


class CardStore(Store):
    def get(self, card_no: str, for_update: bool = False) -> CardRecord | None:
        """The card, under its row lock with ``for_update`` (the first statement of a write that
        changes it, so concurrent writers queue on the row)."""
        stmt = select(*_CARD_COLUMNS).where(cards.c.card_no == card_no)
        row = self.conn.execute(stmt.with_for_update() if for_update else stmt).one_or_none()
        return None if row is None else _card(row)

    def get_locked_at(self, card_no: str, now: datetime) -> tuple[CardRecord, bool] | None:
        """The card and whether a lock binds it at ``now``, in one statement (a PIN check's read)."""
        bound = exists().where(locks.c.card_no == cards.c.card_no, effective(now)).label("locked")
        row = self.conn.execute(select(*_CARD_COLUMNS, bound).where(cards.c.card_no == card_no)).one_or_none()
        return None if row is None else (_card(row), bool(row.locked))

    def exists(self, card_no: str) -> bool:
        return self.conn.execute(select(cards.c.card_no).where(cards.c.card_no == card_no)).first() is not None

    def holder(self, holder_id: int) -> HolderRecord:
        row = self.conn.execute(select(*holders.c).where(holders.c.id == holder_id)).one()
        return HolderRecord(*row)

    def set_failures(self, card_no: str, failures: int) -> None:
        self.conn.execute(update(cards).where(cards.c.card_no == card_no).values(failures=failures))

    def reset_failures(self, card_nos: Sequence[str]) -> None:
        for part in chunks(card_nos):
            self.conn.execute(update(cards).where(cards.c.card_no.in_(part)).values(failures=0))

    def update(self, card_no: str, **values: Any) -> int:
        """Set these columns of the card; the number of rows changed (0 or 1)."""
        return self.conn.execute(update(cards).where(cards.c.card_no == card_no).values(**values)).rowcount

    def update_if(self, card_no: str, expected: dict[str, Any], **values: Any) -> int:
        """Compare-and-set: change the card only if its columns still hold ``expected``; rows changed."""
        where = [cards.c[column] == value for column, value in expected.items()]
        return self.conn.execute(update(cards).where(cards.c.card_no == card_no, *where).values(**values)).rowcount

    def other_live_card(self, holder_id: int, except_card: str) -> str | None:
        """A card of this holder, other than ``except_card``, that is not void."""
        return self.conn.execute(select(cards.c.card_no).where(
            cards.c.holder_id == holder_id, cards.c.status != CardStatus.VOID.value,
            cards.c.card_no != except_card)).scalar()

    def insert(self, **values: Any) -> None:
        """One new card (a reissue's replacement)."""
        self.conn.execute(cards.insert().values(**values))

    # --- registering: a chunk of cards in a handful of statements whatever its size ---------

    def issue_facts(self, card_nos: Sequence[str], id_hashes: Sequence[str]) -> tuple[
            dict[str, tuple], dict[str, int], set[int]]:
        """What a chunk of new cards may collide with: the cards already under these numbers
        ((holder_id, region, insurance_type, unit, issuer) each), the holders already under these
        ID hashes (id), and which of those holders have a card that is not void."""
        c = cards.c
        taken = {row.card_no: tuple(row[1:]) for row in self.conn.execute(
            select(c.card_no, c.holder_id, c.region, c.insurance_type, c.unit, c.issuer)
            .where(c.card_no.in_(list(card_nos))))}
        known = dict(self.conn.execute(
            select(holders.c.id_hash, holders.c.id).where(holders.c.id_hash.in_(set(id_hashes)))).all())
        live = set(self.conn.execute(select(c.holder_id).where(
            c.holder_id.in_(list(known.values())), c.status != CardStatus.VOID.value)).scalars())
        return taken, known, live

    def insert_holders(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        """One executemany; the new holders' ids by ID hash."""
        returned = self.conn.execute(holders.insert().returning(holders.c.id_hash, holders.c.id), rows)
        return dict(returned.all())

    def insert_cards(self, rows: list[dict[str, Any]]) -> None:
        """One executemany of Core rows (the ORM's bulk insert would split the batch wherever
        ``unit`` turns NULL, and build each row's parameters in Python)."""
        self.conn.execute(cards.insert(), rows)

    # -- the lock use cases: unlock, the cron sweep's lapses --

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

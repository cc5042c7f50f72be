"""Read-only views of cards: filtered streams and population counts (named cards: ``reads.cards_by_number``).

The SQL is the read store's (``storage/stores/reads.py`` ``CoreReads``); this module imports
no SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from ..domain.model import CardView
from ..storage.reads import Filters
from .context import Context
from .reads import card_views

__all__ = ["Filters", "SummaryRow", "count_by_status", "count_cards", "list_cards", "summary"]


def count_cards(ctx: Context, filters: Filters) -> int:
    now = ctx.now()
    with ctx.read() as tx:
        return tx.reads.count_cards(filters, now)


def count_by_status(ctx: Context, filters: Filters) -> dict[str, int]:
    """Matching cards per effective status, each card once whatever locks it holds: the totals
    under ``status --summary``, whose rows count a card once per kind of lock."""
    now = ctx.now()
    with ctx.read() as tx:
        return tx.reads.count_by_status(filters, now)


def list_cards(ctx: Context, filters: Filters, limit: int | None = None) -> Iterator[CardView]:
    """Stream matching cards in card-number order, one page of locks at a time."""
    now = ctx.now()
    with ctx.read() as tx:
        for page in tx.reads.card_pages(filters, now, limit):
            yield from card_views(ctx, tx.reads, page, now)


@dataclass(frozen=True)
class SummaryRow:
    region: str
    status: str
    lock: str
    cards: int

    def record(self) -> dict:
        return {"region": self.region, "status": self.status, "lock": self.lock, "cards": self.cards}


def summary(ctx: Context, filters: Filters) -> list[SummaryRow]:
    """Cards by region x status x effective lock kind ('none' for unlocked cards).

    A card holding two kinds of lock is counted once under each kind.
    """
    now = ctx.now()
    with ctx.read() as tx:
        return [SummaryRow(*row) for row in tx.reads.summary(filters, now)]

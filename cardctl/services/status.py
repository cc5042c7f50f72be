"""Read-only views of cards: filtered streams and population counts (named cards: ``reads.cards_by_number``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Iterator

from sqlalchemy import and_, case, exists, func, literal, or_, select

from ..domain.model import CardStatus, CardView, LockKind, LossKind
from ..storage.tables import cards, holders, locks
from .context import Context
from .lapses import lapsed
from .locks import effective
from .reads import card_views

PAGE = 1000


@dataclass(frozen=True)
class Filters:
    locked: bool = False
    status: str | None = None
    region: str | None = None
    kind: str | None = None  # with ``locked``: only cards holding a lock of this kind


def _status_is(status: str, now: datetime):
    """Filter on the effective status, still led by the status index."""
    card = cards.c
    if status == CardStatus.ACTIVE:
        return or_(card.status == status, lapsed(now))
    if status == CardStatus.LOST:
        return and_(card.status == status, or_(card.loss_kind.is_distinct_from(LossKind.TEMPORARY.value),
                                               card.loss_lapses_at.is_(None), card.loss_lapses_at > now))
    return card.status == status


def card_query(filters: Filters, now: datetime):
    card, holder = cards.c, holders.c
    stmt = (select(card.card_no, holder.name, holder.id_masked, card.region, card.status,
                   card.failures, card.insurance_type, card.unit, card.holder_id, card.loss_kind,
                   card.lost_at, card.loss_lapses_at, card.void_reason, card.replaced_by, card.replaces)
            .join(holders, holder.id == card.holder_id))
    if filters.status:
        stmt = stmt.where(_status_is(filters.status, now))
    if filters.region:
        stmt = stmt.where(card.region.startswith(filters.region, autoescape=True))
    if filters.locked:
        held = exists().where(locks.c.card_no == card.card_no, effective(now))
        stmt = stmt.where(held.where(locks.c.kind == filters.kind) if filters.kind else held)
    return stmt


def count_cards(ctx: Context, filters: Filters) -> int:
    now = ctx.now()
    with ctx.db.connect_read() as conn:
        inner = card_query(filters, now).with_only_columns(cards.c.card_no).subquery()
        return conn.scalar(select(func.count()).select_from(inner))


def count_by_status(ctx: Context, filters: Filters) -> dict[str, int]:
    """Matching cards per effective status, each card once whatever locks it holds: the totals
    under ``status --summary``, whose rows count a card once per kind of lock."""
    now = ctx.now()
    status = case((lapsed(now), literal(CardStatus.ACTIVE.value)), else_=cards.c.status)
    with ctx.db.connect_read() as conn:
        inner = card_query(filters, now).with_only_columns(status.label("status")).subquery()
        return dict(conn.execute(select(inner.c.status, func.count()).group_by(inner.c.status)).all())


def list_cards(ctx: Context, filters: Filters, limit: int | None = None) -> Iterator[CardView]:
    """Stream matching cards in card-number order, one page of locks at a time."""
    now = ctx.now()
    with ctx.db.connect_read() as conn:
        stmt = card_query(filters, now).order_by(cards.c.card_no)
        if limit is not None:
            stmt = stmt.limit(limit)
        result = conn.execute(stmt.execution_options(yield_per=PAGE))
        while page := list(islice(result, PAGE)):
            yield from card_views(ctx, conn, page, now)


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
    card, lock = cards.c, locks.c
    kind = func.coalesce(lock.kind, literal("none"))
    status = case((lapsed(now), literal(CardStatus.ACTIVE.value)), else_=card.status)
    stmt = (select(card.region, status.label("status"), kind.label("lock"), func.count().label("cards"))
            .select_from(cards)
            .outerjoin(locks, and_(lock.card_no == card.card_no, effective(now)))
            .group_by(card.region, status, kind)
            .order_by(card.region, status, kind))
    if filters.status:
        stmt = stmt.where(_status_is(filters.status, now))
    if filters.region:
        stmt = stmt.where(card.region.startswith(filters.region, autoescape=True))
    if filters.locked:
        stmt = stmt.where(lock.id.is_not(None))
    if filters.kind:  # the cards holding that kind, counted under each kind they hold
        held = select(lock.card_no).where(lock.kind == filters.kind, effective(now))
        stmt = stmt.where(card.card_no.in_(held.correlate(None)))  # its own locks, not the joined row
    with ctx.db.connect_read() as conn:
        return [SummaryRow(*row) for row in conn.execute(stmt)]


LOCK_KINDS = [kind.value for kind in LockKind]

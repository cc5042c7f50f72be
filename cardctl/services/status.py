"""Read-only views of cards: one card, filtered streams, and population counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Iterator, Sequence

from sqlalchemy import Connection, and_, case, exists, func, literal, or_, select

from ..domain.model import CardStatus, CardView, LockKind, LossKind, effective_status
from ..storage.tables import cards, holders, locks
from .arrears import balances
from .context import Context
from .lapses import lapsed
from .locks import effective, expired_pin_cards, open_locks

PAGE = 1000


@dataclass(frozen=True)
class Filters:
    locked: bool = False
    status: str | None = None
    region: str | None = None


def _status_is(status: str, now: datetime):
    """Filter on the effective status, still led by the status index."""
    card = cards.c
    if status == CardStatus.ACTIVE:
        return or_(card.status == status, lapsed(now))
    if status == CardStatus.LOST:
        return and_(card.status == status, or_(card.loss_kind.is_distinct_from(LossKind.TEMPORARY.value),
                                               card.loss_lapses_at.is_(None), card.loss_lapses_at > now))
    return card.status == status


def _card_query(filters: Filters, now: datetime):
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
        stmt = stmt.where(exists().where(locks.c.card_no == card.card_no, effective(now)))
    return stmt


def _views(ctx: Context, conn: Connection, rows: Sequence, now: datetime) -> list[CardView]:
    card_nos = [row.card_no for row in rows]
    held = open_locks(conn, card_nos, now)
    expired = expired_pin_cards(conn, card_nos, now)
    own, of_unit = balances(conn, (row.holder_id for row in rows), (row.unit for row in rows))
    views = []
    for row in rows:
        policy = ctx.policy_for(conn, row.region)
        # an expired PIN lock resets the count even before cron records it
        failures = 0 if row.card_no in expired else row.failures
        status = effective_status(row.status, row.loss_kind, row.loss_lapses_at, now)
        # a lapsed report is shown as what it is now: no loss report at all
        loss = (row.loss_kind, row.lost_at, row.loss_lapses_at) if status == row.status else (None, None, None)
        views.append(CardView(row.card_no, row.name, row.id_masked, row.region, status,
                              failures, policy.max_attempts, held.get(row.card_no, []),
                              row.insurance_type, row.unit, own.get(row.holder_id, 0),
                              of_unit.get(row.unit, 0), *loss, row.void_reason, row.replaced_by, row.replaces))
    return views


def cards_by_number(ctx: Context, card_nos: Sequence[str]) -> tuple[list[CardView], list[str]]:
    """Views of the named cards in the order given, and the numbers not found."""
    now = ctx.now()
    with ctx.db.connect_read() as conn:
        rows = conn.execute(_card_query(Filters(), now).where(cards.c.card_no.in_(list(card_nos)))).all()
        views = {view.card_no: view for view in _views(ctx, conn, rows, now)}
    return [views[n] for n in card_nos if n in views], [n for n in card_nos if n not in views]


def count_cards(ctx: Context, filters: Filters) -> int:
    now = ctx.now()
    with ctx.db.connect_read() as conn:
        inner = _card_query(filters, now).with_only_columns(cards.c.card_no).subquery()
        return conn.scalar(select(func.count()).select_from(inner))


def list_cards(ctx: Context, filters: Filters, limit: int | None = None) -> Iterator[CardView]:
    """Stream matching cards in card-number order, one page of locks at a time."""
    now = ctx.now()
    with ctx.db.connect_read() as conn:
        stmt = _card_query(filters, now).order_by(cards.c.card_no)
        if limit is not None:
            stmt = stmt.limit(limit)
        result = conn.execute(stmt.execution_options(yield_per=PAGE))
        while page := list(islice(result, PAGE)):
            yield from _views(ctx, conn, page, now)


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
    with ctx.db.connect_read() as conn:
        return [SummaryRow(*row) for row in conn.execute(stmt)]


LOCK_KINDS = [kind.value for kind in LockKind]

"""Read-only views of cards: one card, filtered streams, and population counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Iterator, Sequence

from sqlalchemy import and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from ..domain.model import CardStatus, CardView, LockKind, LossKind, effective_status
from ..storage.models import Card, Holder, Lock
from .arrears import balances
from .context import Context
from .locks import effective, expired_pin_cards, open_locks

PAGE = 1000


@dataclass(frozen=True)
class Filters:
    locked: bool = False
    status: str | None = None
    region: str | None = None


def _lapsed(now: datetime):
    """SQL twin of ``effective_status``: a temporary loss report past its lapse time."""
    return and_(Card.status == CardStatus.LOST.value, Card.loss_kind == LossKind.TEMPORARY.value,
                Card.loss_lapses_at <= now)


def _status_is(status: str, now: datetime):
    """Filter on the effective status, still led by the status index."""
    if status == CardStatus.ACTIVE:
        return or_(Card.status == status, _lapsed(now))
    if status == CardStatus.LOST:
        return and_(Card.status == status, or_(Card.loss_kind.is_distinct_from(LossKind.TEMPORARY.value),
                                               Card.loss_lapses_at.is_(None), Card.loss_lapses_at > now))
    return Card.status == status


def _card_query(filters: Filters, now: datetime):
    stmt = (select(Card.card_no, Holder.name, Holder.id_masked, Card.region, Card.status,
                   Card.failures, Card.insurance_type, Card.unit, Card.holder_id, Card.loss_kind,
                   Card.lost_at, Card.loss_lapses_at, Card.void_reason, Card.replaced_by, Card.replaces)
            .join(Holder, Holder.id == Card.holder_id))
    if filters.status:
        stmt = stmt.where(_status_is(filters.status, now))
    if filters.region:
        stmt = stmt.where(Card.region.startswith(filters.region, autoescape=True))
    if filters.locked:
        stmt = stmt.where(exists().where(Lock.card_no == Card.card_no, effective(now)))
    return stmt


def _views(ctx: Context, session: Session, rows: Sequence, now: datetime) -> list[CardView]:
    card_nos = [row.card_no for row in rows]
    locks = open_locks(session, card_nos, now)
    lapsed = expired_pin_cards(session, card_nos, now)
    own, of_unit = balances(session, (row.holder_id for row in rows), (row.unit for row in rows))
    views = []
    for row in rows:
        policy = ctx.policy_for(session, row.region)
        # an expired PIN lock resets the count even before cron records it
        failures = 0 if row.card_no in lapsed else row.failures
        status = effective_status(row.status, row.loss_kind, row.loss_lapses_at, now)
        # a lapsed report is shown as what it is now: no loss report at all
        loss = (row.loss_kind, row.lost_at, row.loss_lapses_at) if status == row.status else (None, None, None)
        views.append(CardView(row.card_no, row.name, row.id_masked, row.region, status,
                              failures, policy.max_attempts, locks.get(row.card_no, []),
                              row.insurance_type, row.unit, own.get(row.holder_id, 0),
                              of_unit.get(row.unit, 0), *loss, row.void_reason, row.replaced_by, row.replaces))
    return views


def cards_by_number(ctx: Context, card_nos: Sequence[str]) -> tuple[list[CardView], list[str]]:
    """Views of the named cards in the order given, and the numbers not found."""
    now = ctx.now()
    with ctx.db.read() as session:
        rows = session.execute(_card_query(Filters(), now).where(Card.card_no.in_(list(card_nos)))).all()
        views = {view.card_no: view for view in _views(ctx, session, rows, now)}
    return [views[n] for n in card_nos if n in views], [n for n in card_nos if n not in views]


def count_cards(ctx: Context, filters: Filters) -> int:
    now = ctx.now()
    with ctx.db.read() as session:
        inner = _card_query(filters, now).with_only_columns(Card.card_no).subquery()
        return session.scalar(select(func.count()).select_from(inner))


def list_cards(ctx: Context, filters: Filters, limit: int | None = None) -> Iterator[CardView]:
    """Stream matching cards in card-number order, one page of locks at a time."""
    now = ctx.now()
    with ctx.db.read() as session:
        stmt = _card_query(filters, now).order_by(Card.card_no)
        if limit is not None:
            stmt = stmt.limit(limit)
        result = session.execute(stmt.execution_options(yield_per=PAGE))
        while page := list(islice(result, PAGE)):
            yield from _views(ctx, session, page, now)


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
    kind = func.coalesce(Lock.kind, literal("none"))
    status = case((_lapsed(now), literal(CardStatus.ACTIVE.value)), else_=Card.status)
    stmt = (select(Card.region, status.label("status"), kind.label("lock"), func.count().label("cards"))
            .select_from(Card)
            .outerjoin(Lock, and_(Lock.card_no == Card.card_no, effective(now)))
            .group_by(Card.region, status, kind)
            .order_by(Card.region, status, kind))
    if filters.status:
        stmt = stmt.where(_status_is(filters.status, now))
    if filters.region:
        stmt = stmt.where(Card.region.startswith(filters.region, autoescape=True))
    if filters.locked:
        stmt = stmt.where(Lock.id.is_not(None))
    with ctx.db.read() as session:
        return [SummaryRow(*row) for row in session.execute(stmt)]


LOCK_KINDS = [kind.value for kind in LockKind]

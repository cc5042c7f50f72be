"""Temporary loss reports (临时挂失) that lapse by themselves.

``effective_status`` decides on every read that a report past its lapse time no
longer binds; ``end_lapsed_losses`` records it, at the moment it happened, from the
cron sweep and before any change to the card. Core statements only: the sweep and
``status`` use them without the ORM or the loss-report use cases (``loss.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Iterable

from sqlalchemy import and_, select, update

from ..domain.model import CardStatus, LossKind
from ..storage.audit import EventDraft
from ..storage.tables import cards

if TYPE_CHECKING:
    from ..storage.stores import Tx

_IN_LIMIT = 10_000
CLEARED = {"loss_kind": None, "lost_at": None, "loss_lapses_at": None}


def lapsed(now: datetime):
    """SQL twin of ``effective_status``: a temporary loss report past its lapse time (led by
    the status index)."""
    card = cards.c
    return and_(card.status == CardStatus.LOST.value, card.loss_kind == LossKind.TEMPORARY.value,
                card.loss_lapses_at <= now)


def end_lapsed_losses(tx: Tx, card_nos: Iterable[str] | None = None,
                      limit: int | None = None) -> list[tuple[str, datetime]]:
    """Record every temporary loss report past its lapse time: the card is active again.

    Each lapse is audited at the time it happened. Runs in the caller's write
    transaction; returns (card_no, lapsed_at) pairs.
    Only lost cards are read, through the status index.
    """
    card, db, now = cards.c, tx.conn, tx.now
    due = select(card.card_no, card.loss_lapses_at).where(lapsed(now)).order_by(card.loss_lapses_at, card.card_no)
    if card_nos is not None:
        due = due.where(card.card_no.in_(list(card_nos)))
    if limit is not None:
        due = due.limit(limit)
    rows = db.execute(due.with_for_update()).all()
    for start in range(0, len(rows), _IN_LIMIT):
        part = [row.card_no for row in rows[start:start + _IN_LIMIT]]
        db.execute(update(cards).where(card.card_no.in_(part), card.status == CardStatus.LOST.value)
                   .values(status=CardStatus.ACTIVE.value, **CLEARED))
    tx.record([EventDraft("loss.lapse", "lapsed", row.card_no, detail={"kind": "temporary"},
                          at=row.loss_lapses_at) for row in rows], now)
    return [(row.card_no, row.loss_lapses_at) for row in rows]

"""The reads of ``--as-of``: the audit trail's events and the rows that never change after
issue, for the replay in ``services/history.py`` (which decides what they mean)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator, Sequence

from sqlalchemy import and_, case, desc, select

from ..tables import cards, events, holders
from .base import Store, chunks


class HistoryStore(Store):
    def policy_changes_after(self, at: datetime) -> list[tuple[str, str]]:
        """(outcome, detail JSON) of every ``policy.set`` after ``at``, newest first."""
        stmt = (select(events.c.outcome, events.c.detail)
                .where(events.c.action == "policy.set", events.c.at > at).order_by(desc(events.c.seq)))
        return [tuple(row) for row in self.conn.execute(stmt)]

    def unit_events(self, actions: Sequence[str], at: datetime) -> Iterator[tuple[str, str]]:
        """(action, detail JSON) of the recorded ``actions`` naming no card, up to ``at``, in order."""
        stmt = (select(events.c.action, events.c.detail)
                .where(events.c.card_no.is_(None), events.c.action.in_(actions),
                       events.c.outcome == "recorded", events.c.at <= at)
                .order_by(events.c.seq))
        return iter(self.conn.execute(stmt))

    def card_pages(self, at: datetime, region: str | None, card_nos: Sequence[str] | None,
                   size: int) -> Iterator[Sequence[Any]]:
        """Pages of the cards issued by ``at`` (only ``card_nos`` if given, sorted), in card-number
        order: card_no, holder_id, region, insurance_type, unit, name, id_masked, legacy (a PIN
        hash without an activation: imported with a legacy hash)."""
        card, holder = cards.c, holders.c
        legacy = case((and_(card.pin_hash.is_not(None), card.activated_at.is_(None)), 1), else_=0)
        stmt = (select(card.card_no, card.holder_id, card.region, card.insurance_type, card.unit,
                       holder.name, holder.id_masked, legacy.label("legacy"))
                .join(holders, holder.id == card.holder_id)
                .where(card.issued_at <= at).order_by(card.card_no).limit(size))
        if region:
            stmt = stmt.where(card.region.startswith(region, autoescape=True))
        if card_nos is not None:
            for some in chunks(card_nos, size):
                yield self.conn.execute(stmt.where(card.card_no.in_(some))).all()
            return
        last = ""
        while page := self.conn.execute(stmt.where(card.card_no > last)).all():
            yield page
            last = page[-1].card_no

    def cards_of_holders(self, holder_ids: Sequence[int]) -> list[tuple[str, int]]:
        """(card_no, holder_id) of every card of these holders."""
        stmt = select(cards.c.card_no, cards.c.holder_id).where(cards.c.holder_id.in_(list(holder_ids)))
        return [tuple(row) for row in self.conn.execute(stmt)]

    def card_events(self, card_nos: Sequence[str], at: datetime) -> Iterator[tuple]:
        """(card_no, action, outcome, reason, detail JSON, at) of these cards up to ``at``, in order."""
        stmt = (select(events.c.card_no, events.c.action, events.c.outcome, events.c.reason, events.c.detail,
                       events.c.at)
                .where(events.c.card_no.in_(list(card_nos)), events.c.at <= at).order_by(events.c.seq))
        return iter(self.conn.execute(stmt))

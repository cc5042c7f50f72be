"""The reads of ``report``: GROUP BY statements over locks, events, arrears and cards.

``services/report.py`` turns their counts into sections (days, quantiles, shares); every
statement here takes the period as plain values. Times are grouped by the quarter hour
(seconds since 1970 // 900) they fall in, so the service can name local days exactly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator, Sequence

from sqlalchemy import (BigInteger, Integer, and_, case, cast, distinct, exists, extract, func, literal, literal_column,
                        or_, select)

from ...domain.events import Action, Outcome
from ...domain.model import CardStatus, EndCause
from .cards import lapsed
from .locks import effective
from ..tables import arrears, cards, events, holders, locks
from .base import Store

QUARTER = 900  # seconds


class ReportStore(Store):
    # -- SQL pieces ---------------------------------------------------------------------

    @property
    def _is_sqlite(self) -> bool:
        return self.conn.dialect.name == "sqlite"

    def _quarter(self, column):
        """The quarter hour (seconds since 1970 // 900) a UTC time falls in, exactly."""
        if self._is_sqlite:
            return cast(func.strftime(literal_column("'%s'"), column), Integer) / literal_column(str(QUARTER))
        return cast(func.floor(extract("epoch", column) / literal_column(str(QUARTER))), BigInteger)

    def _seconds_between(self, start, end):
        if self._is_sqlite:
            return cast(func.round((func.julianday(end) - func.julianday(start)) * 86400), Integer)
        return cast(func.round(extract("epoch", end) - extract("epoch", start)), BigInteger)

    @staticmethod
    def _in_region(stmt, card_no_column, region: str | None):
        if not region:
            return stmt
        return stmt.join(cards, cards.c.card_no == card_no_column).where(
            cards.c.region.startswith(region, autoescape=True))

    def _ended(self, since: datetime, until: datetime, region: str | None, now: datetime):
        """Locks that ended in [since, until), with when and why, as a subquery (its binds stay
        inside, so the outer GROUP BY is over plain columns on PostgreSQL too)."""
        lock = locks.c
        ended_at = case((lock.ended_at.is_not(None), lock.ended_at),
                        (lock.ends_at <= now, lock.ends_at), else_=None)
        cause = case((lock.ended_at.is_not(None), lock.end_cause), else_=literal(EndCause.EXPIRED.value))
        stmt = (select(lock.card_no, lock.kind, ended_at.label("ended_at"), cause.label("cause"),
                       self._seconds_between(lock.started_at, ended_at).label("seconds"))
                .where(ended_at >= since, ended_at < until))
        return self._in_region(stmt, lock.card_no, region).subquery()

    # -- locks in the period ----------------------------------------------------------------

    def locks_per_quarter(self, since: datetime, until: datetime, region: str | None,
                          now: datetime) -> Iterator[tuple[str, str, int, int]]:
        """("opened" or "ended", kind, quarter hour, locks): opened ones first, then ended ones."""
        lock = locks.c
        opened = (select(lock.card_no, lock.kind, lock.started_at)
                  .where(lock.started_at >= since, lock.started_at < until))
        opened = self._in_region(opened, lock.card_no, region).subquery()
        ended = self._ended(since, until, region, now)
        for sub, column, what in ((opened, opened.c.started_at, "opened"), (ended, ended.c.ended_at, "ended")):
            quarter = self._quarter(column).label("quarter")
            for kind, q, count in self.conn.execute(select(sub.c.kind, quarter, func.count())
                                                    .group_by(sub.c.kind, quarter)):
                yield what, kind, int(q), count

    def ended_per_kind(self, since: datetime, until: datetime, region: str | None, now: datetime) -> dict[str, int]:
        ended = self._ended(since, until, region, now)
        return dict(self.conn.execute(select(ended.c.kind, func.count()).group_by(ended.c.kind)).all())

    def ended_durations(self, since: datetime, until: datetime, region: str | None,
                        now: datetime) -> Iterator[tuple[str, int, int]]:
        """(kind, seconds locked, locks) of the locks ended in the period, by kind and seconds ascending."""
        ended = self._ended(since, until, region, now)
        stmt = (select(ended.c.kind, ended.c.seconds, func.count())
                .group_by(ended.c.kind, ended.c.seconds).order_by(ended.c.kind, ended.c.seconds))
        for kind, seconds, count in self.conn.execute(stmt.execution_options(yield_per=5000)):
            yield kind, int(seconds), count

    def endings_of(self, kind: str, since: datetime, until: datetime, region: str | None,
                   now: datetime) -> dict[str, int]:
        """Locks of ``kind`` ended in the period, by cause."""
        ended = self._ended(since, until, region, now)
        return dict(self.conn.execute(select(ended.c.cause, func.count())
                                      .where(ended.c.kind == kind).group_by(ended.c.cause)).all())

    def repeat_locked(self, kinds: Sequence[str], since: datetime, until: datetime, region: str | None,
                      min_locks: int) -> list[Any]:
        """Cards with at least ``min_locks`` locks opened in the period, most locked first: card_no,
        name, region, locks, one count per kind, escalated (PIN locks escalated to a counter visit),
        first, last."""
        lock, card = locks.c, cards.c
        per_kind = [func.sum(case((lock.kind == kind, 1), else_=0)).label(kind) for kind in kinds]
        escalated = func.sum(case((lock.escalated, 1), else_=0)).label("escalated")
        stmt = (select(card.card_no, holders.c.name, card.region, func.count().label("locks"), *per_kind, escalated,
                       func.min(lock.started_at).label("first"), func.max(lock.started_at).label("last"))
                .select_from(locks).join(cards, card.card_no == lock.card_no)
                .join(holders, holders.c.id == card.holder_id)
                .where(lock.started_at >= since, lock.started_at < until)
                .group_by(card.card_no, holders.c.name, card.region)
                .having(func.count() >= min_locks)
                .order_by(func.count().desc(), card.card_no))
        if region:
            stmt = stmt.where(card.region.startswith(region, autoescape=True))
        return self.conn.execute(stmt).all()

    def actions(self, since: datetime, until: datetime, region: str | None) -> list[tuple]:
        """(actor, operator, channel, action, events, refusals) of the events in the period."""
        event = events.c
        refused = func.sum(case((event.outcome.startswith("refused"), 1), else_=0))
        keys = (event.actor, event.operator, event.channel, event.action)
        stmt = select(*keys, func.count(), refused).where(event.at >= since, event.at < until)
        stmt = self._in_region(stmt, event.card_no, region).group_by(*keys).order_by(*keys)
        return [tuple(row) for row in self.conn.execute(stmt)]

    # -- the population now ---------------------------------------------------------------

    def units_owing(self) -> dict[str, int]:
        """Every employer unit that owes, and what, in fen."""
        ledger = arrears.c
        return {unit: int(fen) for unit, fen in self.conn.execute(
            select(ledger.unit, func.sum(ledger.amount_fen)).where(ledger.unit.is_not(None))
            .group_by(ledger.unit).having(func.sum(ledger.amount_fen) > 0))}

    def live_unit_cards(self, region: str | None) -> dict[str, int]:
        """Cards not void per employer unit (in ``region``)."""
        card = cards.c
        live = select(card.unit, func.count()).where(card.unit.is_not(None), card.status != CardStatus.VOID.value)
        if region:
            live = live.where(card.region.startswith(region, autoescape=True))
        return dict(self.conn.execute(live.group_by(card.unit)).all())

    def holders_owing(self, region: str | None) -> tuple[int, int]:
        """How many holders (with a card in ``region``) owe, and their total in fen."""
        ledger, card = arrears.c, cards.c
        holder_scope = select(ledger.holder_id, func.sum(ledger.amount_fen).label("owed")).where(
            ledger.holder_id.is_not(None))
        if region:
            in_region = card.region.startswith(region, autoescape=True)
            holder_scope = holder_scope.where(ledger.holder_id.in_(select(card.holder_id).where(in_region)))
        owing = holder_scope.group_by(ledger.holder_id).having(func.sum(ledger.amount_fen) > 0).subquery()
        count, total = self.conn.execute(select(func.count(), func.coalesce(func.sum(owing.c.owed), 0))).one()
        return int(count), int(total)

    def cards_by_status(self, region: str | None, now: datetime) -> list[tuple[str, int, int]]:
        """(effective status, cards, of them holding a lock in force): one GROUP BY."""
        card = cards.c
        status = case((lapsed(now), literal(CardStatus.ACTIVE.value)), else_=card.status)
        held = case((exists().where(locks.c.card_no == card.card_no, effective(now)), 1), else_=0)
        stmt = select(status, func.count(), func.sum(held)).group_by(status)
        if region:
            stmt = stmt.where(card.region.startswith(region, autoescape=True))
        return [(found, int(count), int(locked or 0)) for found, count, locked in self.conn.execute(stmt)]

    # -- wrong PINs per source (docs/domain.md, "PIN guessing from one place") ------------------

    def wrong_pins_by_source(self, since: datetime, until: datetime, region: str | None) -> list[tuple]:
        """(terminal, operator, channel, wrong PINs, distinct cards, PIN locks, first, last) of the
        wrong PINs typed at ``verify`` and ``change-pin`` in the period, one row per place, most
        cards first. The locks are the ``lock.pin`` events those attempts wrote (same transaction,
        same place). One GROUP BY over the period's events, found through their ``at`` index; no
        terminal is a group of its own (NULL), ordered last among equals on both engines."""
        event = events.c
        wrong = and_(event.action.in_((Action.PIN_VERIFY.value, Action.PIN_CHANGE.value)),
                     event.outcome == Outcome.WRONG_PIN.value)
        locked = and_(event.action == Action.LOCK_PIN.value, event.outcome == Outcome.LOCKED.value)
        wrong_pins = func.sum(case((wrong, 1), else_=0))
        cards_hit = func.count(distinct(case((wrong, event.card_no), else_=None)))
        keys = (event.terminal, event.operator, event.channel)
        stmt = (select(*keys, wrong_pins.label("wrong_pins"), cards_hit.label("cards"),
                       func.sum(case((locked, 1), else_=0)).label("locks"),
                       func.min(event.at).label("first"), func.max(event.at).label("last"))
                .where(event.at >= since, event.at < until, or_(wrong, locked)))
        stmt = (self._in_region(stmt, event.card_no, region).group_by(*keys).having(wrong_pins > 0)
                .order_by(cards_hit.desc(), wrong_pins.desc(), case((event.terminal.is_(None), 1), else_=0),
                          *keys))
        return [tuple(row) for row in self.conn.execute(stmt)]

    # -- batch runs (services/report_runs.py) ---------------------------------------------

    def batch_events(self, since: datetime, until: datetime) -> list[tuple]:
        """(run_id, action, at, operator, actor, channel, detail text) of the ``batch.start`` and
        ``batch.end`` events in the period, in seq order, read through the partial index
        ``ix_events_batches``, which holds just these: the read grows with the runs, not with the
        trail (SQLite without statistics would pick ``ix_events_at`` and walk the period's events)."""
        event = events.c
        # SQLite's documented way to keep an index off a term: a unary + (PostgreSQL plans by statistics)
        at = literal_column("+events.at", type_=event.at.type) if self._is_sqlite else event.at
        stmt = (select(event.run_id, event.action, event.at, event.operator, event.actor, event.channel,
                       event.detail)
                .where(event.action.in_(("batch.start", "batch.end")), at >= since, at < until)
                .order_by(event.seq))
        return [tuple(row) for row in self.conn.execute(stmt)]

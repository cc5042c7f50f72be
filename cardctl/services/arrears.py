"""Unpaid contributions: the ledger, and the arrears locks it implies.

The ledger holds debts (+) and payments (-) in fen, per holder or per employer
unit. A live card carries one open ``arrears`` lock exactly while its holder's
own balance or its unit's balance is above zero; ``sync_arrears_locks`` restores
that rule for a set of cards in a few set-based statements, so a unit with
thousands of employees is locked or released in one go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import ColumnElement, exists, func, insert, or_, select, text, update

from ..domain.model import CardStatus, EndCause, LockKind
from ..domain.money import MAX_FEN, format_fen
from ..errors import CardNotFound, InvalidInput, Refused
from ..i18n import _
from ..storage.audit import EventDraft
from ..storage.tables import arrears as ledger
from ..storage.db import PG_WRITE_LOCK
from ..storage.tables import cards, locks
from .context import Context

# .guards (audited_refusal) is imported inside the use case that needs it: it brings bcrypt,
# which status (``reads.balances``) must not.

_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
MAX_RECEIPT = 64
_CHUNK = 5000


@dataclass(frozen=True)
class Debtor:
    """Who owes: a holder, named by one of their cards, or an employer unit."""

    card_no: str | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        if (self.card_no is None) == (self.unit is None):
            raise InvalidInput(_("name either a card number or --unit, not both"))

    @property
    def label(self) -> str:
        return _("card {card}").format(card=self.card_no) if self.card_no else _("unit {unit}").format(unit=self.unit)


@dataclass(frozen=True)
class ArrearsResult:
    debtor: Debtor
    entry: str  # debt | payment
    amount_fen: int
    before_fen: int
    after_fen: int
    locked: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    kept_locked: list[str] = field(default_factory=list)  # named debtor's cards still locked

    def record(self) -> dict[str, Any]:
        return {"card_no": self.debtor.card_no, "unit": self.debtor.unit, "entry": self.entry,
                "amount": format_fen(self.amount_fen), "balance_before": format_fen(self.before_fen),
                "balance_after": format_fen(self.after_fen), "locked": self.locked,
                "released": self.released, "still_locked": self.kept_locked}


def parse_period(raw: str, today: date) -> str:
    """The contribution month ``YYYY-MM``; not after the current month."""
    text = raw.strip()
    match = _PERIOD.fullmatch(text) if text.isascii() else None
    if match is None:
        raise InvalidInput(_("period {period!r}: expected YYYY-MM, e.g. 2026-10").format(period=text[:20]))
    if (int(match[1]), int(match[2])) > (today.year, today.month) or int(match[1]) < 1951:
        raise InvalidInput(_("period {period}: not a month from 1951 to this month").format(period=text))
    return text


def parse_receipt(raw: str) -> str:
    text = raw.strip()
    if not text or len(text) > MAX_RECEIPT or not text.isprintable():
        raise InvalidInput(_("receipt must be 1-{max_len} printable characters").format(max_len=MAX_RECEIPT))
    return text


def add_arrears(ctx: Context, debtor: Debtor, amount_fen: int, period: str | None) -> ArrearsResult:
    """Record a debt and lock the debtor's live card(s) that are not locked for arrears yet."""
    _check_amount(amount_fen)
    now = ctx.now()
    with ctx.db.write() as session:
        _serialise_ledger(session)
        holder_id, scope = _resolve(session, debtor)
        before = _balance(session, holder_id, debtor.unit)
        session.execute(insert(ledger).values(holder_id=holder_id, unit=debtor.unit, amount_fen=amount_fen,
                                               period=period, at=now, operator=ctx.settings.operator))
        ctx.audit.append(session, [EventDraft("arrears.add", "recorded", debtor.card_no, detail={
            "unit": debtor.unit, "amount": format_fen(amount_fen), "period": period,
            "balance": format_fen(before + amount_fen)})], now)
        locked, released = sync_arrears_locks(ctx, session, now, scope)
    return ArrearsResult(debtor, "debt", amount_fen, before, before + amount_fen, locked, released)


def pay_arrears(ctx: Context, debtor: Debtor, amount_fen: int, receipt: str | None) -> ArrearsResult:
    """Record a payment; a card's arrears lock ends once its holder and its unit owe nothing."""
    from .guards import audited_refusal

    _check_amount(amount_fen)
    now = ctx.now()
    try:
        with ctx.db.write() as session:
            _serialise_ledger(session)
            holder_id, scope = _resolve(session, debtor)
            before = _balance(session, holder_id, debtor.unit)
            if amount_fen > before:
                raise Refused(_overpayment(session, debtor, holder_id, amount_fen, before))
            session.execute(insert(ledger).values(holder_id=holder_id, unit=debtor.unit, amount_fen=-amount_fen,
                                                   receipt=receipt, at=now, operator=ctx.settings.operator))
            ctx.audit.append(session, [EventDraft("arrears.pay", "recorded", debtor.card_no, detail={
                "unit": debtor.unit, "amount": format_fen(amount_fen), "receipt": receipt,
                "balance_before": format_fen(before), "balance_after": format_fen(before - amount_fen)})], now)
            locked, released = sync_arrears_locks(ctx, session, now, scope)
            kept = list(session.scalars(select(cards.c.card_no).where(scope, _open_arrears_lock())
                                        .order_by(cards.c.card_no).limit(_CHUNK)))
    except Refused as error:
        raise audited_refusal(ctx, error, "arrears.pay", debtor.card_no)
    return ArrearsResult(debtor, "payment", amount_fen, before, before - amount_fen, locked, released, kept)


def sync_arrears_locks(ctx: Context, session, now: datetime, scope: ColumnElement[bool]) -> tuple[list[str], list[str]]:
    """Lock the cards in ``scope`` that owe and are unlocked; release those that no longer owe.

    Runs in the caller's write transaction; returns (newly locked, released) card numbers.
    """
    own = _sum_where(ledger.c.holder_id == cards.c.holder_id)
    of_unit = _sum_where(ledger.c.unit == cards.c.unit)
    owes = or_(own > 0, of_unit > 0)
    to_lock = session.execute(select(cards.c.card_no, own, of_unit).where(
        scope, cards.c.status != CardStatus.VOID.value, owes, ~_open_arrears_lock())
        .order_by(cards.c.card_no)).all()
    # void cards too: a formally lost card keeps its locks until it is reissued
    to_release = list(session.scalars(select(cards.c.card_no).where(scope, ~owes, _open_arrears_lock())
                                      .order_by(cards.c.card_no)))
    for part in _chunks(to_lock):
        session.execute(insert(locks), [
            {"card_no": card_no, "kind": LockKind.ARREARS.value, "reason": _lock_reason(own_fen, unit_fen),
             "started_at": now, "ends_at": None, "created_by": ctx.settings.operator}
            for card_no, own_fen, unit_fen in part])
    for part in _chunks(to_release):
        session.execute(update(locks).where(locks.c.card_no.in_(part), locks.c.kind == LockKind.ARREARS.value,
                                           locks.c.ended_at.is_(None))
                        .values(ended_at=now, end_cause=EndCause.PAID.value, ended_by=ctx.settings.operator))
    ctx.audit.append(session, [
        *(EventDraft("lock.arrears", "locked", card_no, reason=_lock_reason(own_fen, unit_fen))
          for card_no, own_fen, unit_fen in to_lock),
        *(EventDraft("lock.arrears", "ended", card_no, reason="paid") for card_no in to_release),
    ], now)
    return [row.card_no for row in to_lock], to_release


def sync_arrears_locks_of(ctx: Context, tx, card_nos: Sequence[str]) -> tuple[list[str], list[str]]:
    """``sync_arrears_locks`` over these cards, in the use case's transaction (``Tx``)."""
    return sync_arrears_locks(ctx, tx.conn, tx.now, cards.c.card_no.in_(list(card_nos)))


def _resolve(session, debtor: Debtor) -> tuple[int | None, ColumnElement[bool]]:
    """(holder id or None, the cards whose arrears lock this debtor's balance decides)."""
    if debtor.unit is not None:
        return None, cards.c.unit == debtor.unit
    holder_id = session.scalar(select(cards.c.holder_id).where(cards.c.card_no == debtor.card_no))
    if holder_id is None:
        raise CardNotFound(debtor.card_no)
    return holder_id, cards.c.holder_id == holder_id


def _balance(session, holder_id: int | None, unit: str | None) -> int:
    column = ledger.c.holder_id == holder_id if holder_id is not None else ledger.c.unit == unit
    return int(session.scalar(select(func.coalesce(func.sum(ledger.c.amount_fen), 0)).where(column)))


def _overpayment(session, debtor: Debtor, holder_id: int | None, amount_fen: int, before: int) -> str:
    if before > 0:
        return _("a payment of {amount} is more than the {owed} {debtor} owes; nothing recorded").format(
            amount=format_fen(amount_fen), owed=format_fen(before), debtor=debtor.label)
    if holder_id is not None:
        unit = session.scalar(select(cards.c.unit).where(cards.c.card_no == debtor.card_no))
        if unit and _balance(session, None, unit) > 0:
            return _("{debtor} owes nothing; its unit {unit} owes {owed} (pay with --unit {unit}); nothing recorded"
                     ).format(debtor=debtor.label, unit=unit, owed=format_fen(_balance(session, None, unit)))
    return _("{debtor} owes nothing; nothing recorded").format(debtor=debtor.label)


def _serialise_ledger(session) -> None:
    # A unit's balance has no row of its own to lock. Every write transaction already
    # queues on one lock before this (``Database.write``: BEGIN IMMEDIATE on SQLite, the
    # advisory write lock on PostgreSQL), so no two payments can both see the old balance.
    # The audit head is no longer locked here: operator logins may not lock or move it
    # (docs/security.md, 13). Taking the same advisory lock again keeps this true should a
    # caller ever reach here through another path.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_WRITE_LOCK})


def _sum_where(condition: ColumnElement[bool]):
    return select(func.coalesce(func.sum(ledger.c.amount_fen), 0)).where(condition).correlate(cards).scalar_subquery()


def _open_arrears_lock() -> ColumnElement[bool]:
    return exists().where(locks.c.card_no == cards.c.card_no, locks.c.kind == LockKind.ARREARS.value,
                          locks.c.ended_at.is_(None))


def _lock_reason(own_fen: int, unit_fen: int) -> str:
    whose = " and ".join(name for name, owed in (("own", own_fen), ("unit", unit_fen)) if owed > 0)
    return f"unpaid contributions ({whose})"


def _check_amount(amount_fen: int) -> None:
    # parse_yuan already refuses these; a service called from code gets the same rule
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or not 0 < amount_fen <= MAX_FEN:
        raise InvalidInput(_("amount must be from 0.01 to {limit} yuan").format(limit=format_fen(MAX_FEN)))


def _chunks(items: Sequence) -> Iterable[Sequence]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


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
from typing import TYPE_CHECKING, Any

from ..domain import reasons
from ..domain.events import Action, Outcome
from ..domain.model import EndCause, LockKind
from ..domain.money import MAX_FEN, format_fen
from ..errors import CardNotFound, InvalidInput, Refused
from ..i18n import _
from ..storage.audit import EventDraft
from .context import Context

if TYPE_CHECKING:
    from ..storage.stores import Tx

# .cards (audited_refusal) is imported inside pay_arrears: it brings the ORM and bcrypt,
# which status (``reads.balances``) must not.

_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
MAX_RECEIPT = 64
_KEPT = 5000  # still-locked cards listed after a payment


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
    with ctx.write() as tx:
        tx.arrears.serialise()
        holder_id, _card = _resolve(tx, debtor)
        before = tx.arrears.balance(holder_id, debtor.unit)
        tx.arrears.add(holder_id, debtor.unit, amount_fen, now, ctx.settings.operator, period=period)
        tx.record([EventDraft(Action.ARREARS_ADD, Outcome.RECORDED, debtor.card_no, detail={
            "unit": debtor.unit, "amount": format_fen(amount_fen), "period": period,
            "balance": format_fen(before + amount_fen)})], now)
        locked, released = sync_arrears_locks(ctx, tx, now, **_scope(debtor, holder_id))
    return ArrearsResult(debtor, "debt", amount_fen, before, before + amount_fen, locked, released)


def pay_arrears(ctx: Context, debtor: Debtor, amount_fen: int, receipt: str | None) -> ArrearsResult:
    """Record a payment; a card's arrears lock ends once its holder and its unit owe nothing."""
    from .guards import audited_refusal

    _check_amount(amount_fen)
    now = ctx.now()
    try:
        with ctx.write() as tx:
            tx.arrears.serialise()
            holder_id, card = _resolve(tx, debtor)
            before = tx.arrears.balance(holder_id, debtor.unit)
            if amount_fen > before:
                raise Refused(_overpayment(tx, debtor, card, amount_fen, before))
            tx.arrears.add(holder_id, debtor.unit, -amount_fen, now, ctx.settings.operator, receipt=receipt)
            tx.record([EventDraft(Action.ARREARS_PAY, Outcome.RECORDED, debtor.card_no, detail={
                "unit": debtor.unit, "amount": format_fen(amount_fen), "receipt": receipt,
                "balance_before": format_fen(before), "balance_after": format_fen(before - amount_fen)})], now)
            scope = _scope(debtor, holder_id)
            locked, released = sync_arrears_locks(ctx, tx, now, **scope)
            kept = tx.arrears.locked_cards(**scope, limit=_KEPT)
    except Refused as error:
        raise audited_refusal(ctx, error, Action.ARREARS_PAY, debtor.card_no)
    return ArrearsResult(debtor, "payment", amount_fen, before, before - amount_fen, locked, released, kept)


def sync_arrears_locks(ctx: Context, tx: Tx, now: datetime, *, holder_id: int | None = None,
                       unit: str | None = None, card_no: str | None = None) -> tuple[list[str], list[str]]:
    """Lock the cards of one holder, one unit or one card that owe and are not locked for
    arrears; release those that no longer owe (docs/domain.md, arrears).

    Runs in the caller's write transaction; returns (newly locked, released) card numbers.
    """
    scope = {"holder_id": holder_id, "unit": unit, "card_no": card_no}
    to_lock = tx.arrears.owing_unlocked(**scope)
    # void cards too: a formally lost card keeps its locks until it is reissued
    paid_up = tx.arrears.paid_up_locks(**scope)
    released = list(dict.fromkeys(card for _id, card in paid_up))
    tx.locks.open_many(LockKind.ARREARS, [(card, _lock_reason(own_fen, unit_fen)) for card, own_fen, unit_fen in to_lock],
                       now, ctx.settings.operator)
    tx.locks.end([lock_id for lock_id, _card in paid_up], now, EndCause.PAID, ctx.settings.operator)
    tx.record([
        *(EventDraft(Action.LOCK_ARREARS, Outcome.LOCKED, card, reason=_lock_reason(own_fen, unit_fen))
          for card, own_fen, unit_fen in to_lock),
        *(EventDraft(Action.LOCK_ARREARS, Outcome.ENDED, card, reason=reasons.paid()) for card in released),
    ], now)
    return [card for card, _own, _unit in to_lock], released


def _resolve(tx: Tx, debtor: Debtor):
    """(holder id or None, the named card or None): whose balance this debtor's is."""
    if debtor.unit is not None:
        return None, None
    card = tx.cards.get(debtor.card_no)
    if card is None:
        raise CardNotFound(debtor.card_no)
    return card.holder_id, card


def _scope(debtor: Debtor, holder_id: int | None) -> dict[str, Any]:
    """The cards whose arrears lock this debtor's balance decides: the holder's, or the unit's."""
    return {"unit": debtor.unit} if debtor.unit is not None else {"holder_id": holder_id}


def _overpayment(tx: Tx, debtor: Debtor, card, amount_fen: int, before: int) -> str:
    if before > 0:
        return _("a payment of {amount} is more than the {owed} {debtor} owes; nothing recorded").format(
            amount=format_fen(amount_fen), owed=format_fen(before), debtor=debtor.label)
    if card is not None and card.unit:
        owed = tx.arrears.balance(unit=card.unit)
        if owed > 0:
            return _("{debtor} owes nothing; its unit {unit} owes {owed} (pay with --unit {unit}); nothing recorded"
                     ).format(debtor=debtor.label, unit=card.unit, owed=format_fen(owed))
    return _("{debtor} owes nothing; nothing recorded").format(debtor=debtor.label)


def _lock_reason(own_fen: int, unit_fen: int) -> str:
    return reasons.unpaid(own=own_fen > 0, unit=unit_fen > 0)


def _check_amount(amount_fen: int) -> None:
    # parse_yuan already refuses these; a service called from code gets the same rule
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or not 0 < amount_fen <= MAX_FEN:
        raise InvalidInput(_("amount must be from 0.01 to {limit} yuan").format(limit=format_fen(MAX_FEN)))

"""PIN reset and change, and the admin lock.

bcrypt runs outside every write transaction; the write step re-reads the card
under its row lock and re-checks what the slow step assumed, so a state change
in between is refused rather than overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..domain import pins
from ..domain.events import Action, Outcome
from ..domain.identity import IdNumber
from ..domain.lifecycle import pin_reset_problem
from ..domain.model import CardStatus, EndCause, LockKind, LockView, effective_status
from ..domain.money import format_fen
from ..domain.records import CardRecord
from ..errors import CardLocked, InvalidInput, NotAllowed, Refused, WeakPin, WrongPin
from ..i18n import N_, _, terms
from ..storage.audit import EventDraft
from .context import Context
from .guards import Agent, audited_refusal, check_identity, check_representation, load_card, refuse_weak
from .locks import end_due_pin_locks
from .verify import verify_pin

if TYPE_CHECKING:
    from ..storage.stores import Tx


def status_of(card: CardRecord, now) -> str:
    return effective_status(card.status, card.loss_kind, card.loss_lapses_at, now)


@dataclass(frozen=True)
class ResetResult:
    card_no: str
    pin_lock_cleared: bool
    still_locked: list[LockView]
    owed_fen: int

    def record(self) -> dict[str, Any]:
        return {"card_no": self.card_no, "result": "reset", "pin_lock_cleared": self.pin_lock_cleared,
                "still_locked": [lock.record() for lock in self.still_locked], "owed": format_fen(self.owed_fen)}


def reset_pin(ctx: Context, card_no: str, person: IdNumber, pin: str, agent: Agent | None = None) -> ResetResult:
    """The holder forgot the PIN: identity checked, new PIN set, PIN lock and failure count cleared.

    Arrears and admin locks stay; they have their own ways to end.
    """
    action = Action.PIN_RESET
    try:
        with ctx.read() as tx:
            card = load_card(tx, card_no)
            problem = pin_reset_problem(status_of(card, ctx.now()))
            if problem:
                raise NotAllowed(problem)
            holder = check_identity(ctx, tx, card, person, N_("PIN reset"))
            detail = check_representation(ctx, tx, card, person, agent)
            refuse_weak(ctx, tx, card, pin, holder)
            holder_id = card.holder_id
    except (Refused, InvalidInput) as error:
        raise audited_refusal(ctx, error, action, card_no)
    new_hash = pins.hash_pin(pin, ctx.keys.pepper, ctx.bcrypt_cost)  # slow: outside any lock
    now = ctx.now()
    with ctx.write() as tx:
        card = load_card(tx, card_no, for_update=True)
        # a lock already past its end is recorded as expired, not as cleared by this reset
        if end_due_pin_locks(tx, [card_no]):
            card = load_card(tx, card_no)  # the expiry reset the failure count
        problem = pin_reset_problem(status_of(card, now)) or (
            None if card.holder_id == holder_id else _("the card changed hands"))
        if problem is None:
            result = _apply_reset(ctx, tx, card, new_hash, detail, now)
        else:
            tx.record([EventDraft(action, Outcome.REFUSED, card_no, reason=problem)], now)
    if problem is not None:
        raise NotAllowed(_("card {card} changed state during the PIN reset: {problem}; nothing changed").format(
            card=card_no, problem=problem))
    return result


def _apply_reset(ctx: Context, tx: Tx, card: CardRecord, new_hash: str, detail: dict, now) -> ResetResult:
    # the PIN locks past their end were ended just before: every open one binds now
    pin_locks = [lock.id for lock in tx.locks.effective(card.card_no, now, LockKind.PIN)]
    tx.locks.end(pin_locks, now, EndCause.RESET, ctx.settings.operator)
    tx.cards.update(card.card_no, pin_hash=new_hash, pin_scheme=pins.SCHEME_PEPPERED, failures=0)
    still = tx.locks.open_for([card.card_no], now).get(card.card_no, [])
    own, of_unit = tx.reads.balances([card.holder_id], [card.unit])
    owed = own.get(card.holder_id, 0) + of_unit.get(card.unit, 0)
    tx.record([EventDraft(Action.PIN_RESET, Outcome.RESET, card.card_no, detail={
        **detail, "pin_locks_cleared": len(pin_locks), "still_locked": sorted({lock.kind for lock in still})})], now)
    return ResetResult(card.card_no, bool(pin_locks), still, owed)


def change_pin(ctx: Context, card_no: str, old: str, new: str) -> None:
    """Old PIN then new PIN. The old PIN counts like ``verify``: a wrong one can lock the card.

    Only a correct old PIN reaches the weak-PIN check: its refusals name the birth date and the
    end of the ID number, so without the PIN they would let anyone holding just the card number
    read those digits off one refusal at a time (docs/security.md, "Oracles").
    """
    action = Action.PIN_CHANGE
    if old == new:  # compares what was typed, nothing stored: no attempt spent, nothing told
        raise audited_refusal(ctx, WeakPin(_("the new PIN is the same as the current one")), action, card_no)
    with ctx.read() as tx:
        expected = load_card(tx, card_no).pin_hash
    checked = verify_pin(ctx, card_no, old, action=action)
    if checked.result == "wrong_pin":
        if checked.locks:
            raise WrongPin(_("the current PIN is wrong; card {card} is now locked; PIN not changed").format(
                card=card_no))
        raise WrongPin(_("the current PIN is wrong; {left} attempt(s) left; PIN not changed").format(
            left=checked.attempts_left))
    if checked.result != "ok":
        kinds = sorted({lock.kind for lock in checked.locks})
        raise CardLocked((_("card {card} is locked ({kinds}); PIN not changed") if kinds
                          else _("card {card} is not in use; PIN not changed")).format(
            card=card_no, kinds=terms(kinds)))
    try:
        with ctx.read() as tx:
            refuse_weak(ctx, tx, load_card(tx, card_no), new)
    except Refused as error:
        raise audited_refusal(ctx, error, action, card_no)
    new_hash = pins.hash_pin(new, ctx.keys.pepper, ctx.bcrypt_cost)
    for _attempt in range(3):
        current = _swap_hash(ctx, card_no, expected, new_hash)
        if current is None:
            return
        # The hash moved since the old PIN was checked (a rehash, or someone reset it):
        # the change stands only if the old PIN still opens the hash now stored.
        stored, scheme = current
        if not pins.check_pin(old, stored, scheme, ctx.keys.pepper):
            break
        expected = stored
    raise audited_refusal(ctx, NotAllowed(_("the PIN of card {card} was changed meanwhile; nothing changed").format(
        card=card_no)),
                          action, card_no)


def _swap_hash(ctx: Context, card_no: str, expected: str | None, new_hash: str) -> tuple[str, str | None] | None:
    """Store ``new_hash`` if the card still has ``expected`` and is usable; else the hash it has."""
    now = ctx.now()
    with ctx.write() as tx:
        card = load_card(tx, card_no, for_update=True)
        usable = status_of(card, now) == CardStatus.ACTIVE and not tx.locks.any_effective(card_no, now)
        if usable and card.pin_hash == expected and expected is not None:
            tx.cards.update(card_no, pin_hash=new_hash, pin_scheme=pins.SCHEME_PEPPERED, failures=0)
            tx.record([EventDraft(Action.PIN_CHANGE, Outcome.CHANGED, card_no)], now)
            return None
        if not usable:
            tx.record([EventDraft(Action.PIN_CHANGE, Outcome.REFUSED_LOCKED, card_no)], now)
        current = (card.pin_hash, card.pin_scheme)
    if not usable or current[0] is None:
        raise CardLocked(_("card {card} became locked or unusable before the PIN was changed; nothing changed").format(
            card=card_no))
    return current


def lock_admin(ctx: Context, card_no: str, reason: str) -> str:
    """Put an admin (account-anomaly) lock on a card; 'locked' or 'already locked'."""
    now = ctx.now()
    with ctx.write() as tx:
        card = load_card(tx, card_no, for_update=True)
        if card.status == CardStatus.VOID:
            problem = _("card is void; a void card cannot be locked")
            tx.record([EventDraft(Action.LOCK_ADMIN, Outcome.REFUSED, card_no, reason=problem)], now)
        else:
            problem = None
            held = bool(tx.locks.effective(card_no, now, LockKind.ADMIN))
            if not held:
                tx.locks.open(card_no, LockKind.ADMIN, reason, now, None, ctx.settings.operator)
            outcome = Outcome.ALREADY_LOCKED if held else Outcome.LOCKED
            tx.record([EventDraft(Action.LOCK_ADMIN, outcome, card_no, reason=reason)], now)
    if problem:
        raise NotAllowed(problem)
    return outcome.replace("_", " ")

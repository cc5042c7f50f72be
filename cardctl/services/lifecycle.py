"""PIN reset and change, the admin lock, and who may act for a holder.

bcrypt runs outside every write transaction; the write step re-reads the card
under its row lock and re-checks what the slow step assumed, so a state change
in between is refused rather than overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ..domain import pins
from ..domain.identity import IdNumber
from ..domain.lifecycle import pin_reset_problem, representation_problem
from ..domain.model import CardStatus, EndCause, LockKind, LockView, effective_status
from ..domain.money import format_fen
from ..errors import CardLocked, InvalidInput, NotAllowed, Refused, WeakPin, WrongPin
from ..i18n import N_, _, terms
from ..storage.audit import EventDraft
from ..storage.models import Card, Lock
from ..storage.stores import Tx
from .cards import audited_refusal, check_identity, load_card, refuse_weak
from .context import Context
from .locks import effective, end_due_pin_locks
from .reads import balances, open_locks
from .verify import verify_pin


@dataclass(frozen=True)
class Agent:
    """Someone acting for the holder (委托代办), or a minor's guardian; both ID numbers are recorded."""

    id_number: IdNumber
    name: str


def check_representation(ctx: Context, session: Session, card: Card, person: IdNumber,
                         agent: Agent | None) -> dict[str, Any]:
    """Refuse a minor without a guardian, or an agent who may not act; returns the event detail.

    ``person`` has already been matched to the card's holder.
    """
    today = ctx.now().date()
    minor_age = ctx.policy_for(session, card.region).minor_age
    holder_age = person.age(today)
    problem = representation_problem(
        holder_age, minor_age, agent.id_number.age(today) if agent else None,
        agent is not None and agent.id_number.value == person.value)
    if problem:
        raise RepresentationRefused(problem)
    if agent is None:
        return {}
    # No "guardian" flag and no age: either says the holder is a minor, which narrows the birth
    # date enough to rebuild the ID number from the mask (docs/security.md, "A copy of the database").
    return {"agent": agent.id_number.masked, "agent_name": agent.name}


class RepresentationRefused(Refused):
    """The clerk, who holds the ID card, is told why (the holder's or agent's age); the trail is
    told only that someone must act for the holder, which says nothing of anyone's age."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.recorded = _("a guardian or an adult agent other than the holder must act "
                          "(--agent-id-number and --agent-name)")


def status_of(card: Card, now) -> str:
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
    action = "pin.reset"
    try:
        with ctx.db.read() as session:
            card = load_card(session, card_no)
            problem = pin_reset_problem(status_of(card, ctx.now()))
            if problem:
                raise NotAllowed(problem)
            check_identity(ctx, session, card, person, N_("PIN reset"))
            detail = check_representation(ctx, session, card, person, agent)
            refuse_weak(ctx, session, card, pin)
            holder_id = card.holder_id
    except (Refused, InvalidInput) as error:
        raise audited_refusal(ctx, error, action, card_no)
    new_hash = pins.hash_pin(pin, ctx.keys.pepper, ctx.bcrypt_cost)  # slow: outside any lock
    now = ctx.now()
    with ctx.db.write() as session:
        card = load_card(session, card_no, for_update=True)
        # a lock already past its end is recorded as expired, not as cleared by this reset
        end_due_pin_locks(Tx(session.connection(), lambda: now, ctx.audit), [card_no])
        session.refresh(card)
        problem = pin_reset_problem(status_of(card, now)) or (
            None if card.holder_id == holder_id else _("the card changed hands"))
        if problem is None:
            result = _apply_reset(ctx, session, card, new_hash, detail, now)
        else:
            ctx.audit.append(session, [EventDraft(action, "refused", card_no, reason=problem)], now)
    if problem is not None:
        raise NotAllowed(_("card {card} changed state during the PIN reset: {problem}; nothing changed").format(
            card=card_no, problem=problem))
    return result


def _apply_reset(ctx: Context, session: Session, card: Card, new_hash: str, detail: dict, now) -> ResetResult:
    pin_locks = list(session.scalars(select(Lock.id).where(
        Lock.card_no == card.card_no, Lock.kind == LockKind.PIN.value, Lock.ended_at.is_(None))))
    Tx(session.connection(), lambda: now, ctx.audit).locks.end(pin_locks, now, EndCause.RESET, ctx.settings.operator)
    session.execute(update(Card).where(Card.card_no == card.card_no).values(
        pin_hash=new_hash, pin_scheme=pins.SCHEME_PEPPERED, failures=0))
    still = open_locks(session, [card.card_no], now).get(card.card_no, [])
    own, of_unit = balances(session, [card.holder_id], [card.unit])
    owed = own.get(card.holder_id, 0) + of_unit.get(card.unit, 0)
    ctx.audit.append(session, [EventDraft("pin.reset", "reset", card.card_no, detail={
        **detail, "pin_locks_cleared": len(pin_locks), "still_locked": sorted({lock.kind for lock in still})})], now)
    return ResetResult(card.card_no, bool(pin_locks), still, owed)


def change_pin(ctx: Context, card_no: str, old: str, new: str) -> None:
    """Old PIN then new PIN. The old PIN counts like ``verify``: a wrong one can lock the card.

    Only a correct old PIN reaches the weak-PIN check: its refusals name the birth date and the
    end of the ID number, so without the PIN they would let anyone holding just the card number
    read those digits off one refusal at a time (docs/security.md, "Oracles").
    """
    action = "pin.change"
    if old == new:  # compares what was typed, nothing stored: no attempt spent, nothing told
        raise audited_refusal(ctx, WeakPin(_("the new PIN is the same as the current one")), action, card_no)
    with ctx.db.read() as session:
        expected = load_card(session, card_no).pin_hash
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
        with ctx.db.read() as session:
            refuse_weak(ctx, session, load_card(session, card_no), new)
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
    with ctx.db.write() as session:
        card = load_card(session, card_no, for_update=True)
        usable = status_of(card, now) == CardStatus.ACTIVE and not open_locks(session, [card_no], now)
        if usable and card.pin_hash == expected and expected is not None:
            session.execute(update(Card).where(Card.card_no == card_no).values(
                pin_hash=new_hash, pin_scheme=pins.SCHEME_PEPPERED, failures=0))
            ctx.audit.append(session, [EventDraft("pin.change", "changed", card_no)], now)
            return None
        if not usable:
            ctx.audit.append(session, [EventDraft("pin.change", "refused_locked", card_no)], now)
        current = (card.pin_hash, card.pin_scheme)
    if not usable or current[0] is None:
        raise CardLocked(_("card {card} became locked or unusable before the PIN was changed; nothing changed").format(
            card=card_no))
    return current


def lock_admin(ctx: Context, card_no: str, reason: str) -> str:
    """Put an admin (account-anomaly) lock on a card; 'locked' or 'already locked'."""
    now = ctx.now()
    with ctx.db.write() as session:
        card = load_card(session, card_no, for_update=True)
        if card.status == CardStatus.VOID:
            problem = _("card is void; a void card cannot be locked")
            ctx.audit.append(session, [EventDraft("lock.admin", "refused", card_no, reason=problem)], now)
        else:
            problem = None
            held = session.scalar(select(Lock.id).where(
                Lock.card_no == card_no, Lock.kind == LockKind.ADMIN.value, effective(now)).limit(1))
            if held is None:
                session.execute(insert(Lock).values(
                    card_no=card_no, kind=LockKind.ADMIN.value, reason=reason, started_at=now, ends_at=None,
                    created_by=ctx.settings.operator))
            outcome = "locked" if held is None else "already_locked"
            ctx.audit.append(session, [EventDraft("lock.admin", outcome, card_no, reason=reason)], now)
    if problem:
        raise NotAllowed(problem)
    return outcome.replace("_", " ")

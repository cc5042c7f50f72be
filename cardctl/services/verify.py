"""PIN verification with consecutive-failure locking.

The bcrypt check runs outside any transaction; the count-and-maybe-lock step
runs in one short write transaction holding the card's row, re-reading its
state, so concurrent wrong attempts are never lost and never exceed the limit.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, update

from ..domain import pins
from ..domain.model import CardStatus, LockKind, VerifyResult, effective_status, iso
from ..storage.audit import EventDraft
from ..storage.models import Card, Lock
from .cards import load_card
from .context import Context
from .locks import end_due_pin_locks, open_locks

ACTION = "pin.verify"


def verify_pin(ctx: Context, card_no: str, pin: str, action: str = ACTION) -> VerifyResult:
    for _ in range(3):
        with ctx.db.read() as session:
            card = load_card(session, card_no)
            snapshot = (card.status, card.pin_hash, card.pin_scheme)
            refused = _refusal(ctx, session, card, ctx.now())
        if refused is None:
            correct = snapshot[1] is not None and pins.check_pin(pin, snapshot[1], snapshot[2], ctx.keys.pepper)
        result = _record(ctx, card_no, None if refused else correct, snapshot, action)
        if result is not None:
            break
    else:  # the PIN was changed under us three times running
        result = _record(ctx, card_no, None, None, action)
    if result.result == "ok" and pins.needs_rehash(snapshot[1], snapshot[2], ctx.settings.bcrypt_cost):
        _rehash(ctx, card_no, pin, snapshot[1])
    return result


def _refusal(ctx: Context, session, card: Card, now) -> str | None:
    # a temporary loss report past its lapse time no longer blocks, recorded or not
    status = effective_status(card.status, card.loss_kind, card.loss_lapses_at, now)
    if status != CardStatus.ACTIVE or card.pin_hash is None:
        return "unusable"
    if open_locks(session, [card.card_no], now):
        return "locked"
    return None


def _record(ctx: Context, card_no: str, correct: bool | None, snapshot, action: str) -> VerifyResult | None:
    """Count the attempt atomically; None if the PIN changed since it was checked."""
    now = ctx.now()
    with ctx.db.write() as session:
        card = load_card(session, card_no, for_update=True)
        end_due_pin_locks(session, ctx.audit, now, [card_no])
        session.refresh(card)
        policy = ctx.policy_for(session, card.region)
        refused = _refusal(ctx, session, card, now)
        if refused is None and correct is None:
            refused = "locked"  # state changed between the check and the count; never count blind
        if refused is not None:
            # a refused attempt is not counted and the PIN was not checked
            ctx.audit.append(session, [EventDraft(action, "refused_" + refused, card_no)], now)
            return _result(session, card, refused, policy.max_attempts, now)
        if (card.status, card.pin_hash, card.pin_scheme) != snapshot:
            return None
        if correct:
            session.execute(update(Card).where(Card.card_no == card_no).values(failures=0))
            ctx.audit.append(session, [EventDraft(action, "ok", card_no)], now)
            card.failures = 0
            return _result(session, card, "ok", policy.max_attempts, now)
        failures = card.failures + 1
        session.execute(update(Card).where(Card.card_no == card_no).values(failures=failures))
        events = [EventDraft(action, "wrong_pin", card_no, detail={"failures": failures})]
        if failures >= policy.max_attempts:
            ends = now + timedelta(hours=policy.lock_hours) if policy.lock_hours else None
            reason = f"{failures} consecutive wrong PINs"
            session.execute(insert(Lock).values(
                card_no=card_no, kind=LockKind.PIN.value, reason=reason, started_at=now, ends_at=ends,
                created_by=ctx.settings.operator))
            events.append(EventDraft("lock.pin", "locked", card_no, reason=reason,
                                     detail={"until": iso(ends)}))
        ctx.audit.append(session, events, now)
        card.failures = failures
        return _result(session, card, "wrong_pin", policy.max_attempts, now)


def _result(session, card: Card, result: str, max_attempts: int, now) -> VerifyResult:
    locks = open_locks(session, [card.card_no], now).get(card.card_no, [])
    usable = effective_status(card.status, card.loss_kind, card.loss_lapses_at, now) == CardStatus.ACTIVE
    left = 0 if locks or not usable else max(0, max_attempts - card.failures)
    return VerifyResult(card.card_no, result, left, locks)


def _rehash(ctx: Context, card_no: str, pin: str, old_hash: str) -> None:
    """Upgrade a legacy or cheaper hash after a correct PIN; skipped if the PIN changed meanwhile."""
    new_hash = pins.hash_pin(pin, ctx.keys.pepper, ctx.settings.bcrypt_cost)
    with ctx.db.write() as session:
        changed = session.execute(update(Card).where(Card.card_no == card_no, Card.pin_hash == old_hash)
                                  .values(pin_hash=new_hash, pin_scheme=pins.SCHEME_PEPPERED)).rowcount
        if changed:
            ctx.audit.append(session, [EventDraft("pin.rehash", "upgraded", card_no)], ctx.now())

"""PIN verification with consecutive-failure locking.

The bcrypt check runs outside any transaction; the count-and-maybe-lock step
runs in one short write transaction holding the card's row, re-reading its
state, so concurrent wrong attempts are never lost and never exceed the limit.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import exists, insert, select, update

from ..domain import pins
from ..domain.model import CardState, CardStatus, LockKind, LockView, VerifyResult, effective_status, iso
from ..errors import CardNotFound
from ..i18n import _
from ..storage.audit import EventDraft
from ..storage.models import Card, Lock
from .context import Context
from ..storage.stores import Tx
from .locks import effective, end_due_pin_locks
from .reads import open_locks

ACTION = "pin.verify"

# what a verify needs of the card; read as plain columns, not as an ORM object
_CARD_STATE = (Card.status, Card.loss_kind, Card.loss_lapses_at, Card.pin_hash, Card.pin_scheme,
               Card.failures, Card.region, Card.void_reason, Card.replaced_by)


def verify_pin(ctx: Context, card_no: str, pin: str, action: str = ACTION) -> VerifyResult:
    for _attempt in range(3):
        now = ctx.now()
        with ctx.db.read() as session:
            card = _card_state(session, card_no, locked_at=now)
        snapshot = (card.status, card.pin_hash, card.pin_scheme)
        refused = _refusal(card, card.locked, now)
        if refused is None:
            correct = snapshot[1] is not None and pins.check_pin(pin, snapshot[1], snapshot[2], ctx.keys.pepper)
        result = _record(ctx, card_no, None if refused else correct, snapshot, action)
        if result is not None:
            break
    else:  # the PIN was changed under us three times running
        result = _record(ctx, card_no, None, None, action)
    if result.result == "ok" and pins.needs_rehash(snapshot[1], snapshot[2], ctx.bcrypt_cost):
        _rehash(ctx, card_no, pin, snapshot[1])
    return result


def _card_state(session, card_no: str, locked_at=None, for_update: bool = False):
    """The card's columns in one statement; with ``locked_at``, also whether a lock binds then."""
    columns = _CARD_STATE
    if locked_at is not None:
        columns += (exists().where(Lock.card_no == Card.card_no, effective(locked_at)).label("locked"),)
    stmt = select(*columns).where(Card.card_no == card_no)
    row = session.execute(stmt.with_for_update() if for_update else stmt).one_or_none()
    if row is None:
        raise CardNotFound(card_no)
    return row


def _refusal(card, locked: bool, now) -> str | None:
    # a temporary loss report past its lapse time no longer blocks, recorded or not
    status = effective_status(card.status, card.loss_kind, card.loss_lapses_at, now)
    if status != CardStatus.ACTIVE or card.pin_hash is None:
        return "unusable"
    if locked:
        return "locked"
    return None


def _record(ctx: Context, card_no: str, correct: bool | None, snapshot, action: str) -> VerifyResult | None:
    """Count the attempt atomically; None if the PIN changed since it was checked.

    Holds the card's row from the first statement; the effective locks are read once
    and the result is built from what this transaction wrote, not read back.
    """
    with ctx.db.write() as session:
        now = ctx.now()  # the server's time on PostgreSQL, read as this write began
        card = _card_state(session, card_no, for_update=True)
        if end_due_pin_locks(Tx(session.connection(), lambda: now, ctx.audit), [card_no]):
            card = _card_state(session, card_no)  # the expiry reset the failure count
        policy = ctx.policy_for(session, card.region)
        locks = open_locks(session, [card_no], now).get(card_no, [])
        refused = _refusal(card, bool(locks), now)
        if refused is None and correct is None:
            if snapshot is not None:
                # unlocked (or paid up) since it was read: check the PIN now rather than record a
                # refusal after the unlock in the trail, which no serial order would produce
                return None
            refused = "locked"  # retries used up; never count blind
        if refused is not None:
            # a refused attempt is not counted and the PIN was not checked
            ctx.audit.append(session, [EventDraft(action, "refused_" + refused, card_no)], now)
            return _result(card_no, card, refused, card.failures, policy.max_attempts, locks, now)
        if (card.status, card.pin_hash, card.pin_scheme) != snapshot:
            return None
        # from here no lock binds the card: the result lists at most the one set below
        conn = session.connection()
        if correct:
            if card.failures:
                conn.execute(update(Card).where(Card.card_no == card_no).values(failures=0))
            ctx.audit.append(session, [EventDraft(action, "ok", card_no)], now)
            return _result(card_no, card, "ok", 0, policy.max_attempts, [], now)
        failures = card.failures + 1
        conn.execute(update(Card).where(Card.card_no == card_no).values(failures=failures))
        events = [EventDraft(action, "wrong_pin", card_no, detail={"failures": failures})]
        if failures >= policy.max_attempts:
            ends = now + timedelta(hours=policy.lock_hours) if policy.lock_hours else None
            reason = _("{failures} consecutive wrong PINs").format(failures=failures)  # stored in English
            conn.execute(insert(Lock).values(
                card_no=card_no, kind=LockKind.PIN.value, reason=reason, started_at=now, ends_at=ends,
                created_by=ctx.settings.operator))
            events.append(EventDraft("lock.pin", "locked", card_no, reason=reason,
                                     detail={"until": iso(ends)}))
            locks = [LockView(LockKind.PIN.value, reason, now, ends, now)]
        ctx.audit.append(session, events, now)
        return _result(card_no, card, "wrong_pin", failures, policy.max_attempts, locks, now)


def _result(card_no: str, card, result: str, failures: int, max_attempts: int, locks: list[LockView],
            now) -> VerifyResult:
    status = effective_status(card.status, card.loss_kind, card.loss_lapses_at, now)
    usable = status == CardStatus.ACTIVE
    left = 0 if locks or not usable else max(0, max_attempts - failures)
    # why it is unusable, in the fields ``status`` shows (reads.card_views): a lapsed loss report is gone
    lost = status == CardStatus.LOST
    state = CardState(status, card.loss_kind if lost else None, card.loss_lapses_at if lost else None,
                      card.void_reason if status == CardStatus.VOID else None, card.replaced_by,
                      card.pin_hash is not None)
    return VerifyResult(card_no, result, left, locks, state)


def _rehash(ctx: Context, card_no: str, pin: str, old_hash: str) -> None:
    """Upgrade a legacy or cheaper hash after a correct PIN; skipped if the PIN changed meanwhile."""
    new_hash = pins.hash_pin(pin, ctx.keys.pepper, ctx.bcrypt_cost)
    with ctx.db.write() as session:
        changed = session.execute(update(Card).where(Card.card_no == card_no, Card.pin_hash == old_hash)
                                  .values(pin_hash=new_hash, pin_scheme=pins.SCHEME_PEPPERED)).rowcount
        if changed:
            ctx.audit.append(session, [EventDraft("pin.rehash", "upgraded", card_no)], ctx.now())

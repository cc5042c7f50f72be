"""PIN verification with consecutive-failure locking.

The bcrypt check runs outside any transaction; the count-and-maybe-lock step
runs in one short write transaction holding the card's row, re-reading its
state, so concurrent wrong attempts are never lost and never exceed the limit.
"""

from __future__ import annotations

from datetime import timedelta

from ..domain import pins
from ..domain import reasons
from ..domain.events import Action, Outcome
from ..domain.model import CardState, CardStatus, LockKind, LockView, VerifyResult, effective_status, iso
from ..domain.policy import Policy
from ..domain.records import CardRecord
from ..errors import CardNotFound
from ..storage.audit import EventDraft
from .context import Context
from .guards import load_card
from .locks import end_due_pin_locks

ACTION = Action.PIN_VERIFY


def verify_pin(ctx: Context, card_no: str, pin: str, action: str = ACTION) -> VerifyResult:
    for _attempt in range(3):
        now = ctx.now()
        with ctx.read() as tx:
            found = tx.cards.get_locked_at(card_no, now)
        if found is None:
            raise CardNotFound(card_no)
        card, locked = found
        snapshot = (card.status, card.pin_hash, card.pin_scheme)
        refused = _refusal(card, locked, now)
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


def _refusal(card: CardRecord, locked: bool, now) -> str | None:
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
    with ctx.write() as tx:
        now = tx.now  # the server's time on PostgreSQL, read as this write began
        card = load_card(tx, card_no, for_update=True)
        if end_due_pin_locks(tx, [card_no]):
            card = load_card(tx, card_no)  # the expiry reset the failure count
        policy = ctx.policy_for(tx, card.region)
        locks = tx.locks.open_for([card_no], now).get(card_no, [])
        refused = _refusal(card, bool(locks), now)
        if refused is None and correct is None:
            if snapshot is not None:
                # unlocked (or paid up) since it was read: check the PIN now rather than record a
                # refusal after the unlock in the trail, which no serial order would produce
                return None
            refused = "locked"  # retries used up; never count blind
        if refused is not None:
            # a refused attempt is not counted and the PIN was not checked
            outcome = Outcome.REFUSED_UNUSABLE if refused == "unusable" else Outcome.REFUSED_LOCKED
            tx.record([EventDraft(action, outcome, card_no)], now)
            return _result(card_no, card, refused, card.failures, policy.max_attempts, locks, now)
        if (card.status, card.pin_hash, card.pin_scheme) != snapshot:
            return None
        # from here no lock binds the card: the result lists at most the one set below
        if correct:
            if card.failures:
                tx.cards.set_failures(card_no, 0)
            tx.record([EventDraft(action, Outcome.OK, card_no)], now)
            return _result(card_no, card, "ok", 0, policy.max_attempts, [], now)
        failures = card.failures + 1
        tx.cards.set_failures(card_no, failures)
        events = [EventDraft(action, Outcome.WRONG_PIN, card_no, detail={"failures": failures})]
        if failures >= policy.max_attempts:
            escalated = escalation(tx, card_no, policy, now)
            if escalated is not None:  # the Nth lock in the window: a counter visit ends it, not time
                ends, reason = None, reasons.pin_escalated(failures, escalated, policy.escalate_window_days)
            else:
                ends = now + timedelta(hours=policy.lock_hours) if policy.lock_hours else None
                reason = reasons.pin_failures(failures)  # a code, worded when shown (docs/domain.md)
            tx.locks.open(card_no, LockKind.PIN, reason, now, ends, ctx.settings.operator,
                          escalated=escalated is not None)
            events.append(EventDraft(Action.LOCK_PIN, Outcome.LOCKED, card_no, reason=reason, detail={
                "until": iso(ends), **({"escalated": True} if escalated is not None else {})}))
            locks = [LockView(LockKind.PIN.value, reason, now, ends, now, escalated is not None)]
        tx.record(events, now)
        return _result(card_no, card, "wrong_pin", failures, policy.max_attempts, locks, now)


def escalation(tx, card_no: str, policy: Policy, now) -> int | None:
    """The number of this card's PIN locks within the policy's window, counting the one about
    to open, when it reaches ``escalate_after``; None when the new lock is an ordinary one
    (docs/domain.md, "Escalation to a counter visit")."""
    if not policy.escalate_after:
        return None  # off: not even the count is read
    counted = tx.locks.pin_locks_since(card_no, now - timedelta(days=policy.escalate_window_days)) + 1
    return counted if counted >= policy.escalate_after else None


def _result(card_no: str, card: CardRecord, result: str, failures: int, max_attempts: int, locks: list[LockView],
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
    with ctx.write() as tx:
        # compare-and-set: a PIN changed since the check keeps its new hash
        if tx.cards.update_if(card_no, {"pin_hash": old_hash}, pin_hash=new_hash, pin_scheme=pins.SCHEME_PEPPERED):
            tx.record([EventDraft(Action.PIN_REHASH, Outcome.UPGRADED, card_no)])

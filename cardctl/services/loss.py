"""Loss reports (挂失), their withdrawal (解挂) and lapse, and reissue (补办).

A temporary report lapses by itself: ``effective_status`` decides that on every
read, and ``lapses.end_lapsed_losses`` (run by the cron sweep and before any change
to the card) records it at the moment it happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..domain import reasons
from ..domain.events import Action, Outcome
from ..domain.identity import IdNumber
from ..domain.lifecycle import cancel_loss_problem, loss_report_problem, reissue_problem
from ..domain.model import CardStatus, EndCause, LockKind, LossKind, iso
from ..domain.money import format_fen
from ..domain.records import CardRecord, HolderRecord
from ..errors import Conflict, InvalidInput, NotAllowed, Refused
from ..i18n import N_, _
from ..storage.audit import EventDraft
from .arrears import sync_arrears_locks
from .context import Context
from .guards import Agent, audited_refusal, check_identity, check_representation, load_card
from .lapses import end_lapsed_losses
from .lifecycle import status_of
from .locks import end_due_pin_locks

if TYPE_CHECKING:
    from ..storage.stores import Tx


@dataclass(frozen=True)
class LossResult:
    card_no: str
    result: str  # reported | withdrawn
    kind: str | None
    status: str
    lapses_at: datetime | None = None

    def record(self) -> dict[str, Any]:
        return {"card_no": self.card_no, "result": self.result, "loss_kind": self.kind,
                "status": self.status, "lapses_at": iso(self.lapses_at)}


def report_lost(ctx: Context, card_no: str, temporary: bool, person: IdNumber | None = None,
                agent: Agent | None = None) -> LossResult:
    """Block every use at once. Temporary: withdrawable, lapses after the region's days.
    Formal (or a temporary report made formal): the card is void for good."""
    if person is None and not temporary:
        raise InvalidInput(_("a formal loss report voids the card; the holder's --id-number is required"))
    if person is None and agent is not None:
        raise InvalidInput(_("an agent acts with the holder's --id-number"))
    action = Action.LOSS_REPORT
    now = ctx.now()
    try:
        with ctx.write() as tx:
            card = _locked_card(tx, card_no)
            problem = loss_report_problem(card.status, temporary)
            if problem:
                raise NotAllowed(problem)
            detail, _holder = _identified(ctx, tx, card, person, agent)
            was_lost = card.status == CardStatus.LOST
            if temporary:
                lapses = now + timedelta(days=ctx.policy_for(tx, card.region).temp_loss_days)
                values = {"status": CardStatus.LOST.value, "loss_kind": LossKind.TEMPORARY.value,
                          "lost_at": now, "loss_lapses_at": lapses}
            else:
                lapses = None
                values = {"status": CardStatus.VOID.value, "loss_kind": LossKind.FORMAL.value,
                          "lost_at": card.lost_at if was_lost else now, "loss_lapses_at": None,
                          "void_reason": reasons.lost_formal()}
            tx.cards.update(card_no, **values)
            kind = values["loss_kind"]
            tx.record([EventDraft(action, Outcome(kind), card_no, detail={
                **detail, "lapses_at": iso(lapses), "made_formal": was_lost and not temporary})], now)
    except Refused as error:
        raise audited_refusal(ctx, error, action, card_no)
    return LossResult(card_no, "reported", kind, values["status"], lapses)


def cancel_loss(ctx: Context, card_no: str, person: IdNumber, agent: Agent | None = None) -> LossResult:
    """Withdraw a temporary loss report that has not lapsed; the card is active again."""
    action = Action.LOSS_CANCEL
    now = ctx.now()
    try:
        with ctx.write() as tx:
            card = load_card(tx, card_no, for_update=True)
            if card.status == CardStatus.LOST and status_of(card, now) != CardStatus.LOST:
                raise NotAllowed(_("the temporary loss report lapsed at {at}; the card is active again").format(
                    at=iso(card.loss_lapses_at)))
            problem = cancel_loss_problem(card.status, card.loss_kind)
            if problem:
                raise NotAllowed(problem)
            detail, _holder = _identified(ctx, tx, card, person, agent)
            tx.cards.end_losses([card_no])
            tx.record([EventDraft(action, Outcome.WITHDRAWN, card_no, detail=detail or None)], now)
    except Refused as error:
        raise audited_refusal(ctx, error, action, card_no)
    return LossResult(card_no, "withdrawn", None, CardStatus.ACTIVE.value)


@dataclass(frozen=True)
class ReissueResult:
    old_card_no: str
    new_card_no: str
    cause: str  # lost | damaged
    carried_locks: list[str]  # kinds of lock the new card starts with
    owed_fen: int

    def record(self) -> dict[str, Any]:
        return {"card_no": self.old_card_no, "new_card_no": self.new_card_no, "result": "reissued",
                "cause": self.cause, "new_status": CardStatus.PENDING.value,
                "carried_locks": self.carried_locks, "owed": format_fen(self.owed_fen)}


def reissue(ctx: Context, card_no: str, new_card_no: str, person: IdNumber, damaged: bool = False,
            agent: Agent | None = None) -> ReissueResult:
    """Replace a lost (or, with ``damaged``, a live) card: the old one is void, the new one
    pending for the same holder. Debts follow the holder, so an arrears lock follows too;
    an admin lock is carried over, since a new card must not escape it."""
    action = Action.CARD_REISSUE
    now = ctx.now()
    if new_card_no == card_no:
        raise InvalidInput(_("the new card number must differ from the old one"))
    try:
        with ctx.write() as tx:
            card = _locked_card(tx, card_no)
            problem = reissue_problem(card.status, card.loss_kind, card.replaced_by, damaged)
            if problem:
                raise NotAllowed(problem)
            detail, holder = _identified(ctx, tx, card, person, agent)
            _refuse_taken(tx, card, new_card_no)
            cause = "damaged" if card.status in (CardStatus.ACTIVE, CardStatus.PENDING) else "lost"
            tx.record([
                EventDraft(action, Outcome.REISSUED, card_no,
                           detail={**detail, "new_card": new_card_no, "cause": cause}),
                EventDraft(Action.CARD_ISSUE, Outcome.ISSUED, new_card_no, detail={
                    "replaces": card_no, "region": card.region, "type": card.insurance_type,
                    "holder": holder.id_masked}),
            ], now)
            carried = _replace(ctx, tx, card, new_card_no, cause, now)
            locked, _released = sync_arrears_locks(ctx, tx, now, card_no=new_card_no)
            own, of_unit = tx.reads.balances([card.holder_id], [card.unit])
    except Refused as error:
        raise audited_refusal(ctx, error, action, card_no)
    kinds = sorted(set(carried) | ({LockKind.ARREARS.value} if locked else set()))
    return ReissueResult(card_no, new_card_no, cause, kinds,
                         own.get(card.holder_id, 0) + of_unit.get(card.unit, 0))


def _locked_card(tx: Tx, card_no: str) -> CardRecord:
    """The card under its row lock, with what time has already ended (a PIN lock, a
    temporary loss report) recorded first, at the time it ended."""
    card = load_card(tx, card_no, for_update=True)
    ended = end_due_pin_locks(tx, [card_no])
    if end_lapsed_losses(tx, [card_no]) or ended:
        card = load_card(tx, card_no)
    return card


def _identified(ctx: Context, tx: Tx, card: CardRecord, person: IdNumber | None,
                agent: Agent | None) -> tuple[dict[str, Any], HolderRecord | None]:
    """The event detail of who acted, and the holder (read once), when an ID number is given."""
    if person is None:
        return {}, None
    holder = check_identity(ctx, tx, card, person, N_("the request"))
    return check_representation(ctx, tx, card, person, agent), holder


def _refuse_taken(tx: Tx, card: CardRecord, new_card_no: str) -> None:
    if tx.cards.exists(new_card_no):
        raise Conflict(_("card number {card} is already taken").format(card=new_card_no))
    other = tx.cards.other_live_card(card.holder_id, card.card_no)
    if other is not None:
        raise Conflict(_("the holder already has another live card, {card}").format(card=other))


def _replace(ctx: Context, tx: Tx, card: CardRecord, new_card_no: str, cause: str, now: datetime) -> list[str]:
    """Void the old card, insert the new one, move the old card's locks; returns carried kinds."""
    tx.cards.update(card.card_no, status=CardStatus.VOID.value, replaced_by=new_card_no, loss_lapses_at=None,
                    void_reason=card.void_reason or reasons.reissued(new_card_no, cause))
    # the old card leaves the live set first, so the one-live-card-per-holder index holds
    tx.cards.insert(card_no=new_card_no, holder_id=card.holder_id, region=card.region,
                    insurance_type=card.insurance_type, issuer=card.issuer, unit=card.unit,
                    status=CardStatus.PENDING.value, failures=0, issued_at=now, replaces=card.card_no)
    # the PIN locks past their end were ended just before (``_locked_card``): every open lock binds now
    held = tx.locks.effective(card.card_no, now)
    admin = [lock.reason for lock in held if lock.kind == LockKind.ADMIN.value]
    if held:
        tx.locks.end([lock.id for lock in held], now, EndCause.REPLACED, ctx.settings.operator)
    for reason in admin:
        tx.locks.open(new_card_no, LockKind.ADMIN, reasons.carried_over(reason, card.card_no), now, None,
                      ctx.settings.operator)
    tx.record([
        *(EventDraft(Action.LOCK_END, Outcome.REPLACED, card.card_no, detail={"kind": lock.kind, "lock": lock.id})
          for lock in held),
        *(EventDraft(Action.LOCK_ADMIN, Outcome.LOCKED, new_card_no, reason=reason,
                     detail={"carried_from": card.card_no})
          for reason in admin),
    ], now)
    return [LockKind.ADMIN.value] if admin else []

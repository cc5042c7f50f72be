"""Loss reports (挂失), their withdrawal (解挂) and lapse, and reissue (补办).

A temporary report lapses by itself: ``effective_status`` decides that on every
read, and ``lapses.end_lapsed_losses`` (run by the cron sweep and before any change
to the card) records it at the moment it happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ..domain.identity import IdNumber
from ..domain.lifecycle import cancel_loss_problem, loss_report_problem, reissue_problem
from ..domain.model import CardStatus, EndCause, LockKind, LossKind, iso
from ..errors import Conflict, InvalidInput, NotAllowed, Refused
from ..i18n import N_, _
from ..storage.audit import EventDraft
from ..storage.models import Card, Holder, Lock
from ..storage.stores import Tx
from .arrears import sync_arrears_locks
from .cards import audited_refusal, check_identity, load_card
from .context import Context
from .lapses import CLEARED, end_lapsed_losses
from .lifecycle import Agent, check_representation, status_of
from .locks import effective, end_due_pin_locks
from .reads import balances


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
    action = "loss.report"
    now = ctx.now()
    try:
        with ctx.db.write() as session:
            card = _locked_card(ctx, session, card_no, now)
            problem = loss_report_problem(card.status, temporary)
            if problem:
                raise NotAllowed(problem)
            detail = _identified(ctx, session, card, person, agent)
            was_lost = card.status == CardStatus.LOST
            if temporary:
                lapses = now + timedelta(days=ctx.policy_for(session, card.region).temp_loss_days)
                values = {"status": CardStatus.LOST.value, "loss_kind": LossKind.TEMPORARY.value,
                          "lost_at": now, "loss_lapses_at": lapses}
            else:
                lapses = None
                values = {"status": CardStatus.VOID.value, "loss_kind": LossKind.FORMAL.value,
                          "lost_at": card.lost_at if was_lost else now, "loss_lapses_at": None,
                          "void_reason": "reported lost (formal)"}
            session.execute(update(Card).where(Card.card_no == card_no).values(**values))
            kind = values["loss_kind"]
            ctx.audit.append(session, [EventDraft(action, kind, card_no, detail={
                **detail, "lapses_at": iso(lapses), "made_formal": was_lost and not temporary})], now)
    except Refused as error:
        raise audited_refusal(ctx, error, action, card_no)
    return LossResult(card_no, "reported", kind, values["status"], lapses)


def cancel_loss(ctx: Context, card_no: str, person: IdNumber, agent: Agent | None = None) -> LossResult:
    """Withdraw a temporary loss report that has not lapsed; the card is active again."""
    action = "loss.cancel"
    now = ctx.now()
    try:
        with ctx.db.write() as session:
            card = load_card(session, card_no, for_update=True)
            if card.status == CardStatus.LOST and status_of(card, now) != CardStatus.LOST:
                raise NotAllowed(_("the temporary loss report lapsed at {at}; the card is active again").format(
                    at=iso(card.loss_lapses_at)))
            problem = cancel_loss_problem(card.status, card.loss_kind)
            if problem:
                raise NotAllowed(problem)
            detail = _identified(ctx, session, card, person, agent)
            session.execute(update(Card).where(Card.card_no == card_no).values(
                status=CardStatus.ACTIVE.value, **CLEARED))
            ctx.audit.append(session, [EventDraft(action, "withdrawn", card_no, detail=detail or None)], now)
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
        from ..domain.money import format_fen

        return {"card_no": self.old_card_no, "new_card_no": self.new_card_no, "result": "reissued",
                "cause": self.cause, "new_status": CardStatus.PENDING.value,
                "carried_locks": self.carried_locks, "owed": format_fen(self.owed_fen)}


def reissue(ctx: Context, card_no: str, new_card_no: str, person: IdNumber, damaged: bool = False,
            agent: Agent | None = None) -> ReissueResult:
    """Replace a lost (or, with ``damaged``, a live) card: the old one is void, the new one
    pending for the same holder. Debts follow the holder, so an arrears lock follows too;
    an admin lock is carried over, since a new card must not escape it."""
    action = "card.reissue"
    now = ctx.now()
    if new_card_no == card_no:
        raise InvalidInput(_("the new card number must differ from the old one"))
    try:
        with ctx.db.write() as session:
            card = _locked_card(ctx, session, card_no, now)
            problem = reissue_problem(card.status, card.loss_kind, card.replaced_by, damaged)
            if problem:
                raise NotAllowed(problem)
            detail = _identified(ctx, session, card, person, agent)
            _refuse_taken(session, card, new_card_no)
            cause = "damaged" if card.status in (CardStatus.ACTIVE, CardStatus.PENDING) else "lost"
            ctx.audit.append(session, [
                EventDraft(action, "reissued", card_no, detail={**detail, "new_card": new_card_no, "cause": cause}),
                EventDraft("card.issue", "issued", new_card_no, detail={
                    "replaces": card_no, "region": card.region, "type": card.insurance_type,
                    "holder": session.get(Holder, card.holder_id).id_masked}),
            ], now)
            carried = _replace(ctx, session, card, new_card_no, cause, now)
            locked, _released = sync_arrears_locks(ctx, Tx(session.connection(), lambda: now, ctx.audit), now,
                                                   card_no=new_card_no)
            own, of_unit = balances(session, [card.holder_id], [card.unit])
    except Refused as error:
        raise audited_refusal(ctx, error, action, card_no)
    kinds = sorted(set(carried) | ({LockKind.ARREARS.value} if locked else set()))
    return ReissueResult(card_no, new_card_no, cause, kinds,
                         own.get(card.holder_id, 0) + of_unit.get(card.unit, 0))


def _locked_card(ctx: Context, session: Session, card_no: str, now: datetime) -> Card:
    """The card under its row lock, with what time has already ended (a PIN lock, a
    temporary loss report) recorded first, at the time it ended."""
    card = load_card(session, card_no, for_update=True)
    tx = Tx(session.connection(), lambda: now, ctx.audit)
    ended = end_due_pin_locks(tx, [card_no])
    if end_lapsed_losses(tx, [card_no]) or ended:
        session.refresh(card)
    return card


def _identified(ctx: Context, session: Session, card: Card, person: IdNumber | None,
                agent: Agent | None) -> dict[str, Any]:
    if person is None:
        return {}
    check_identity(ctx, session, card, person, N_("the request"))
    return check_representation(ctx, session, card, person, agent)


def _refuse_taken(session: Session, card: Card, new_card_no: str) -> None:
    if session.get(Card, new_card_no) is not None:
        raise Conflict(_("card number {card} is already taken").format(card=new_card_no))
    other = session.scalar(select(Card.card_no).where(
        Card.holder_id == card.holder_id, Card.status != CardStatus.VOID.value, Card.card_no != card.card_no))
    if other is not None:
        raise Conflict(_("the holder already has another live card, {card}").format(card=other))


def _replace(ctx: Context, session: Session, card: Card, new_card_no: str, cause: str, now: datetime) -> list[str]:
    """Void the old card, insert the new one, move the old card's locks; returns carried kinds."""
    session.execute(update(Card).where(Card.card_no == card.card_no).values(
        status=CardStatus.VOID.value, replaced_by=new_card_no, loss_lapses_at=None,
        void_reason=card.void_reason or f"reissued as {new_card_no} ({cause})"))
    # the old card leaves the live set first, so the one-live-card-per-holder index holds
    session.execute(insert(Card).values(
        card_no=new_card_no, holder_id=card.holder_id, region=card.region, insurance_type=card.insurance_type,
        issuer=card.issuer, unit=card.unit, status=CardStatus.PENDING.value, failures=0, issued_at=now,
        replaces=card.card_no))
    held = session.execute(select(Lock.id, Lock.kind, Lock.reason).where(
        Lock.card_no == card.card_no, Lock.ended_at.is_(None))).all()
    admin = session.execute(select(Lock.reason).where(
        Lock.card_no == card.card_no, Lock.kind == LockKind.ADMIN.value, effective(now))).scalars().all()
    if held:
        session.execute(update(Lock).where(Lock.id.in_([row.id for row in held])).values(
            ended_at=now, end_cause=EndCause.REPLACED.value, ended_by=ctx.settings.operator))
    for reason in admin:
        session.execute(insert(Lock).values(
            card_no=new_card_no, kind=LockKind.ADMIN.value, reason=f"{reason} (carried over from {card.card_no})",
            started_at=now, ends_at=None, created_by=ctx.settings.operator))
    ctx.audit.append(session, [
        *(EventDraft("lock.end", "replaced", card.card_no, detail={"kind": row.kind, "lock": row.id})
          for row in held),
        *(EventDraft("lock.admin", "locked", new_card_no, reason=reason, detail={"carried_from": card.card_no})
          for reason in admin),
    ], now)
    return [LockKind.ADMIN.value] if admin else []

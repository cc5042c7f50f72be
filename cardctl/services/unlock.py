"""Clearing locks: one card, a list streamed in chunks, or every expired lock (cron).

Each chunk is a handful of set-based statements in one write transaction, so
a crash loses at most the chunk in flight and a rerun finishes the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Iterable, Iterator

from ..domain.events import Action
from ..domain.identity import IdNumber, parse_card_no, shown_card_no
from ..domain.model import CardStatus, EndCause, ItemResult, LockKind, LockView, effective_status
from ..domain.records import CardState
from ..domain.results import UnlockResult
from ..errors import ROW_CONDITION, InvalidInput, Refused, row_failed
from ..i18n import _, term, terms
from ..storage.audit import EventDraft
from .context import Context
from .lapses import end_lapsed_losses
from .locks import end_due_pin_locks

if TYPE_CHECKING:  # at run time only a counter unlock loads it: it brings the ORM
    from ..storage.stores import Tx
    from .guards import Agent
    from .runs import Run

CHUNK = 5000

UNLOCKED, NOT_LOCKED, NOT_FOUND, REFUSED, INVALID = (UnlockResult.UNLOCKED, UnlockResult.NOT_LOCKED, UnlockResult.NOT_FOUND,
                                                    UnlockResult.REFUSED, UnlockResult.INVALID)
WOULD_UNLOCK, WOULD_EXPIRE, WOULD_LAPSE = "would unlock", "would expire", "would lapse"
# a Msg: worded in the chosen language on screen, in English in the trail
ESCALATED_REFUSAL = _("the PIN lock escalated to a counter visit: it ends only with the holder's ID number "
                      "(unlock --id-number or --id-stdin, or reset-pin)")
FAILED = frozenset(result for result in ROW_CONDITION if row_failed(result))  # not found, refused, invalid


@dataclass(frozen=True)
class UnlockRequest:
    """``id_number`` makes it a counter unlock: the holder's ID number, checked against each card,
    with ``agent`` the agent or, for a minor, the guardian acting for that same holder."""

    kind: LockKind
    reason: str
    id_number: IdNumber | None = None
    dry_run: bool = False
    agent: Agent | None = None


def unlock_cards(ctx: Context, raw_card_nos: Iterable[str], request: UnlockRequest,
                 run: Run | None = None) -> Iterator[ItemResult]:
    """One result per card, in input order: a card named again, however far apart, is
    reported (and audited) once, at its first mention. ``run``: a batch's run, begun in the
    first chunk that records anything (services/runs.py)."""
    if request.kind is LockKind.ARREARS:
        raise InvalidInput(_("arrears locks are lifted only by pay-arrears, never by unlock"))
    if request.agent is not None and request.id_number is None:
        raise InvalidInput(_("an agent acts with the holder's --id-number"))
    items = iter(raw_card_nos)
    seen: set[str] = set()  # card numbers already decided in this run (about 70 bytes each)
    while chunk := list(islice(items, CHUNK)):
        yield from _unlock_chunk(ctx, chunk, request, seen, run)


def _parse(raw: str) -> tuple[str | None, str]:
    try:
        return parse_card_no(raw), ""
    except InvalidInput as exc:
        return None, exc.message


def _unlock_chunk(ctx: Context, chunk: list[str], request: UnlockRequest, seen: set[str],
                  run: Run | None = None) -> list[ItemResult]:
    parsed = [(raw, *_parse(raw)) for raw in chunk]
    wanted = list(dict.fromkeys(card_no for _, card_no, _ in parsed if card_no and card_no not in seen))
    holder_hash = ctx.keys.id_hash(request.id_number.value) if request.id_number is not None else None
    with ctx.read() if request.dry_run else ctx.write() as tx:
        now = tx.now  # the server's time on PostgreSQL, read as this write began
        # the chunk's cards, under their row locks unless a dry run; holders (and the region,
        # for its minor age) only when compared
        found = tx.cards.states(wanted, with_holder=request.id_number is not None, for_update=not request.dry_run)
        if run is not None and wanted and not request.dry_run:
            run.begin_in(tx)  # every card wanted gets its event below: the run starts ahead of them
        if not request.dry_run:
            # a lock already past its end is recorded as expired, not as unlocked by this operator
            end_due_pin_locks(tx, list(found))
            end_lapsed_losses(tx, list(found))
        held = tx.locks.held(list(found), now)
        decided = {card_no: _decide(ctx, tx, found.get(card_no), held.get(card_no, []), request, holder_hash, now)
                   for card_no in wanted}
        if not request.dry_run:
            _apply(ctx, tx, decided, request, now)
    results = []
    for raw, card_no, problem in parsed:
        if card_no is None:
            results.append(ItemResult(shown_card_no(raw)[:20], INVALID, problem, kept=[]))
        elif card_no not in seen:
            seen.add(card_no)
            result, detail, _ids, _acting, kept = decided[card_no]
            results.append(ItemResult(card_no, WOULD_UNLOCK if request.dry_run and result == UNLOCKED else result,
                                      detail, kept=kept or []))  # every row has the column
    return results


def _decide(ctx: Context, tx: Tx, card: CardState | None, held: list[tuple[int, LockView]], request: UnlockRequest,
            holder_hash: str | None, now) -> tuple[str, str, list[int], dict, list[LockView] | None]:
    """(result, detail, lock ids to end, who acted for the holder, locks kept) for one card;
    ``holder_hash`` is the keyed hash of the ID number given with the request, if one was.

    Locks of kinds this unlock does not clear (arrears, or admin without --kind admin) are
    kept and reported, not a failure: the unlock did what it may, and the row says what stays
    (docs/domain.md: unlock never lifts an arrears lock)."""
    if card is None:
        return NOT_FOUND, _("no such card"), [], {}, None
    status = effective_status(card.status, card.loss_kind, card.loss_lapses_at, now)
    if status in (CardStatus.LOST, CardStatus.VOID):
        return (REFUSED, _("card is {status}; a {status} card cannot be unlocked").format(status=term(status)),
                [], {}, None)
    acting: dict = {}
    if holder_hash is not None:
        if card.id_hash != holder_hash:
            return REFUSED, _("the ID number given does not match the holder"), [], {}, None
        from .guards import check_representation

        try:  # per card: the minor age is its region's
            acting = check_representation(ctx, tx, card, request.id_number, request.agent)
        except Refused as refusal:  # the row says why; the trail's note never holds an age
            return REFUSED, refusal.message, [], {"note": getattr(refusal, "recorded", refusal.message)}, None
    clearable = [lock_id for lock_id, lock in held if lock.kind == request.kind.value]
    kept = [lock for _, lock in held if lock.kind != request.kind.value]
    if any(lock.escalated for _, lock in held if lock.kind == request.kind.value):
        # escalated to a counter visit: only the holder's identity, checked above, ends it
        # (docs/domain.md, "Escalation to a counter visit")
        if holder_hash is None:
            return REFUSED, ESCALATED_REFUSAL, [], {}, None
        acting = {**acting, "escalated": True}
    kinds = sorted({lock.kind for lock in kept})
    if clearable:
        detail = _("still locked: {kinds}").format(kinds=terms(kinds)) if kinds else ""
        return UNLOCKED, detail, clearable, acting, kept
    if not kept:
        return NOT_LOCKED, "", [], acting, kept
    ways = [_("only pay-arrears lifts it") if kind == LockKind.ARREARS.value
            else _("needs unlock --kind {kind}").format(kind=kind) for kind in kinds]
    joined = ways[0]
    for way in ways[1:]:  # messages all the way, so each part shows in the chosen language
        joined = _("{first}; {then}").format(first=joined, then=way)
    return NOT_LOCKED, _("kept: {kinds} lock ({ways})").format(kinds=terms(kinds), ways=joined), [], acting, kept


def _apply(ctx: Context, tx: Tx, decided: dict, request: UnlockRequest, now) -> None:
    to_end = [lock_id for _, _, ids, _, _ in decided.values() for lock_id in ids]
    if to_end:
        tx.locks.end(to_end, now, EndCause.UNLOCKED, ctx.settings.operator)
    if request.kind is LockKind.PIN:
        cleared = [card_no for card_no, (result, *_rest) in decided.items() if result == UNLOCKED]
        if cleared:  # clearing a PIN lock resets the consecutive-failure count
            tx.cards.reset_failures(cleared)
    tx.record([
        EventDraft(Action.LOCK_UNLOCK, UnlockResult(result).outcome, card_no, reason=request.reason,
                   detail={"kind": request.kind.value, **({"note": detail} if detail else {}), **acting})
        for card_no, (result, detail, _, acting, _kept) in decided.items()
    ], now)


@dataclass(frozen=True)
class Expired:
    card_no: str
    ended_at: object
    result: str = "expired"  # a PIN lock ended; "lapsed": a temporary loss report did

    def record(self) -> dict:
        from ..domain.model import iso
        return {"card_no": self.card_no, "result": self.result, "ended_at": iso(self.ended_at)}


def expire_due(ctx: Context, chunk: int = 10_000, run: Run | None = None) -> Iterator[Expired]:
    """The cron sweep: record the end of every PIN lock past its end time, then the lapse
    of every temporary loss report past its lapse time, chunk by chunk. ``run``: begun in the
    first chunk (the caller found something due; an idle sweep makes no run)."""
    for sweep, result in ((end_due_pin_locks, "expired"), (end_lapsed_losses, "lapsed")):
        while True:
            with ctx.write() as tx:
                if run is not None:
                    run.begin_in(tx)
                ended = sweep(tx, limit=chunk)
            for card_no, ended_at in ended:
                yield Expired(card_no, ended_at, result)
            if len(ended) < chunk:
                break


def due_now(ctx: Context, batch: int = 10_000) -> Iterator[Expired]:
    """``expire_due --dry-run``: what the sweep would record now, in the order it would, from one
    read transaction; nothing is written (the caller opens the database read-only)."""
    now = ctx.now()
    with ctx.read() as tx:
        for due, result in ((tx.locks.due_pin(now, batch), WOULD_EXPIRE), (tx.cards.due_lapses(now, batch), WOULD_LAPSE)):
            for card_no, ended_at in due:
                yield Expired(card_no, ended_at, result)

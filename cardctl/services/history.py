"""The card population as it stood at a past moment, rebuilt from the audit trail.

Each card's state (status, failure count, locks with their end times, loss report,
what replaced what) is the fold of its events up to the moment, in ``seq`` order;
balances are the sums of the ``arrears.*`` events; the policy in force is today's,
with every later ``policy.set`` undone from the old values it recorded. What does
not change after issue (holder name and masked ID, region, type, unit) is read from
the cards and holders tables. The rules that decide things on read (a PIN lock past
its end no longer binds and its failure count is gone; a temporary loss report past
its lapse time no longer blocks) are applied at the moment, as ``status`` applies
them now, through the same ``domain.model`` functions.

Cards are replayed a page at a time in card-number order: one query for the page's
cards, one for the other cards of the same holders (a debt follows the holder across
a reissue), one for their events. Memory holds one page, the employer units' balances
and the policies; the cost is one pass over the events of the cards shown.

Events written before the replay existed lack one fact: ``card.issue`` did not say whether
the card started ``pending`` or, imported with a legacy PIN hash, ``active``. For
those the card's own row decides: a PIN hash without an activation is a legacy import.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Iterator, Sequence

from ..domain import policy as policy_rules
from ..domain import reasons
from ..domain.model import CardStatus, CardView, LockKind, LockView, lock_is_effective
from ..domain.policy import Policy
from ..storage.reads import Filters
from .context import Context
from .status import SummaryRow
from .views import card_view

if TYPE_CHECKING:
    from ..storage.stores import Tx

PAGE = 1000
ARREARS_ACTIONS = ("arrears.add", "arrears.pay")


@dataclass
class _Lock:
    kind: str
    reason: str
    since: datetime
    until: datetime | None
    escalated: bool = False  # no end time: it binds until an identity check ends it


@dataclass
class _Card:
    """One card's state after the events replayed so far (locks: only those not yet ended)."""

    status: str
    replaces: str | None = None
    failures: int = 0
    locks: list[_Lock] = field(default_factory=list)
    loss_kind: str | None = None
    lost_at: datetime | None = None
    loss_lapses_at: datetime | None = None
    void_reason: str | None = None
    replaced_by: str | None = None

    def end(self, kind: str, every: bool = False) -> None:
        """End the oldest open lock of ``kind``, or all of them."""
        held = [lock for lock in self.locks if lock.kind == kind]
        for lock in held if every else held[:1]:
            self.locks.remove(lock)

    def clear_loss(self) -> None:
        self.status = CardStatus.ACTIVE.value
        self.loss_kind = self.lost_at = self.loss_lapses_at = None


def _time(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None


def _fen(yuan: str) -> int:
    return int(Decimal(yuan) * 100)


def _signed_fen(action: str, detail: dict) -> int:
    fen = _fen(detail["amount"])
    return fen if action == "arrears.add" else -fen


def apply_event(state: _Card | None, action: str, outcome: str, reason: str | None,
                detail: dict, at: datetime, legacy: bool) -> _Card | None:
    """The card's state after one of its events; None until the card is issued.

    Each branch mirrors the write of the service that recorded the event.
    """
    if action == "card.issue":
        if outcome != "issued":
            return state
        # pending unless imported with a legacy PIN hash (services/cards.py _card_row)
        start = detail.get("status") or (CardStatus.PENDING.value if "replaces" in detail or not legacy
                                         else CardStatus.ACTIVE.value)
        return _Card(start, replaces=detail.get("replaces"))
    if state is None:  # an event naming a card not yet issued (e.g. unlock: not found)
        return None
    if action == "card.activate" and outcome == "activated":
        state.status, state.failures = CardStatus.ACTIVE.value, 0
    elif action in ("pin.verify", "pin.change"):
        if outcome in ("ok", "changed"):
            state.failures = 0
        elif outcome == "wrong_pin":
            state.failures = int(detail["failures"])
    elif action == "pin.reset" and outcome == "reset":
        state.failures = 0
        state.end(LockKind.PIN.value, every=True)
    elif action == "lock.pin" and outcome == "locked":
        # services/verify.py: an escalated lock has no end time, so it stays in force at any later moment
        state.locks.append(_Lock(LockKind.PIN.value, reason or "", at, _time(detail.get("until")),
                                 bool(detail.get("escalated"))))
    elif action == "lock.expire" and outcome == "ended":
        state.end(detail.get("kind", LockKind.PIN.value))
        state.failures = 0  # services/locks.py end_due_pin_locks
    elif action == "lock.unlock" and outcome == "unlocked":
        kind = detail["kind"]
        state.locks = [lock for lock in state.locks
                       if lock.kind != kind or not lock_is_effective(lock.until, None, at)]
        if kind == LockKind.PIN.value:
            state.failures = 0
    elif action == "lock.end" and outcome == "replaced":
        state.end(detail["kind"])
    elif action == "lock.admin" and outcome == "locked":
        carried = detail.get("carried_from")
        # services/loss.py _replace stores the carried lock's reason so (docs/domain.md)
        text = reasons.carried_over(reason, carried) if carried else reason or ""
        state.locks.append(_Lock(LockKind.ADMIN.value, text, at, None))
    elif action == "lock.arrears":
        if outcome == "locked":
            state.locks.append(_Lock(LockKind.ARREARS.value, reason or "", at, None))
        elif outcome == "ended":
            state.end(LockKind.ARREARS.value, every=True)
    elif action == "loss.report":
        _report_lost(state, outcome, detail, at)
    elif (action == "loss.cancel" and outcome == "withdrawn") or (
            action == "loss.lapse" and outcome == "lapsed" and state.status == CardStatus.LOST):
        state.clear_loss()
    elif action == "card.reissue" and outcome == "reissued":
        new = detail["new_card"]
        state.status, state.replaced_by, state.loss_lapses_at = CardStatus.VOID.value, new, None
        state.void_reason = state.void_reason or reasons.reissued(new, detail["cause"])
    return state


def _report_lost(state: _Card, outcome: str, detail: dict, at: datetime) -> None:
    """services/loss.py report_lost: temporary (lost, lapses) or formal (void for good)."""
    if outcome == "temporary":
        state.status, state.loss_kind = CardStatus.LOST.value, outcome
        state.lost_at, state.loss_lapses_at = at, _time(detail.get("lapses_at"))
    elif outcome == "formal":
        state.lost_at = state.lost_at if detail.get("made_formal") else at
        state.status, state.loss_kind, state.loss_lapses_at = CardStatus.VOID.value, outcome, None
        state.void_reason = reasons.lost_formal()


def policies_at(tx: Tx, at: datetime) -> dict[str, Policy]:
    """The policies in force at ``at``: today's, with every later change undone, newest first."""
    found = {prefix: asdict(policy) for prefix, policy in tx.reads.policies_by_region().items()}
    for outcome, raw in tx.history.policy_changes_after(at):
        detail = json.loads(raw)
        prefix = "" if detail["region"] == "default" else detail["region"]
        if outcome == "created":
            found.pop(prefix, None)
        elif prefix in found:
            for name, (old, _new) in detail.get("changes", {}).items():
                found[prefix][name] = old
    return {prefix: Policy(**values) for prefix, values in found.items()}


def unit_balances_at(tx: Tx, at: datetime) -> dict[str, int]:
    """Every employer unit's balance in fen at ``at`` (debts and payments name no card)."""
    balances: Counter[str] = Counter()
    for action, raw in tx.history.unit_events(ARREARS_ACTIONS, at):
        detail = json.loads(raw)
        balances[detail["unit"]] += _signed_fen(action, detail)
    return dict(balances)


@dataclass(frozen=True)
class Replayed:
    """A card as it stood, and its holder (to total what holders owe)."""

    view: CardView
    holder_id: int


class Replay:
    """Replays pages of cards at one moment; policies and unit balances are read once."""

    def __init__(self, tx: Tx, at: datetime) -> None:
        self.store, self.at = tx.history, at
        self.policies = policies_at(tx, at)
        self.unit_balances = unit_balances_at(tx, at)
        self._max_attempts: dict[str, int] = {}  # by region: resolving a prefix per card adds up

    def cards(self, region: str | None = None, card_nos: Sequence[str] | None = None) -> Iterator[Replayed]:
        """The cards that existed at the moment, in card-number order (only ``card_nos`` if given)."""
        wanted = sorted(set(card_nos)) if card_nos is not None else None
        for page in self.store.card_pages(self.at, region, wanted, PAGE):
            yield from self._page(page)

    def _page(self, page: Sequence) -> Iterator[Replayed]:
        holder_of = {row.card_no: row.holder_id for row in page}
        # other cards of the same holders: their debts are the holder's too
        for card_no, holder_id in self.store.cards_of_holders(list(set(holder_of.values()))):
            holder_of[card_no] = holder_id
        legacy = {row.card_no: bool(row.legacy) for row in page}
        states: dict[str, _Card | None] = {}
        owed: Counter[int] = Counter()
        for card_no, action, outcome, reason, raw, at in self.store.card_events(list(holder_of), self.at):
            detail = json.loads(raw) if raw else {}
            if action in ARREARS_ACTIONS:
                if outcome == "recorded":
                    owed[holder_of[card_no]] += _signed_fen(action, detail)
            elif card_no in legacy:
                states[card_no] = apply_event(states.get(card_no), action, outcome, reason, detail, at,
                                              legacy[card_no])
        for row in page:
            state = states.get(row.card_no)
            if state is not None:
                yield Replayed(self._view(row, state, owed[row.holder_id]), row.holder_id)

    def _view(self, row, state: _Card, owed_fen: int) -> CardView:
        """The card as ``status`` showed it at the moment: the same read-time rules."""
        at = self.at
        held = state.locks if len(state.locks) < 2 else sorted(state.locks, key=lambda lock: lock.since)
        # (sorted is stable: locks started at the same moment stay in event order, as lock ids do)
        expired_pin = any(lock.kind == LockKind.PIN and not lock_is_effective(lock.until, None, at)
                          for lock in held)
        views = [LockView(lock.kind, lock.reason, lock.since, lock.until, at, lock.escalated)
                 for lock in held if lock_is_effective(lock.until, None, at)]
        max_attempts = self._max_attempts.get(row.region)
        if max_attempts is None:
            max_attempts = self._max_attempts[row.region] = policy_rules.resolve(self.policies, row.region).max_attempts
        return card_view(
            now=at, card_no=row.card_no, holder_name=row.name, id_masked=row.id_masked, region=row.region,
            status=state.status, failures=state.failures, pin_lock_expired=expired_pin, max_attempts=max_attempts,
            locks=views, insurance_type=row.insurance_type, unit=row.unit, owed_fen=owed_fen,
            unit_owed_fen=self.unit_balances.get(row.unit, 0), loss_kind=state.loss_kind, lost_at=state.lost_at,
            loss_lapses_at=state.loss_lapses_at, void_reason=state.void_reason, replaced_by=state.replaced_by,
            replaces=state.replaces)


def _matches(view: CardView, filters: Filters) -> bool:
    return ((not filters.locked or bool(view.locks)) and (not filters.status or view.status == filters.status)
            and (not filters.kind or any(lock.kind == filters.kind for lock in view.locks)))


def list_cards_at(ctx: Context, at: datetime, filters: Filters) -> Iterator[CardView]:
    """``status`` as it would have listed the cards at ``at``, in card-number order."""
    with ctx.read() as tx:
        for card in Replay(tx, at).cards(filters.region):
            if _matches(card.view, filters):
                yield card.view


def cards_at(ctx: Context, at: datetime, card_nos: Sequence[str]) -> tuple[list[CardView], list[str]]:
    """The named cards as they stood at ``at``, in the order given; and those not issued by then."""
    with ctx.read() as tx:
        found = {card.view.card_no: card.view for card in Replay(tx, at).cards(card_nos=card_nos)}
    return [found[n] for n in card_nos if n in found], [n for n in card_nos if n not in found]


def summarise(views) -> list[SummaryRow]:
    """Cards by region x status x lock kind, counted as ``status --summary`` counts them."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for view in views:
        for kind in sorted({lock.kind for lock in view.locks}) or ["none"]:
            counts[(view.region, view.status, kind)] += 1
    return [SummaryRow(*key, count) for key, count in sorted(counts.items())]


def summary_at(ctx: Context, at: datetime, filters: Filters) -> list[SummaryRow]:
    return summarise(list_cards_at(ctx, at, filters))

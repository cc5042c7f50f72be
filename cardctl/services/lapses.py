"""Temporary loss reports (临时挂失) that lapse by themselves.

``effective_status`` decides on every read that a report past its lapse time no
longer binds; ``end_lapsed_losses`` records it, at the moment it happened, from the
cron sweep and before any change to the card (docs/domain.md, loss reports). Store calls
only: the sweep and ``status`` use them without the loss-report use cases (``loss.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Iterable

from ..domain.events import Action, Outcome
from ..domain.model import LossKind
from ..storage.audit import EventDraft

if TYPE_CHECKING:
    from ..storage.stores import Tx


def end_lapsed_losses(tx: Tx, card_nos: Iterable[str] | None = None,
                      limit: int | None = None) -> list[tuple[str, datetime]]:
    """Record every temporary loss report past its lapse time: the card is active again.

    Each lapse is audited at the time it happened. Runs in the caller's write
    transaction; returns (card_no, lapsed_at) pairs, oldest first.
    """
    now = tx.now
    due = tx.cards.lapsed_losses(now, None if card_nos is None else list(card_nos), limit)
    tx.cards.end_losses([card_no for card_no, _at in due])
    tx.record([EventDraft(Action.LOSS_LAPSE, Outcome.LAPSED, card_no, detail={"kind": LossKind.TEMPORARY.value},
                          at=lapsed_at) for card_no, lapsed_at in due], now)
    return due

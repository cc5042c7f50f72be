"""Recording the expiry of PIN locks; shared by verify, unlock, the lifecycle use cases and
the cron sweep.

A PIN lock past its end time no longer binds (docs/domain.md, locks): every read already
decides so; ``end_due_pin_locks`` records it, at the moment it happened, with the reset
of the failure count that the expiry implies.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Iterable

from ..domain.events import Action, Outcome
from ..domain.model import LockKind
from ..storage.audit import EventDraft

if TYPE_CHECKING:
    from ..storage.stores import Tx


def end_due_pin_locks(tx: Tx, card_nos: Iterable[str] | None = None,
                      limit: int | None = None) -> list[tuple[str, datetime]]:
    """Record the end of every PIN lock whose end time has passed, at that end time.

    The failure count of each such card resets, as the lock's expiry implies.
    Returns (card_no, ended_at) pairs, oldest first. Runs in the caller's write transaction.
    """
    now = tx.now
    ended = tx.locks.end_due_pin(now, None if card_nos is None else list(card_nos), limit)
    if not ended:
        return []
    tx.cards.reset_failures(sorted({card_no for _id, card_no, _at in ended}))
    tx.record([EventDraft(Action.LOCK_EXPIRE, Outcome.ENDED, card_no,
                          detail={"kind": LockKind.PIN.value, "lock": lock_id}, at=ends_at)
               for lock_id, card_no, ends_at in ended], now)
    return [(card_no, ends_at) for _id, card_no, ends_at in ended]

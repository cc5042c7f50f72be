"""Ending locks whose time has passed; shared by verify, unlock, the lifecycle use cases and the
cron sweep (the SQL conditions of a lock's state: ``storage/stores/locks.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Iterable

from ..domain.events import Action, Outcome
from ..storage.audit import EventDraft
from ..storage.stores.locks import effective, pin_due  # noqa: F401  (the read paths import them from here)

if TYPE_CHECKING:
    from ..storage.stores import Tx


def end_due_pin_locks(tx: Tx, card_nos: Iterable[str] | None = None,
                      limit: int | None = None) -> list[tuple[str, datetime]]:
    """Record the end of every PIN lock whose end time has passed, at that end time.

    The failure count of each such card resets, as the lock's expiry implies.
    Returns (card_no, ended_at) pairs. Runs inside the caller's write transaction.
    """
    rows = tx.locks.end_due_pin(tx.now, None if card_nos is None else list(card_nos), limit)
    if not rows:
        return []
    tx.cards.reset_failures(sorted({card_no for _, card_no, _ in rows}))
    tx.record([EventDraft(Action.LOCK_EXPIRE, Outcome.ENDED, card_no, detail={"kind": "pin", "lock": lock_id},
                          at=ends_at) for lock_id, card_no, ends_at in rows])
    return [(card_no, ends_at) for _, card_no, ends_at in rows]

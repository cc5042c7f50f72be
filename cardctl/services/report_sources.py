"""The report's ``sources`` section: wrong PINs per place they were typed at.

The lockout counts wrong PINs per card, so someone who tries one or two PINs on each of many
cards from one pharmacy terminal never locks anything and shows nowhere else. Here the
wrong PINs of ``verify`` and ``change-pin`` in the period are grouped by where they came from
(terminal, operator, channel: docs/domain.md, "PIN guessing from one place"); a place is
flagged when its wrong PINs hit at least ``min_cards`` distinct cards. A holder who mistypes
twice is one card however often they try, so the signal is distinct cards, not attempts.

The GROUP BY runs in the database (``ReportStore.wrong_pins_by_source``); this module only
names the columns and sets the flag.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..domain.model import iso

if TYPE_CHECKING:
    from ..storage.stores import Tx

DEFAULT_MIN_CARDS = 5  # the auditor's threshold (report --min-cards); fail2ban's default maxretry is 5
COLUMNS = ["terminal", "operator", "channel", "wrong_pins", "cards", "locks", "first", "last", "flagged"]


def sources(tx: Tx, since: datetime, until: datetime, region: str | None, min_cards: int) -> list[dict[str, Any]]:
    """One row per (terminal, operator, channel) with a wrong PIN in [since, until), flagged and
    most cards first (the store orders by distinct cards, and the flag is a threshold on them)."""
    rows = tx.reports.wrong_pins_by_source(since, until, region)
    return [{"terminal": terminal, "operator": operator, "channel": channel, "wrong_pins": int(wrong),
             "cards": int(cards), "locks": int(locks or 0), "first": iso(first), "last": iso(last),
             "flagged": int(cards) >= min_cards}
            for terminal, operator, channel, wrong, cards, locks, first, last in rows]

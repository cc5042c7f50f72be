"""The bcrypt cost of PIN hashes: one database-wide setting an admin changes (``cardctl settings
set bcrypt-cost``, audited), which one client's environment may raise but never lower
(docs/security.md, "The PIN hashing cost").

Only the test suite may lower it, and only by saying so: ``CARDCTL_TEST_LOW_COST=1`` makes
``CARDCTL_BCRYPT_COST`` the cost as given (bcrypt's minimum, 4, keeps ~2000 tests fast).
"""

from __future__ import annotations

from ..errors import InvalidInput
from ..i18n import _

DEFAULT_COST = 12
# what an admin may set: below 10 a hash is cheap to try against a stolen pepper; above 16 every
# PIN check takes seconds at a counter
MIN_COST, MAX_COST = 10, 16
SETTING = "bcrypt_cost"  # the meta key, and the name in the audit trail


def stored_cost(raw: str | None) -> int:
    """The database's cost as stored: absent (a database made before the setting) or unreadable
    means the default; a value outside the range written behind cardctl's back, the nearest bound."""
    if raw is None or not raw.strip().isascii() or not raw.strip().isdigit():
        return DEFAULT_COST
    return min(max(int(raw.strip()), MIN_COST), MAX_COST)


def effective_cost(database: int, asked: int | None, test_low_cost: bool = False) -> int:
    """The cost new hashes get: the database's, or ``CARDCTL_BCRYPT_COST`` where it is higher
    (``asked``; None when unset). Lower only with the test suite's explicit switch."""
    if asked is None:
        return database
    return asked if test_low_cost else max(database, asked)


def parse_cost(raw: str | int) -> int:
    text = str(raw).strip()
    if not (text.isascii() and text.isdigit() and MIN_COST <= int(text) <= MAX_COST):
        raise InvalidInput(_("bcrypt-cost must be a whole number from {low} to {high}, not {value!r}").format(
            low=MIN_COST, high=MAX_COST, value=text[:20]))
    return int(text)

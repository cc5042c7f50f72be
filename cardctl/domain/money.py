"""Money: yuan with at most two decimals on input and output, integer fen at rest.

Floats never appear: the typed text is checked against an ASCII pattern first and
only then handed to ``Decimal``, so exponents, NaN, infinity, full-width digits and
thousands separators are refused before any arithmetic happens.
"""

from __future__ import annotations

import re
from decimal import Decimal

from ..errors import InvalidInput
from ..i18n import _

FEN_PER_YUAN = 100
MAX_YUAN = 10_000_000  # one entry above this is a typo, not a contribution
MAX_FEN = MAX_YUAN * FEN_PER_YUAN

# [0-9] rather than \d: \d would also match full-width and other Unicode digits
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_SHOWN = 24


def parse_yuan(raw: str) -> int:
    """A positive amount in yuan such as ``120`` or ``120.50``, returned in fen."""
    text = raw.strip()
    if not text:
        raise InvalidInput(_("amount is empty"))
    shown = _shown(text)
    if not text.isascii():
        raise InvalidInput(_("amount {amount}: type ASCII digits (full-width digits are not accepted)").format(
            amount=shown))
    if text.startswith("-"):
        raise InvalidInput(_("amount {amount}: must be more than 0").format(amount=shown))
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise InvalidInput(_("amount {amount}: expected yuan like 120 or 120.50").format(amount=shown))
    if match[1] is not None and len(match[1]) > 3:
        raise InvalidInput(_("amount {amount}: more than two decimals (a fen is the smallest unit)").format(
            amount=shown))
    fen = int(Decimal(text) * FEN_PER_YUAN)
    if fen <= 0:
        raise InvalidInput(_("amount {amount}: must be more than 0").format(amount=shown))
    if fen > MAX_FEN:
        raise InvalidInput(_("amount {amount}: over the limit of {limit} yuan").format(
            amount=shown, limit=format_fen(MAX_FEN)))
    return fen


def format_fen(fen: int) -> str:
    """``1234`` -> ``'12.34'``; negative balances keep their sign."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{whole}.{cents:02d}"


def _shown(text: str) -> str:
    text = "".join(char if char.isprintable() else "?" for char in text)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"

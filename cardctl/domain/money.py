"""Money: yuan with at most two decimals on input and output, integer fen at rest.

Floats never appear: the typed text is checked against an ASCII pattern first and
only then handed to ``Decimal``, so exponents, NaN, infinity, full-width digits and
thousands separators are refused before any arithmetic happens.
"""

from __future__ import annotations

import re
from decimal import Decimal

from ..errors import InvalidInput

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
        raise InvalidInput("amount is empty")
    shown = _shown(text)
    if not text.isascii():
        raise InvalidInput(f"amount {shown}: type ASCII digits (full-width digits are not accepted)")
    if text.startswith("-"):
        raise InvalidInput(f"amount {shown}: must be more than 0")
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise InvalidInput(f"amount {shown}: expected yuan like 120 or 120.50")
    if match[1] is not None and len(match[1]) > 3:
        raise InvalidInput(f"amount {shown}: more than two decimals (a fen is the smallest unit)")
    fen = int(Decimal(text) * FEN_PER_YUAN)
    if fen <= 0:
        raise InvalidInput(f"amount {shown}: must be more than 0")
    if fen > MAX_FEN:
        raise InvalidInput(f"amount {shown}: over the limit of {format_fen(MAX_FEN)} yuan")
    return fen


def format_fen(fen: int) -> str:
    """``1234`` -> ``'12.34'``; negative balances keep their sign."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{whole}.{cents:02d}"


def _shown(text: str) -> str:
    text = "".join(char if char.isprintable() else "?" for char in text)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"

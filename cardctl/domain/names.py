"""Holder names: stored as given, but never with characters that steer a terminal."""

from __future__ import annotations

import unicodedata

from ..errors import InvalidInput

MAX_NAME = 64
# bidi embeddings, overrides and isolates can make a name display as something else
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def parse_name(raw: str) -> str:
    name = raw.strip()
    if not name:
        raise InvalidInput("name must not be empty")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"name is {len(name)} characters long (at most {MAX_NAME})")
    for char in name:
        if char in _BIDI or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise InvalidInput(f"name contains a control or invisible character (U+{ord(char):04X})")
    return name

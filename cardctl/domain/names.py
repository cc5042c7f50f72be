"""Holder names: stored as given, but never with characters that steer a terminal."""

from __future__ import annotations

import unicodedata

from ..errors import InvalidInput
from ..i18n import N_, _, term

MAX_NAME = 64
MAX_REASON = 500  # an operator's reason for an action, kept in the audit trail
# bidi embeddings, overrides and isolates can make a name display as something else
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def parse_name(raw: str) -> str:
    return parse_text(raw, N_("name"), MAX_NAME)


def parse_terminal(raw: str | None) -> str | None:
    """``--terminal``: the counter PC, bank branch or self-service terminal a PIN is typed at, kept
    on every event of the command and grouped by in the report's ``sources`` section
    (docs/domain.md, "PIN guessing from one place"). None when not given; a name otherwise."""
    return None if raw is None else parse_text(raw, "--terminal", MAX_NAME)


def parse_reason(raw: str, option: str = "--reason") -> str:
    """An operator's reason (unlock, lock, operator disable, ...): every free-text option of an
    action is checked here, with one limit, ``MAX_REASON``. It may not start with the mark of a
    reason cardctl writes itself (docs/domain.md, "System reasons"), so it can never pass for one."""
    from .reasons import MARKER

    text = parse_text(raw, option, MAX_REASON)
    if text.startswith(MARKER):
        raise InvalidInput(_("{field} must not start with {marker}: it marks the reasons cardctl writes itself")
                           .format(field=term(option), marker=MARKER))
    return text


def parse_text(raw: str, what: str, max_len: int) -> str:
    """One line of free text (a name, a reason, an issuer) that cannot steer a terminal:
    no control, format (bidi, zero-width), surrogate, private-use or unassigned characters.
    Full-width spaces and any script are fine."""
    text, field = raw.strip(), term(what)
    if not text:
        raise InvalidInput(_("{field} must not be empty").format(field=field))
    if len(text) > max_len:
        raise InvalidInput(_("{field} is {length} characters long (at most {max_len})").format(
            field=field, length=len(text), max_len=max_len))
    for char in text:
        if char in _BIDI or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise InvalidInput(_("{field} contains a control or invisible character (U+{code:04X})").format(
                field=field, code=ord(char)))
    from .identity import mask_id_shapes

    return mask_id_shapes(text)  # kept in the trail and shown: never a full ID number typed in by mistake

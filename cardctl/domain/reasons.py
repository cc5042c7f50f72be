"""System reasons: why cardctl itself locked a card, ended a lock or voided a card.

They are stored as a code with its parameters and worded only when shown (docs/domain.md,
"System reasons"): in English for records (JSON, JSON lines, CSV, the audit trail as read)
and in the chosen language for tables. The stored form is

    MARKER code [parameters]

``MARKER`` is U+241E (SYMBOL FOR RECORD SEPARATOR, a visible character no one types in
prose); ``code`` is a ``Reason`` value; the parameters, when the code has any, are one
compact JSON object with sorted keys. For example::

    ␞pin.failures{"failures":3}
    ␞arrears.unpaid{"own":true,"unit":false}
    ␞lock.carried{"card":"A12345678","reason":"account anomaly under review"}

An operator's reason can never start with ``MARKER`` (``names.parse_reason`` refuses it), and
``decode`` accepts only the exact form ``encode`` writes for a known code with exactly its
parameters, so no text an operator typed is ever shown as one of cardctl's own.

Rows written before codes existed hold the English sentence itself, in locks, cards and in
hash-chained events that can never change; ``_legacy`` recognises those (and only here), so
they are worded exactly as before.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from functools import lru_cache
from typing import Any

from ..i18n import N_, Msg, term

MARKER = "\u241e"


class Reason(StrEnum):
    PIN_FAILURES = "pin.failures"  # the Nth consecutive wrong PIN locked the card
    UNPAID = "arrears.unpaid"  # unpaid contributions: the holder's own, the unit's, or both
    PAID = "arrears.paid"  # an arrears lock ended because the balance was paid
    LOST_FORMAL = "loss.formal"  # a formal loss report voided the card
    REISSUED = "card.reissued"  # the card was replaced by another
    CARRIED = "lock.carried"  # an admin lock moved to the new card at a reissue
    PIN_ESCALATED = "pin.escalated"  # the Nth PIN lock in the region's window: a counter visit ends it


# the parameters of each code, with the type each must have
PARAMS: dict[Reason, dict[str, type]] = {
    Reason.PIN_FAILURES: {"failures": int},
    Reason.UNPAID: {"own": bool, "unit": bool},
    Reason.PAID: {},
    Reason.LOST_FORMAL: {},
    Reason.REISSUED: {"card": str, "cause": str},
    Reason.CARRIED: {"card": str, "reason": str},
    Reason.PIN_ESCALATED: {"failures": int, "locks": int, "days": int},
}
REISSUE_CAUSES = ("lost", "damaged")  # services/loss.py reissue: a lost card, or one that is not

# The English each code is worded in. These are the sentences cardctl stored before codes
# existed, so a record reads the same for an old row and a new one.
PIN_FAILURES = N_("{failures} consecutive wrong PINs")
UNPAID_OWN, UNPAID_UNIT, UNPAID_BOTH = (N_("unpaid contributions (own)"), N_("unpaid contributions (unit)"),
                                        N_("unpaid contributions (own and unit)"))
PAID = N_("paid")
LOST_FORMAL = N_("reported lost (formal)")
REISSUED = N_("reissued as {card} ({cause})")
CARRIED = N_("{reason} (carried over from {card})")
PIN_ESCALATED = N_("{failures} consecutive wrong PINs; PIN lock {locks} in {days} days: needs a counter visit")


# --- the stored form ----------------------------------------------------------------------------


def encode(code: Reason, params: dict[str, Any] | None = None) -> str:
    """The stored form of ``code`` with ``params``; refuses parameters the code does not take."""
    params = dict(params or {})
    if not _valid(code, params):
        raise ValueError(f"invalid parameters for reason {code.value}: {params!r}")
    if not params:
        return MARKER + code.value
    return MARKER + code.value + json.dumps(params, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def pin_failures(failures: int) -> str:
    """A PIN lock's reason: the count of consecutive wrong PINs that set it."""
    return encode(Reason.PIN_FAILURES, {"failures": failures})


def pin_escalated(failures: int, locks: int, days: int) -> str:
    """An escalated PIN lock's reason: the wrong PINs that set it, and that it is the card's
    ``locks``th PIN lock within ``days`` days (docs/domain.md, "Escalation to a counter visit")."""
    return encode(Reason.PIN_ESCALATED, {"failures": failures, "locks": locks, "days": days})


def is_escalated(stored: str | None) -> bool:
    """Whether a stored reason is an escalated PIN lock's (cheap for any other text)."""
    if not isinstance(stored, str) or not stored.startswith(MARKER + Reason.PIN_ESCALATED.value):
        return False
    decoded = decode(stored)
    return decoded is not None and decoded[0] is Reason.PIN_ESCALATED


def unpaid(own: bool, unit: bool) -> str:
    """An arrears lock's reason: whose contributions are unpaid (the holder's own, the unit's)."""
    return encode(Reason.UNPAID, {"own": bool(own), "unit": bool(unit)})


def paid() -> str:
    """Why an arrears lock ended: the balance that set it was paid."""
    return encode(Reason.PAID)


def lost_formal() -> str:
    """Why a card is void: a formal loss report."""
    return encode(Reason.LOST_FORMAL)


def reissued(card: str, cause: str) -> str:
    """Why a card is void: it was replaced by ``card`` (``cause``: lost or damaged)."""
    return encode(Reason.REISSUED, {"card": card, "cause": cause})


def carried_over(reason: str, card: str) -> str:
    """An admin lock's reason on a new card: the old lock's reason (stored form, as it was) and
    the card it was carried over from."""
    return encode(Reason.CARRIED, {"card": card, "reason": reason})


def decode(stored: str | None) -> tuple[Reason, dict[str, Any]] | None:
    """(code, parameters) of a stored system reason; None for anything else (an operator's text,
    an English sentence written before codes existed, a damaged value)."""
    if not isinstance(stored, str) or not stored.startswith(MARKER):
        return None
    match = re.fullmatch(r"([a-z_]+\.[a-z_]+)(\{.*\})?", stored[len(MARKER):], re.DOTALL)
    if match is None:
        return None
    try:
        code = Reason(match[1])
        params = json.loads(match[2]) if match[2] else {}
    except ValueError:  # an unknown code, or parameters that are no JSON
        return None
    if not isinstance(params, dict) or not _valid(code, params):
        return None
    return (code, params) if encode(code, params) == stored else None  # the one form encode writes


def _valid(code: Reason, params: dict[str, Any]) -> bool:
    wanted = PARAMS[code]
    if params.keys() != wanted.keys():
        return False
    for name, kind in wanted.items():
        found = params[name]
        if type(found) is not kind or (kind is str and name != "reason" and not found.strip()):
            return False  # a carried lock keeps its reason as it was, whatever it was
    if code is Reason.PIN_FAILURES:
        return params["failures"] >= 1
    if code is Reason.PIN_ESCALATED:
        return params["failures"] >= 1 and params["locks"] >= 1 and params["days"] >= 1
    if code is Reason.UNPAID:
        return params["own"] or params["unit"]
    if code is Reason.REISSUED:
        return params["cause"] in REISSUE_CAUSES
    return True


# --- wording --------------------------------------------------------------------------------------


def worded(stored: str | None, translate: bool = True) -> Any:
    """A stored reason as people read it: a system reason (coded, or a sentence written before
    codes existed) worded in English, as a ``Msg`` a table shows in the chosen language
    (``translate``) or as plain English text (not); anything else (an operator's text, None, '')
    exactly as stored."""
    if not stored or isinstance(stored, Msg):
        return stored if translate or not stored else str(stored)
    message = _coded(stored) if stored.startswith(MARKER) else None
    if message is None:
        # a sentence written before codes existed reads as it is stored: only a table needs its Msg
        message = _legacy(stored) if translate else None
        if message is None:
            return stored
    return message if translate else str(message)


def for_record(stored: str | None) -> Any:
    """A stored reason as a record carries it: a coded system reason as its ``Msg`` (English in
    JSON and CSV, translated by a table), any other text as stored (a table recognises a legacy
    sentence itself, with ``worded``). As cheap as a prefix test for text that is not coded."""
    if stored and not isinstance(stored, Msg) and stored.startswith(MARKER):
        return _coded(stored) or stored
    return stored


@lru_cache(maxsize=4096)  # records repeat a few reasons many times ('3 consecutive wrong PINs')
def _coded(stored: str) -> Msg | None:
    decoded = decode(stored)
    if decoded is None:
        return None
    code, params = decoded
    if code is Reason.PIN_FAILURES:
        return Msg(PIN_FAILURES, params)
    if code is Reason.PIN_ESCALATED:
        return Msg(PIN_ESCALATED, params)
    if code is Reason.UNPAID:
        return Msg(UNPAID_BOTH if params["own"] and params["unit"] else UNPAID_OWN if params["own"] else UNPAID_UNIT)
    if code is Reason.PAID:
        return Msg(PAID)
    if code is Reason.LOST_FORMAL:
        return Msg(LOST_FORMAL)
    if code is Reason.REISSUED:
        return Msg(REISSUED, {"card": params["card"], "cause": term(params["cause"])})
    return Msg(CARRIED, {"reason": worded(params["reason"]), "card": params["card"]})


# --- rows written before codes existed --------------------------------------------------------

# The sentences cardctl stored itself before codes existed ("paid" alone stays an operator's
# word: it was only ever in events, where the table never translated it).
LEGACY = (PIN_FAILURES, UNPAID_OWN, UNPAID_UNIT, UNPAID_BOTH, LOST_FORMAL, REISSUED, CARRIED)
_FIELD = re.compile(r"\{(\w+)\}")


@lru_cache(maxsize=None)
def _patterns() -> tuple[tuple[re.Pattern, str], ...]:
    found = []
    for template in LEGACY:
        parts = _FIELD.split(template)  # literal, field, literal, field, ...
        pattern = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+)" for i, part in enumerate(parts))
        found.append((re.compile(pattern), template))
    return tuple(found)


def _legacy(text: str) -> Msg | None:
    for pattern, template in _patterns():
        match = pattern.fullmatch(text)
        if match:
            return Msg(template, {name: worded(found) if name == "reason" else
                                  term(found) if name == "cause" else found
                                  for name, found in match.groupdict().items()})
    return None

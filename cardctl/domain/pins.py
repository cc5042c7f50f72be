"""PIN rules: format, weak-PIN refusal, and peppered bcrypt hashing.

A 6-digit PIN has only 10^6 values, so bcrypt alone would fall to a stolen
database; we bcrypt an HMAC of the PIN under a pepper kept in the key file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Callable

import bcrypt

from ..errors import InvalidInput
from ..i18n import _

PIN_LENGTH = 6
SCHEME_PEPPERED = "pepper-v1"
SCHEME_LEGACY = "legacy-bcrypt"

# The most common 6-digit PINs in leaked Chinese data (Wang et al., ASIACCS 2017),
# keypad shapes and lucky numbers; runs and repeated digits are caught by rule.
COMMON_PINS = frozenset({
    "123123", "121212", "112233", "123321", "520520", "520131", "521521", "131420",
    "147258", "258369", "159753", "147369", "159357", "789456", "456123", "111222",
    "666888", "888666", "168168", "518518", "100200", "123654", "654123", "112358",
    "000001", "101010", "202020", "110110", "120120", "987654",
})


def parse_pin(raw: str) -> str:
    """Exactly 6 ASCII digits; the PIN itself is never echoed in the message."""
    pin = raw.rstrip("\r\n")
    if len(pin) != PIN_LENGTH or not pin.isascii() or not pin.isdigit():
        raise InvalidInput(_("a PIN must be exactly {length} digits (0-9)").format(length=PIN_LENGTH))
    return pin


def _is_run(pin: str) -> bool:
    steps = {(int(b) - int(a)) % 10 for a, b in zip(pin, pin[1:])}
    return steps in ({0}, {1}, {9})


def weakness(pin: str, *, default_pin: str, birth_pins: set[str],
             is_id_tail: Callable[[str], bool]) -> str | None:
    """Why ``pin`` may not be set, or None. Messages never contain the PIN."""
    if _is_run(pin):
        return _("it is one digit repeated or a run of digits")
    if pin == default_pin:
        return _("it is the region's default PIN")
    if pin in birth_pins:
        return _("it is the holder's birth date")
    if is_id_tail(pin):
        return _("it is the end of the holder's ID number")
    if pin in COMMON_PINS:
        return _("it is one of the most common PINs")
    return None


def _keyed(pin: str, pepper: bytes) -> bytes:
    return base64.b64encode(hmac.new(pepper, pin.encode(), hashlib.sha256).digest())


def hash_pin(pin: str, pepper: bytes, cost: int) -> str:
    return bcrypt.hashpw(_keyed(pin, pepper), bcrypt.gensalt(rounds=cost)).decode()


def check_pin(pin: str, stored: str, scheme: str | None, pepper: bytes) -> bool:
    secret = pin.encode() if scheme == SCHEME_LEGACY else _keyed(pin, pepper)
    try:
        return bcrypt.checkpw(secret, stored.encode())
    except ValueError:  # a malformed stored hash never matches
        return False


def needs_rehash(stored: str, scheme: str | None, cost: int) -> bool:
    """Legacy (unpeppered) hashes and hashes below the configured cost are upgraded."""
    if scheme != SCHEME_PEPPERED:
        return True
    try:
        return int(stored.split("$")[2]) < cost
    except (IndexError, ValueError):
        return True


def id_tail_checker(tail_hash: str, keyed_hash: Callable[[str], str]) -> Callable[[str], bool]:
    return lambda pin: hmac.compare_digest(keyed_hash("tail:" + pin), tail_hash)


"""A holder's birth date, kept sealed: AES-GCM under the data key, bound to the holder.

The birth date is digits 7-14 of the ID number. Beside the mask (digits 1-3 and 15-18) and
the card's region (usually digits 1-6) it leaves one ID number in clear, up to the check
character, so it is never stored in clear (docs/security.md, "A copy of the database gives
back no ID number"). The weak-PIN rule still needs it when no ID number is presented
(change-pin), so it is stored encrypted: a random 96-bit nonce, then ciphertext and tag. The
holder's keyed ID hash is the associated data, so a sealed date copied onto another
holder's row does not open there.

``cryptography`` is imported on first use: the read paths never seal or open anything.
"""

from __future__ import annotations

import os
from datetime import date

NONCE_BYTES = 12
_AAD = b"cardctl/holder-birth/v1\x00"


class SealBroken(ValueError):
    """The sealed value does not open with this key for this holder: wrong key or a tampered row."""


def _aead(data_key: bytes):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(data_key) != 32:
        raise ValueError("the data key is 32 bytes")
    return AESGCM(data_key)


def seal_birth_date(data_key: bytes, id_hash: str, birth: date, aead=None) -> bytes:
    """``aead`` lets a bulk import build the cipher once per chunk."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + (aead or _aead(data_key)).encrypt(nonce, birth.isoformat().encode(), _AAD + id_hash.encode())


def open_birth_date(data_key: bytes, id_hash: str, sealed: bytes) -> date:
    from cryptography.exceptions import InvalidTag

    sealed = bytes(sealed) if sealed is not None else b""
    if len(sealed) <= NONCE_BYTES:
        raise SealBroken("the sealed birth date is too short")
    try:
        plain = _aead(data_key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _AAD + id_hash.encode())
        return date.fromisoformat(plain.decode())
    except (InvalidTag, ValueError, UnicodeDecodeError):
        raise SealBroken("the sealed birth date does not open with this key for this holder") from None


def birth_sealer(data_key: bytes):
    """``seal(id_hash, birth)`` with one cipher object, for many holders at once."""
    aead = _aead(data_key)
    return lambda id_hash, birth: seal_birth_date(data_key, id_hash, birth, aead)

"""Ed25519 signatures over the audit chain that no counter PC can forge.

The chain's HMAC and the export MACs are keyed with the audit key, which every counter PC and
auditor holds: whoever holds it can rewrite the trail and recompute every hash. The signing
key is not derived from the master key. It is a separate private key file (PKCS#8 PEM, mode
0600) kept on the signing host only; the public key goes into the role key files. Verifying
needs only the public key, and cardctl never takes one from the database (whoever can
write the database could put their own there). See docs/security.md, "Signed heads".

What is signed: a chain head (seq, hash, time, database fingerprint) recorded in the
``signed_heads`` table by ``cardctl audit sign`` or the signing host's cron sweep, and each
export's header and end line. A rewrite by someone holding every HMAC key but not the signing
key no longer matches the last signed head before it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, KeyFileError
from ..i18n import _
from ..keys import KeyFileMissing, create_private, read_private

if TYPE_CHECKING:
    from ..config import Settings
    from ..keys import Keys

SIGNED_HEAD = "cardctl-signed-head/v1"
SIGNATURE_HEX = 128
PUBLIC_HEX = 64


def signing_key_path(settings: Settings) -> Path:
    """``CARDCTL_SIGNING_KEY``, else beside the key file: ``cardctl.key`` -> ``cardctl.signing.key``."""
    named = os.environ.get("CARDCTL_SIGNING_KEY")
    if named:
        return Path(named)
    key_file = settings.key_file
    return key_file.with_name(key_file.stem + ".signing" + key_file.suffix)


def key_id(public: bytes) -> str:
    """A short, printable name of a public key: what signatures and role files refer to."""
    return hashlib.sha256(public).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """The private signing key, loaded on the signing host."""

    private: Any
    public: bytes
    path: str

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, message: bytes) -> str:
        return self.private.sign(message).hex()


def create_signing_key(path: Path) -> bytes | None:
    """A new signing key file (O_EXCL, mode 0600); its public key, or None if the file exists."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    if not create_private(path, pem):
        return None
    return _raw_public(private)


def _raw_public(private) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_signer(path: Path) -> Signer:
    """The signing key of ``path``, which must be private, like every key file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        raw = read_private(path)
    except KeyFileMissing:
        raise KeyFileMissing(_("signing key {path} not found; signing happens on the signing host (set "
                               "CARDCTL_SIGNING_KEY), or create one with 'cardctl key new-signing'").format(
            path=path)) from None
    try:
        private = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, TypeError):
        private = None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(_("{path} is not a cardctl signing key (an Ed25519 private key in PEM)").format(path=path))
    return Signer(private, _raw_public(private), str(path))


def signer_if_present(settings: Settings) -> Signer | None:
    """The signing key when this host has one; None when there is no file (other errors are raised)."""
    try:
        return load_signer(signing_key_path(settings))
    except KeyFileMissing:
        return None


def verifies(public: bytes, message: bytes, signature: Any) -> bool:
    """Whether ``signature`` (hex) is ``public``'s Ed25519 signature over ``message``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(signature, str) or len(signature) != SIGNATURE_HEX:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_public_key(raw: str, option: str = "--public-key") -> bytes:
    """A public key given as 64 hex digits, or a file holding them (as ``key show --public`` prints)."""
    text = raw.strip()
    if len(text) != PUBLIC_HEX or not all(c in "0123456789abcdefABCDEF" for c in text):
        try:  # a public key: anyone may read it, yet a FIFO or a device must not hang or flood us
            text = read_private(Path(text), private=False).decode("ascii", "replace").strip()
        except KeyFileError as exc:
            raise InvalidInput(_("{option} {value!r}: expected 64 hex digits or a file holding them ({error})").format(
                option=option, value=raw[:80], error=exc.message)) from None
        text = text.split()[-1] if text.split() else ""
    if len(text) != PUBLIC_HEX or not all(c in "0123456789abcdefABCDEF" for c in text):
        raise InvalidInput(_("{option} {value!r}: expected 64 hex digits or a file holding them").format(
            option=option, value=raw[:80]))
    return bytes.fromhex(text)


def public_key_for(settings: Settings, keys: Keys, given: str | None) -> bytes | None:
    """The public key to verify signatures with: ``--public-key``, else the role key file's, else
    that of the signing key on this host. Never the database's."""
    if given:
        return parse_public_key(given)
    if keys.public_key is not None:
        return keys.public_key
    signer = signer_if_present(settings)
    return signer.public if signer else None


# --- what is signed --------------------------------------------------------------------------


def signing_time(now: datetime) -> datetime:
    """Whole seconds in UTC: the same text on both engines after a round trip."""
    return now.astimezone(timezone.utc).replace(microsecond=0)


def head_message(fingerprint: str, seq: int, hash_: str, signed_at: datetime) -> bytes:
    at = signing_time(signed_at).isoformat()
    return f"{SIGNED_HEAD}\n{fingerprint}\n{seq}\n{hash_}\n{at}".encode()


def signed_head_record(row: Any) -> dict[str, Any]:
    """A signed head as an export header carries it."""
    return {"seq": row.seq, "hash": row.hash, "signed_at": signing_time(row.signed_at).isoformat(),
            "key_id": row.key_id, "signature": row.signature}


def check_signed_head(record: Any, fingerprint: str, public: bytes) -> str | None:
    """Why a signed head (as in an export header) cannot be trusted, or None if it verifies."""
    if not isinstance(record, dict) or not isinstance(record.get("seq"), int) or isinstance(record.get("seq"), bool):
        return _("the signed head is damaged")
    if record.get("key_id") != key_id(public):
        return _("the signed head was signed by another key ({key})").format(key=str(record.get("key_id"))[:16])
    try:
        signed_at = datetime.fromisoformat(record["signed_at"])
        message = head_message(fingerprint, record["seq"], str(record["hash"]), signed_at)
    except (KeyError, TypeError, ValueError):
        return _("the signed head is damaged")
    if not verifies(public, message, record.get("signature")):
        return _("the signature of signed head {seq} does not verify: forged").format(seq=record["seq"])
    return None

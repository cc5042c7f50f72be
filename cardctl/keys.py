"""The secret key file and the keys derived from it.

One random master key lives in a file outside the database (mode 0600). From it
we derive, by HMAC with a label each, the PIN pepper, the key for hashing ID
numbers and the audit-chain key, so a stolen database alone reveals none of them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .errors import KeyFileError
from .i18n import _

_MASTER_BYTES = 32


@dataclass(frozen=True)
class Keys:
    pepper: bytes
    id_key: bytes
    audit_key: bytes
    fingerprint: str
    data_key: bytes  # seals what the rules need of a holder's birth date (docs/security.md)

    def id_hash(self, value: str) -> str:
        """Keyed hash used to match ID numbers without storing them."""
        # one-shot HMAC-SHA256 (the same digest as hmac.new(...).hexdigest()): an import
        # computes two per card
        return hmac.digest(self.id_key, value.encode(), "sha256").hex()


def derive(master: bytes) -> Keys:
    def sub(label: str) -> bytes:
        return hmac.new(master, label.encode(), hashlib.sha256).digest()

    return Keys(
        pepper=sub("cardctl/pin-pepper/v1"),
        id_key=sub("cardctl/id-hash/v1"),
        audit_key=sub("cardctl/audit-chain/v1"),
        fingerprint=sub("cardctl/fingerprint/v1").hex()[:16],
        data_key=sub("cardctl/holder-data/v1"),
    )


def create_key_file(path: Path) -> bool:
    """Create the key file with mode 0600 unless it exists; True if created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise KeyFileError(_("cannot create key file {path}: {error}").format(path=path, error=exc.strerror)) from None
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(_MASTER_BYTES) + "\n")
    return True


def load_keys(path: Path) -> Keys:
    try:
        raw = path.read_text().strip()
    except FileNotFoundError:
        raise KeyFileError(
            _("key file {path} not found; run 'cardctl init' or set CARDCTL_KEY_FILE").format(path=path)
        ) from None
    except OSError as exc:
        raise KeyFileError(_("cannot read key file {path}: {error}").format(path=path, error=exc.strerror)) from None
    try:
        master = bytes.fromhex(raw)
    except ValueError:
        master = b""
    if len(master) != _MASTER_BYTES:
        raise KeyFileError(_("key file {path} is not a cardctl key (expected 64 hex characters)").format(path=path))
    return derive(master)

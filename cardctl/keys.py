"""The secret key files and the keys derived from them.

One random master key (64 hex characters, created by ``init``) lives in a file outside the
database. From it we derive, by HMAC with a label each, the PIN pepper, the key for hashing
ID numbers, the key that encrypts holders' personal data and the audit-chain key, so a
stolen database alone reveals none of them.

Not everyone who runs cardctl needs all of them (docs/security.md, "Keys by role"): role key
files, derived from the master by ``cardctl key export``, carry only what a role needs. A
staff file (counter PCs) holds everything PIN and ID checks need; an auditor's holds the
audit key, the fingerprint and the public signing key, and so cannot compute a PIN or ID
hash. A role file is versioned, self-describing JSON; the master file stays 64 hex digits.

Every key file is private: one readable or writable by others is refused, as ssh refuses a
private key, and anything but a regular file (a FIFO, a device, a directory) is refused
before a byte is read, so a wrong path can never hang or crash a command.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .errors import KeyFileError
from .i18n import N_, _, term

_MASTER_BYTES = 32
_MAX_KEY_FILE = 64 << 10  # bytes: a key file is well under 1 KB; anything bigger is not one

MASTER, STAFF, AUDITOR = "master", "staff", "auditor"
ROLE_FORMAT = "cardctl-key"
ROLE_VERSION = 1
# what each role file carries besides the audit key and the fingerprint (docs/security.md)
ROLE_PARTS = {STAFF: ("pepper", "id_key", "data_key"), AUDITOR: ()}
_SECRET_PARTS = ("pepper", "id_key", "data_key")
_ROLE_NOTE = {
    STAFF: "cardctl staff key: PIN and ID checks at a counter; keep it mode 0600",
    AUDITOR: "cardctl auditor key: reads and verifies the audit trail; cannot check PINs or ID numbers",
}


class KeyFileMissing(KeyFileError):
    """The key file does not exist (the caller may know which key the database expects)."""


@dataclass(frozen=True)
class Keys:
    """The keys one key file gives. Parts a role file lacks raise KeyFileError when used."""

    audit_key: bytes
    fingerprint: str
    role: str = MASTER
    path: str = ""
    public_key: bytes | None = None  # raw Ed25519 public key, from a role file; never from the database
    master: bytes | None = field(default=None, repr=False)
    _pepper: bytes | None = field(default=None, repr=False)
    _id_key: bytes | None = field(default=None, repr=False)
    _data_key: bytes | None = field(default=None, repr=False)

    @property
    def pepper(self) -> bytes:
        return self._part(self._pepper)

    @property
    def id_key(self) -> bytes:
        return self._part(self._id_key)

    @property
    def data_key(self) -> bytes:
        return self._part(self._data_key)

    @property
    def checks_identity(self) -> bool:
        """Whether this key file can check PINs and ID numbers (master or staff)."""
        return self._pepper is not None and self._id_key is not None

    def _part(self, value: bytes | None) -> bytes:
        if value is None:
            raise KeyFileError(_("key file {path} is an auditor key file: it cannot check PINs or ID numbers; "
                                 "this needs a staff key file").format(path=self.path))
        return value

    def id_hash(self, value: str) -> str:
        """Keyed hash used to match ID numbers without storing them."""
        # one-shot HMAC-SHA256 (the same digest as hmac.new(...).hexdigest()): an import
        # computes two per card
        return hmac.digest(self.id_key, value.encode(), "sha256").hex()

    def for_role(self, role: str, public_key: bytes | None) -> dict:
        """The content of a role key file for ``role``, derived from this master key."""
        if self.master is None:
            raise KeyFileError(_("key file {path} is a role key file ({role}); role key files are made from the "
                                 "master key file").format(path=self.path, role=term(self.role, "role")))
        record = {"format": ROLE_FORMAT, "version": ROLE_VERSION, "role": role, "note": _ROLE_NOTE[role],
                  "fingerprint": self.fingerprint, "audit_key": self.audit_key.hex(),
                  "public_key": public_key.hex() if public_key else None}
        for part in ROLE_PARTS[role]:
            record[part] = getattr(self, part).hex()
        return record


def derive(master: bytes, path: str = "") -> Keys:
    def sub(label: str) -> bytes:
        return hmac.new(master, label.encode(), hashlib.sha256).digest()

    return Keys(
        audit_key=sub("cardctl/audit-chain/v1"),
        fingerprint=sub("cardctl/fingerprint/v1").hex()[:16],
        role=MASTER,
        path=path,
        master=master,
        _pepper=sub("cardctl/pin-pepper/v1"),
        _id_key=sub("cardctl/id-hash/v1"),
        _data_key=sub("cardctl/holder-data/v1"),
    )


# --- private files ---------------------------------------------------------------------------


def operators_group() -> int | None:
    """The gid of ``CARDCTL_GROUP``, the operators' group that may share the files (README), if set."""
    name = os.environ.get("CARDCTL_GROUP")
    if not name:
        return None
    try:
        import grp

        return grp.getgrnam(name).gr_gid
    except (ImportError, KeyError):
        raise KeyFileError(_("CARDCTL_GROUP={group!r} is not a group on this system").format(group=name)) from None


def create_private(path: Path, content: str, group_readable_mode: int = 0o640) -> bool:
    """Write ``content`` to a new file that only its owner (and ``CARDCTL_GROUP``) may read.

    O_EXCL: an existing file is never replaced; False if it exists.
    """
    gid = operators_group()
    mode = 0o600 if gid is None else group_readable_mode
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise KeyFileError(_("cannot create key file {path}: {error}").format(path=path, error=exc.strerror)) from None
    try:
        with os.fdopen(fd, "w") as handle:
            if gid is not None and hasattr(os, "fchown"):
                os.fchown(handle.fileno(), -1, gid)
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)  # exactly this mode, whatever the umask
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise KeyFileError(_("cannot create key file {path}: {error}").format(path=path, error=exc.strerror)) from None
    return True


_KINDS = ((stat.S_ISDIR, N_("a directory")), (stat.S_ISFIFO, N_("a FIFO")), (stat.S_ISCHR, N_("a device")),
          (stat.S_ISBLK, N_("a device")), (stat.S_ISSOCK, N_("a socket")))


def read_private(path: Path, private: bool = True) -> bytes:
    """The bytes of a key file, refused unless it is a regular file only its owner may use
    (``private=False``: a public key, which anyone may read).

    Opened without blocking (a FIFO would otherwise wait for a writer forever) and checked with
    fstat on the open descriptor, so what is checked is what is read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise KeyFileMissing(_("key file {path} not found; restore it from backup (or give --key-file / "
                               "CARDCTL_KEY_FILE); for a new database run 'cardctl init'").format(path=path)) from None
    except OSError as exc:
        raise KeyFileError(_("cannot read key file {path}: {error}").format(path=path, error=exc.strerror)) from None
    try:
        info = os.fstat(fd)
        for test, kind in _KINDS:
            if test(info.st_mode):
                raise KeyFileError(_("key file {path} is {kind}, not a key file; give the key file itself").format(
                    path=path, kind=term(kind)))
        if private:
            check_private(path, info)
        data = os.read(fd, _MAX_KEY_FILE + 1)
    except OSError as exc:
        raise KeyFileError(_("cannot read key file {path}: {error}").format(path=path, error=exc.strerror)) from None
    finally:
        os.close(fd)
    if len(data) > _MAX_KEY_FILE:
        raise KeyFileError(_("key file {path} is not a cardctl key file (too large)").format(path=path))
    return data


def check_private(path: Path, info: os.stat_result) -> None:
    """Refuse a key file others may read or write: the fix is one chmod (docs/security.md)."""
    if os.name == "nt":
        return
    mode = stat.S_IMODE(info.st_mode)
    shared = mode & 0o007 or mode & 0o020
    if not shared and mode & 0o040:
        shared = info.st_gid != operators_group()  # group-readable only for the operators' group
    if shared:
        raise KeyFileError(_("key file {path} is accessible by others (mode {mode:04o}); a private key must not be: "
                             "run chmod 600 {path}").format(path=path, mode=mode))


# --- the key files ---------------------------------------------------------------------------


def create_key_file(path: Path) -> bool:
    """Create the master key file (mode 0600) unless it exists; True if created."""
    return create_private(path, secrets.token_hex(_MASTER_BYTES) + "\n")


def load_keys(path: Path) -> Keys:
    """The keys of a master or role key file."""
    raw = read_private(path)
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        text = ""
    if text.startswith("{"):
        return _role_keys(path, text)
    try:
        master = bytes.fromhex(text)
    except ValueError:
        master = b""
    if len(master) != _MASTER_BYTES:
        raise KeyFileError(_("key file {path} is not a cardctl key (expected 64 hex characters or a role key "
                             "file)").format(path=path))
    return derive(master, str(path))


def _role_keys(path: Path, text: str) -> Keys:
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("format") != ROLE_FORMAT:
        raise KeyFileError(_("key file {path} is not a cardctl key (expected 64 hex characters or a role key "
                             "file)").format(path=path))
    if record.get("version") != ROLE_VERSION:
        raise KeyFileError(_("key file {path} is a version {found} role key file; this cardctl reads version "
                             "{version}").format(path=path, found=str(record.get("version"))[:12],
                                                 version=ROLE_VERSION))
    role = record.get("role")
    if role not in ROLE_PARTS:
        raise KeyFileError(_("key file {path} names no known role").format(path=path))
    parts = {}
    for name, size in (("audit_key", 32), *((part, 32) for part in ROLE_PARTS[role])):
        parts[name] = _hex(record.get(name), size, path, name)
    if any(part in record for part in _SECRET_PARTS if part not in ROLE_PARTS[role]):
        raise KeyFileError(_("key file {path} is damaged: an auditor key file carries staff keys").format(path=path))
    fingerprint = record.get("fingerprint")
    if not isinstance(fingerprint, str) or len(fingerprint) != 16 or not _is_hex(fingerprint):
        raise KeyFileError(_("key file {path} is damaged: {part} is missing or malformed").format(
            path=path, part="fingerprint"))
    public = record.get("public_key")
    return Keys(audit_key=parts["audit_key"], fingerprint=fingerprint, role=role, path=str(path),
                public_key=None if public is None else _hex(public, 32, path, "public_key"),
                _pepper=parts.get("pepper"), _id_key=parts.get("id_key"), _data_key=parts.get("data_key"))


def _is_hex(value: str) -> bool:
    return all(c in "0123456789abcdef" for c in value)


def _hex(value, size: int, path: Path, name: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size or not _is_hex(value):
        raise KeyFileError(_("key file {path} is damaged: {part} is missing or malformed").format(path=path, part=name))
    return bytes.fromhex(value)


def write_role_file(path: Path, keys: Keys, role: str, public_key: bytes | None) -> None:
    """Write the ``role`` key file derived from master ``keys`` to a new file (O_EXCL, mode 0600)."""
    record = keys.for_role(role, public_key)
    if not create_private(path, json.dumps(record, indent=1) + "\n"):
        raise KeyFileError(_("{path} exists; a key file is never replaced").format(path=path))

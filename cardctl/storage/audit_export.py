"""The audit export file and its writer: the chain as JSON lines, verifiable later with the key
file alone (the reader and verifier are in audit_export_verify.py).

Line 1 is a header: format and version, the key fingerprint, the range of seqs and the hash
that range follows, when and by whom it was made. Then one line per event with every field
the chain hash covers, its seq, prev_hash and hash. Last an end line with the count and the
last seq and hash. Header and end line carry a MAC under the audit key, the end line's over
the header's too, so a file cut short, or given a new header or end line, fails to verify.
The MACs prove nothing against whoever holds the audit key; the header also carries the newest
signed head in the range and, made on the signing host, the end line an Ed25519 signature
(storage/signing.py), which only the public key verifies.
Lines are ASCII (``ensure_ascii``): the file reads the same on any system for years.
"""

from __future__ import annotations

import contextlib
import gzip
import hmac
import io
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, TextIO


FORMAT = "cardctl-audit-export"
VERSION = 1
MAX_LINE = 4 << 20  # bytes; an event is a few hundred, its longest reason a few hundred KB
EVENT_FIELDS = ("seq", "at", "recorded_at", "operator", "os_user", "channel", "action", "card_no",
                "outcome", "reason", "detail", "prev_hash", "hash")
# who really acted (migration 0004): in a line only when the event has it, so exports of older
# events keep the fields they always had; a line without it is hashed in the older form
ACTOR_FIELD = "actor"
# where and in which batch run (migration 0006): likewise only when set
PLACE_FIELDS = ("terminal", "run_id")
_LINE_JSON = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))
_MAC_JSON = json.JSONEncoder(ensure_ascii=True, sort_keys=True, separators=(",", ":"))


# --- writing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    key_fingerprint: str
    database: str
    from_seq: int
    to_seq: int
    prev_hash: str  # the hash of event from_seq - 1 (genesis for 1): where this range attaches
    exported_at: str
    operator: str  # who made it: the person named at the counter and the acting login
    os_user: str
    signed_head: dict[str, Any] | None = None  # the newest signed head in the range (storage/signing.py)

    def fields(self) -> dict[str, Any]:
        fields = {"format": FORMAT, "version": VERSION, **asdict(self)}
        if self.signed_head is None:  # exports without one read as they always did
            del fields["signed_head"]
        return fields


def mac(key: bytes, kind: str, fields: dict[str, Any]) -> str:
    # "cardctl-..." never starts like an event's hash input (64 hex digits, then "["), so a MAC
    # can never be passed off as an event hash or the other way round
    message = f"{FORMAT}/{VERSION} {kind}\n{_MAC_JSON.encode(fields)}"
    return hmac.digest(key, message.encode(), "sha256").hex()


def end_fields(header_mac: str, count: int, last_seq: int, last_hash: str) -> dict[str, Any]:
    return {"header_mac": header_mac, "count": count, "last_seq": last_seq, "last_hash": last_hash}


def signature_message(header: dict[str, Any], end: dict[str, Any]) -> bytes:
    """What the Ed25519 signature of an export covers: the header's fields (without its MAC) and
    the end line's (the last hash commits to every event through the chain)."""
    return f"{FORMAT}/{VERSION} signature\n{_MAC_JSON.encode({'header': header, 'end': end})}".encode()


@dataclass
class ExportWriter:
    """Writes one export: the header at once, then each checked event, then the end line."""

    out: TextIO
    key: bytes
    header: Header
    signer: Any = None  # storage.signing.Signer on the signing host: the end line is signed too
    count: int = 0
    header_mac: str = field(default="", init=False)

    def __post_init__(self) -> None:
        fields = self.header.fields()
        self.header_mac = mac(self.key, "header", fields)
        self.out.write(_LINE_JSON.encode({**fields, "mac": self.header_mac}) + "\n")

    def event(self, record: dict[str, Any]) -> None:
        self.out.write(_LINE_JSON.encode(record) + "\n")
        self.count += 1

    def end(self, last_seq: int, last_hash: str) -> None:
        fields = end_fields(self.header_mac, self.count, last_seq, last_hash)
        line = {"end": True, "count": self.count, "last_seq": last_seq, "last_hash": last_hash,
                "mac": mac(self.key, "end", fields)}
        if self.signer is not None:
            line["signing_key"] = self.signer.key_id
            line["signature"] = self.signer.sign(signature_message(self.header.fields(), fields))
        self.out.write(_LINE_JSON.encode(line) + "\n")


@contextlib.contextmanager
def atomic_output(target: str, force: bool, protected: Iterable[Path]) -> Iterator[TextIO]:
    """A text stream to ``target`` that appears under its name only once complete, through the
    one output-file helper (``cardctl/output_file.py``: never a device, a directory or cardctl's
    own files; an existing file only with ``force``; temporary file, sync, link or rename).
    ``-`` is standard output (nothing to rename: a stream cut short lacks its end line).
    A name ending in ``.gz`` is gzip-compressed.
    """
    from ..output_file import output_file

    if target == "-":
        with output_file(target, force, protected):
            yield sys.stdout
            sys.stdout.flush()
        return
    with output_file(target, force, protected) as raw:
        stream: IO[bytes] = raw
        name = Path(target).name
        if name.endswith(".gz"):
            stream = gzip.GzipFile(filename=name[:-3], mode="wb", fileobj=raw, compresslevel=6)
        text = io.TextIOWrapper(stream, encoding="ascii", newline="\n")
        yield text
        text.flush()
        text.detach()  # the streams below are closed here, not by the wrapper's finaliser
        if stream is not raw:
            stream.close()

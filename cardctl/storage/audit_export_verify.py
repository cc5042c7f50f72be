"""Reading and verifying audit export files (the format is described in audit_export.py).

Streams line by line, so memory stays flat however long the file; a gzip file is recognised by
its magic bytes. Needs the key file and nothing else: no database is opened. A line that is no
event (not JSON, nested too deep, too long, wrong fields) is counted as a bad event and the walk
goes on, as it does past an edited one: the report counts them all (docs/security.md). Given the
public signing key, the signatures are checked too (``_Verifier.signed_head``, ``_end_signature``).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hmac
import io
import json
import re
import sys
import zlib
from dataclasses import dataclass, field
from typing import IO, Any, Sequence

from ..errors import InvalidInput, KeyFileError
from ..i18n import _
from ..keys import Keys
from .audit import GENESIS, content_of
from .audit_walk import ChainWalk
from .audit_export import ACTOR_FIELD, EVENT_FIELDS, PLACE_FIELDS, FORMAT, MAX_LINE, VERSION, end_fields, mac, signature_message

_REQUIRED_TEXT = ("at", "recorded_at", "operator", "os_user", "channel", "action", "outcome",
                  "prev_hash", "hash")
_NULLABLE_TEXT = ("card_no", "reason", "detail")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FINGERPRINT = re.compile(r"[0-9a-f]{16}")
_HEADER_START = b'{"format":"' + FORMAT.encode() + b'"'


@dataclass(frozen=True)
class FileReport:
    """What verifying export files found; ``head_seq``/``head_hash`` end the verified range."""

    checked: int
    ok: bool
    problem: str | None = None
    first_bad_seq: int | None = None
    from_seq: int = 1
    prev_hash: str = GENESIS
    head_seq: int = 0
    head_hash: str = GENESIS
    files: int = 0
    file: str | None = None  # where the first problem is
    line: int | None = None
    bad: int = 0
    last_bad_seq: int | None = None
    last_problem: str | None = None
    signed_seq: int | None = None  # the newest event a valid signature covers (storage/signing.py)
    signature_key: str | None = None  # the key id signatures were checked with; None: not checked


class _Broken(Exception):
    """A verification failure inside an export file; becomes a failed FileReport."""

    def __init__(self, problem: str, seq: int | None, line: int | None = None) -> None:
        super().__init__(problem)
        self.problem, self.seq, self.line = problem, seq, line


class ExportFile:
    """One export file being read: binary lines, gzip recognised, its header parsed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.line_no = 0
        self.header: dict[str, Any] = {}
        self.closed = False
        self.lookaheads = 0
        self._handle = self._open(name)

    def _open(self, name: str) -> IO[bytes]:
        if name == "-":
            raw: IO[bytes] = sys.stdin.buffer
        else:
            try:
                raw = open(name, "rb")  # noqa: SIM115 - closed by close()
            except OSError as exc:
                raise InvalidInput(_("cannot read {file}: {error}").format(file=name, error=exc.strerror)) from None
        if not hasattr(raw, "peek"):
            raw = io.BufferedReader(raw)  # type: ignore[arg-type]
        self._raw = raw
        if raw.peek(2)[:2] == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=raw, mode="rb")
        return raw

    def close(self) -> None:
        if self.name != "-" and not self.closed:
            self._handle.close()
            self._raw.close()
        self.closed = True

    def readline(self) -> bytes:
        """The next line (with its newline, if it has one); b"" at the end of the file."""
        try:
            raw = self._handle.readline(MAX_LINE + 1)
        except EOFError:  # a gzip stream without its end: the file was cut
            raise _Broken(_("{file} is truncated: its compressed data ends early, after line {line}").format(
                file=self.name, line=self.line_no), None, self.line_no) from None
        except (OSError, zlib.error) as exc:
            raise _Broken(_("{file} line {line}: the compressed data is damaged ({error})").format(
                file=self.name, line=self.line_no + 1, error=str(exc)), None, self.line_no + 1) from None
        if raw:
            self.line_no += 1
        return raw

    def read_header(self, keys: Keys, key_file: str) -> None:
        try:
            first = self.readline()
        except _Broken:
            raise InvalidInput(_("{file} is not a cardctl audit export (not readable as one)").format(
                file=self.name)) from None
        if not first:
            raise InvalidInput(_("{file} is empty: not a cardctl audit export "
                                 "(an export always starts with a header line)").format(file=self.name))
        if not first.startswith(_HEADER_START):
            raise InvalidInput(_("{file} is not a cardctl audit export (its first line is not an export header)").format(
                file=self.name))
        header = _parse(first)
        if header is None or not first.endswith(b"\n"):
            raise _Broken(_("{file} line 1: the header is cut short or damaged").format(file=self.name), None, 1)
        if header.get("version") != VERSION:
            raise InvalidInput(_("{file} is a version {found} export; this cardctl reads version {version}").format(
                file=self.name, found=str(header.get("version"))[:12], version=VERSION))
        problem = _header_problem(header)
        if problem:
            raise _Broken(_("{file} line 1: the header is damaged ({problem})").format(file=self.name, problem=problem),
                          None, 1)
        if header["key_fingerprint"] != keys.fingerprint:
            raise KeyFileError(_(
                "wrong key: {file} was exported under key fingerprint {exported}, but key file {key_file} has "
                "fingerprint {fingerprint}; give the key file of the database it came from (this says nothing "
                "about the file being changed)").format(file=self.name, exported=header["key_fingerprint"],
                                                         key_file=key_file, fingerprint=keys.fingerprint))
        fields = {k: v for k, v in header.items() if k != "mac"}
        if not hmac.compare_digest(mac(keys.audit_key, "header", fields), header["mac"]):
            raise _Broken(_("{file} line 1: the header was edited (its MAC does not match)").format(file=self.name),
                          header["from_seq"], 1)
        self.header = header

    @property
    def span(self) -> str:
        return f"{self.header['from_seq']}-{self.header['to_seq']}"

    def skip_rest_of_line(self) -> None:
        """Read past the rest of an overlong line, a chunk at a time."""
        with contextlib.suppress(EOFError, OSError, zlib.error):
            while (chunk := self._handle.readline(MAX_LINE)) and not chunk.endswith(b"\n"):
                pass

    def found_later(self, wanted: str) -> bool:
        """Whether an event with hash ``wanted`` comes further down. Reads ahead and then goes
        back, so the walk continues where it was; a stream that cannot go back (standard input)
        or a file damaged past counting is not read ahead: its broken link counts as a deletion."""
        if self.lookaheads >= MAX_LOOKAHEADS or not self._handle.seekable():
            return False
        self.lookaheads += 1
        position, line_no = self._handle.tell(), self.line_no
        found = False
        with contextlib.suppress(_Broken):
            while raw := self.readline():
                record = _parse(raw)
                if isinstance(record, dict) and record.get("hash") == wanted:
                    found = True
                    break
        self._handle.seek(position)
        self.line_no = line_no
        return found


# each look-ahead may read the rest of the file (and rewind a gzip stream from its start)
MAX_LOOKAHEADS = 100


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, a number too long, nested too deep
        return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _header_problem(header: dict[str, Any]) -> str | None:
    for name in ("from_seq", "to_seq"):
        if not _is_int(header.get(name)):
            return _("{field} is not a whole number").format(field=name)
    if header["from_seq"] < 1 or header["to_seq"] < header["from_seq"] - 1:
        return _("the range is impossible")
    if not isinstance(header.get("key_fingerprint"), str) or not _FINGERPRINT.fullmatch(header["key_fingerprint"]):
        return _("no key fingerprint")
    for name in ("prev_hash", "mac"):
        if not isinstance(header.get(name), str) or not _HEX64.fullmatch(header[name]):
            return _("{field} is not a hash").format(field=name)
    return None


def _event_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return _("not a JSON object")
    if set(record) - {ACTOR_FIELD, *PLACE_FIELDS} != set(EVENT_FIELDS):
        return _("its fields are not an event's")
    for name in (ACTOR_FIELD, *PLACE_FIELDS):
        if name in record and not isinstance(record[name], str):
            return _("{field} is not text").format(field=name)
    if not _is_int(record["seq"]):
        return _("{field} is not a whole number").format(field="seq")
    for name in _REQUIRED_TEXT:
        if not isinstance(record[name], str):
            return _("{field} is not text").format(field=name)
    for name in _NULLABLE_TEXT:
        if record[name] is not None and not isinstance(record[name], str):
            return _("{field} is not text").format(field=name)
    return None


def _last_whole(walk: ChainWalk, header: dict[str, Any]) -> str:
    last = walk.next_seq - 1
    return _("the last whole event is {seq}").format(seq=last) if last >= header["from_seq"] else _(
        "not one event is whole")


def _end_problem(record: dict[str, Any]) -> str | None:
    if record.get("end") is not True or not _is_int(record.get("count")) or not _is_int(record.get("last_seq")):
        return _("not an end line")
    for name in ("last_hash", "mac"):
        if not isinstance(record.get(name), str) or not _HEX64.fullmatch(record[name]):
            return _("{field} is not a hash").format(field=name)
    return None


@dataclass
class _Verifier:
    """Walks the chain through one or more export files, in seq order, checking anchors."""

    keys: Keys
    walk: ChainWalk
    anchors: dict[int, str]
    public: bytes | None = None
    signed: dict[int, tuple[str, str]] = field(default_factory=dict)  # seq -> (hash, signed at)
    signed_seq: int | None = None
    first_at: tuple[str, int] | None = None  # the file and line of the first bad event

    def run(self, export: ExportFile) -> None:
        walk = self.walk
        if walk.bad and self.first_at is None:  # an anchor or the link between files, before line 2
            self.first_at = (export.name, 1)
        while raw := export.readline():
            was_bad = walk.bad
            if self._line(export, raw):
                return
            if walk.bad and not was_bad:
                self.first_at = (export.name, export.line_no)
        raise _Broken(_("{file} is truncated: it ends after line {line} without its end line "
                        "({last}; the header declares {span})").format(
                            file=export.name, line=export.line_no, last=_last_whole(walk, export.header),
                            span=export.span),
                      walk.next_seq, export.line_no)

    def _line(self, export: ExportFile, raw: bytes) -> bool:
        """One line: an event walked (or counted bad), or the end line checked (True)."""
        header, name, n, walk = export.header, export.name, export.line_no, self.walk
        last = header["to_seq"]
        if not raw.endswith(b"\n"):
            if len(raw) <= MAX_LINE:
                raise _Broken(_("{file} is truncated: line {line} is cut off and the end line is missing "
                                "({last})").format(file=name, line=n, last=_last_whole(walk, header)),
                              walk.next_seq, n)
            export.skip_rest_of_line()
            walk.damaged(_("{file} line {line} is longer than {mib} MiB: not an audit event").format(
                file=name, line=n, mib=MAX_LINE >> 20))
            return False
        record = _parse(raw)
        if isinstance(record, dict) and "end" in record:
            self._end(export, record)
            return True
        problem = _event_problem(record) if record is not None else _("not JSON")
        if problem:
            walk.damaged(_("{file} line {line} is not an audit event ({problem}): the file was damaged "
                           "or edited").format(file=name, line=n, problem=problem))
            return False
        if walk.next_seq > last:
            walk.broken(_("{file} line {line}: event {seq} lies beyond the range {span} "
                          "the header declares: added").format(file=name, line=n, seq=record["seq"],
                                                               span=export.span), record["seq"])
            return False
        walk.where = functools.partial(_placed, name, n)
        try:
            if walk.step(record["seq"], record["prev_hash"], record["hash"], content_of(record),
                         export.found_later):
                self.check_anchor(walk.next_seq - 1, walk.prev, n)
        finally:
            walk.where = _as_is
        return False

    def _end(self, export: ExportFile, record: dict[str, Any]) -> None:
        name, n, walk = export.name, export.line_no, self.walk
        problem = _end_problem(record)
        if problem:
            raise _Broken(_("{file} line {line}: the end line is damaged ({problem})").format(
                file=name, line=n, problem=problem), walk.next_seq, n)
        fields = end_fields(export.header["mac"], record["count"], record["last_seq"], record["last_hash"])
        if not hmac.compare_digest(mac(self.keys.audit_key, "end", fields), record["mac"]):
            raise _Broken(_("{file} line {line}: the end line was edited (its MAC does not match)").format(
                file=name, line=n), walk.next_seq, n)
        self._end_signature(export, record, fields)
        to_seq = export.header["to_seq"]
        if walk.next_seq <= to_seq:
            missing = (_("{file} line {line}: event {first} is missing before the end line: deleted "
                         "(the header declares {span})") if walk.next_seq == to_seq else
                       _("{file} line {line}: events {first}-{last} are missing before the end line: deleted "
                         "(the header declares {span})"))
            raise _Broken(missing.format(file=name, line=n, first=walk.next_seq, last=to_seq, span=export.span),
                          walk.next_seq, n)
        if (record["last_seq"], record["last_hash"]) != (to_seq, walk.prev):
            raise _Broken(_("{file} line {line}: the end line does not match the events before it").format(
                file=name, line=n), walk.next_seq, n)
        if export.readline():
            raise _Broken(_("{file} line {line}: more after the end line: appended").format(
                file=name, line=export.line_no), None, export.line_no)

    def signed_head(self, export: ExportFile) -> None:
        """Take the header's signed head as an anchor that only the signing key can have made."""
        from .signing import check_signed_head

        record = export.header.get("signed_head")
        if self.public is None or record is None:
            return
        problem = check_signed_head(record, self.keys.fingerprint, self.public)
        if problem is None and not export.header["from_seq"] - 1 <= record["seq"] <= export.header["to_seq"]:
            problem = _("the signed head is damaged")
        if problem is None:
            self.signed[record["seq"]] = (str(record["hash"]), str(record["signed_at"]))
        elif record.get("key_id") == _key_id(self.public):  # another key's head proves nothing either way
            raise _Broken(_("{file} line 1: {problem}").format(file=export.name, problem=problem),
                          export.header["from_seq"], 1)

    def _end_signature(self, export: ExportFile, record: dict[str, Any], fields: dict[str, Any]) -> None:
        """With the public key: a signed end line must verify, and a file must carry some signature."""
        if self.public is None:
            return
        name, n = export.name, export.line_no
        header = {k: v for k, v in export.header.items() if k != "mac"}
        if "signature" in record and record.get("signing_key") == _key_id(self.public):
            from .signing import verifies

            if not verifies(self.public, signature_message(header, fields), record["signature"]):
                raise _Broken(_("{file} line {line}: the signature does not verify: the export was rewritten or "
                                "forged by someone without the signing key").format(file=name, line=n),
                              export.header["from_seq"], n)
            self.signed_seq = max(self.signed_seq or 0, export.header["to_seq"])
            return
        covered = [seq for seq in self.signed if export.header["from_seq"] - 1 <= seq <= export.header["to_seq"]]
        if not covered:
            raise _Broken(_("{file} carries no signature of key {key}: made without the signing key, it cannot be "
                            "told apart from a forgery (export it again after 'cardctl audit sign')").format(
                                file=name, key=_key_id(self.public)),
                          export.header["from_seq"], n)

    def check_anchor(self, seq: int, hash_: str, line: int | None) -> None:
        signed = self.signed.get(seq)
        if signed is not None:
            if hash_ != signed[0]:
                raise _Broken(_("signed head {seq} (signed {at}) no longer matches event {seq}; the trail was "
                                "rewritten at or before event {seq}").format(seq=seq, at=signed[1]), seq, line)
            self.signed_seq = max(self.signed_seq or 0, seq)
        prefix = self.anchors.get(seq)
        if prefix is not None and not hash_.startswith(prefix.lower()):
            self.walk.broken(_("anchor {seq}: the hash differs; events up to {seq} were rewritten").format(seq=seq),
                             seq)


def _placed(file: str, line: int, problem: str) -> str:
    return _("{file} line {line}: {problem}").format(file=file, line=line, problem=problem)


def _as_is(problem: str) -> str:
    return problem


def verify_files(keys: Keys, key_file: str, names: Sequence[str],
                 anchors: Sequence[tuple[int, str]] = (), public: bytes | None = None) -> FileReport:
    """Verify export files as one chain: each in itself, and each continuing the one before.

    Files may be given in any order: they are put in order of their first seq. Refuses what
    is not an export (exit 2) and a key that is not the export's (exit 1); everything else
    wrong with an export comes back as a failed report naming the file and line.
    """
    if "-" in names and len(names) > 1:
        raise InvalidInput(_("- (standard input) can be the only export file given"))
    if len(set(names)) != len(names):
        raise InvalidInput(_("an export file is given twice"))
    current: ExportFile | None = None
    verifier: _Verifier | None = None
    try:
        exports = []
        for name in names:  # headers first: order, range and anchors known before the walk
            current = ExportFile(name)
            current.read_header(keys, key_file)
            exports.append(current)
            if len(names) > 1:  # reopened in turn below: a thousand archives need no thousand handles
                current.close()
        exports.sort(key=lambda e: e.header["from_seq"])
        first, final = exports[0].header, exports[-1].header
        low, high = first["from_seq"] - 1, final["to_seq"]
        for seq, _hash in anchors:
            if not low <= seq <= high:
                raise InvalidInput(_("--anchor {seq}: outside the exported range {low}-{high}").format(
                    seq=seq, low=low, high=high))
        verifier = _Verifier(keys, ChainWalk(keys.audit_key, first["from_seq"], first["prev_hash"]), dict(anchors),
                             public)
        current = exports[0]
        for export in exports:
            current = export
            verifier.signed_head(export)
        current = exports[0]
        verifier.check_anchor(low, first["prev_hash"], 1)
        for index, export in enumerate(exports):
            current = export
            if index:
                _check_continues(exports[index - 1], export, verifier.walk)
            if export.closed:
                current = export = _reopen(export, keys, key_file)
            verifier.run(export)
            export.close()
    except _Broken as broken:
        if verifier is None or not verifier.walk.bad:
            return FileReport(verifier.walk.checked if verifier else 0, False, broken.problem, broken.seq,
                              file=current.name if current else None, line=broken.line, files=len(names),
                              bad=1, last_bad_seq=broken.seq, last_problem=broken.problem)
        verifier.walk.broken(broken.problem, broken.seq if broken.seq is not None else verifier.walk.next_seq)
    finally:
        if current is not None:
            current.close()
    walk = verifier.walk
    if walk.bad:
        file, line = verifier.first_at or (None, None)
        return FileReport(walk.checked, False, walk.problem, walk.first_bad_seq, files=len(names), file=file,
                          line=line, bad=walk.bad, last_bad_seq=walk.last_bad_seq, last_problem=walk.last_problem)
    return FileReport(walk.checked, True, from_seq=first["from_seq"], prev_hash=first["prev_hash"],
                      head_seq=walk.next_seq - 1, head_hash=walk.prev, files=len(exports),
                      signed_seq=verifier.signed_seq, signature_key=_key_id(public) if public else None)


def _key_id(public: bytes) -> str:
    from .signing import key_id

    return key_id(public)


def _check_continues(before: ExportFile, after: ExportFile, walk: ChainWalk) -> None:
    start = after.header["from_seq"]
    if start < walk.next_seq:
        raise InvalidInput(_("{after} (seq {after_span}) overlaps {before} (seq {before_span}); give each range once")
                           .format(after=after.name, after_span=after.span, before=before.name,
                                   before_span=before.span))
    # a gap or a foreign start is counted, and the walk goes on from this file's own start
    if start > walk.next_seq:
        walk.broken(_("{after} starts at seq {start}, but {before} ends at {end}: "
                      "events {first}-{last} are in none of the files").format(
                          after=after.name, start=start, before=before.name, end=walk.next_seq - 1,
                          first=walk.next_seq, last=start - 1), walk.next_seq, start - 1)
    elif after.header["prev_hash"] != walk.prev:
        walk.broken(_("{after} does not continue {before}: its first event follows hash {follows}, "
                      "{before} ends with {ends}; one of them was made from a rewritten trail").format(
                          after=after.name, before=before.name, follows=after.header["prev_hash"][:16],
                          ends=walk.prev[:16]), start)
    walk.next_seq, walk.prev = start, after.header["prev_hash"]


def _reopen(export: ExportFile, keys: Keys, key_file: str) -> ExportFile:
    again = ExportFile(export.name)
    again.read_header(keys, key_file)
    if again.header != export.header:
        raise _Broken(_("{file} changed while being verified").format(file=export.name), None, 1)
    return again

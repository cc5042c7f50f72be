"""Reading records from CSV or JSON-lines files (or stdin), streaming.

CSV exported by Excel on Chinese Windows is GB18030 and may carry a UTF-8 BOM,
so the encoding is sniffed: BOM, else UTF-8 if the head decodes, else GB18030.

Memory is bounded whatever the input: a line is read at most ``MAX_LINE``
characters at a time, and a longer one (a 300 MB CSV line, ``/dev/zero``, a file
without line ends) is refused as that row's problem after skipping to its end, in
pieces. JSON values must be text (or whole numbers, or null): a list or an object
in a field is refused for its row, never stored as Python's spelling of it.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import stat
import sys
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from .errors import InvalidInput
from .i18n import _

SNIFF_BYTES = 64 * 1024
MAX_FIELD = 4096
MAX_LINE = 64 * 1024  # characters in one line of input, newline included
MAX_JSON_ARRAY = 256 << 20  # characters of a whole JSON array (read at once)
csv.field_size_limit(MAX_LINE)


class LineTooLong(Exception):
    """Raised by ``BoundedLines`` in place of a line over ``MAX_LINE``; the line is skipped."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class BoundedLines:
    """The lines of a text stream, none longer than ``MAX_LINE``; ``line`` is the number of
    the last line handed out (or skipped), so CSV rows that span lines keep their numbers."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self.stream = stream
        self.line = 0

    def __iter__(self) -> "BoundedLines":
        return self

    def __next__(self) -> str:
        text = self.stream.readline(MAX_LINE)
        if not text:
            raise StopIteration
        self.line += 1
        if len(text) >= MAX_LINE and not text.endswith("\n"):
            while (rest := self.stream.readline(MAX_LINE)) and not rest.endswith("\n"):
                pass
            raise LineTooLong(self.line)
        return text


def _too_long(line: int) -> "Row":
    return Row(line, None, _("the line is longer than {max_len} characters").format(max_len=MAX_LINE))


@dataclass(frozen=True)
class Row:
    line: int
    fields: dict[str, str | None] | None
    problem: str | None = None


def open_binary(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise InvalidInput(_("file {path} not found").format(path=path)) from None
    except IsADirectoryError:
        raise InvalidInput(_("{path} is a folder, not a file").format(path=path)) from None
    except OSError as exc:
        raise InvalidInput(_("cannot read {path}: {error}").format(path=path, error=exc.strerror)) from None


def sniff_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "gb18030"


def _whole_file_is_utf8(raw: BinaryIO) -> bool | None:
    """For a regular file, check every byte decodes as UTF-8 (a GB18030 file may open
    with pages of ASCII); None when the input cannot be re-read, e.g. a pipe."""
    try:
        # only a regular file ends: /dev/zero is seekable too, and would be read for ever
        if not raw.seekable() or not stat.S_ISREG(os.fstat(raw.fileno()).st_mode):
            return None
        start = raw.tell()
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for block in iter(lambda: raw.read(1 << 20), b""):
            decoder.decode(block)
        decoder.decode(b"", final=True)
        return True
    except UnicodeDecodeError:
        return False
    finally:
        raw.seek(start)


class _Hashed(io.RawIOBase):
    """The input as the reader takes it, each byte fed to ``digest`` once, on its way in: the
    batch's ``input_sha256`` (docs/domain.md, "Batch provenance") is of the bytes the rows were
    read from, without reading the input a second time or holding it."""

    def __init__(self, raw: BinaryIO, digest) -> None:
        super().__init__()
        self.raw, self.digest = raw, digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        # read1: what one read of a pipe gives, so a slow producer's lines still stream
        data = self.raw.read1(len(buffer)) if hasattr(self.raw, "read1") else self.raw.read(len(buffer))
        if not data:
            return 0
        buffer[:len(data)] = data
        self.digest.update(data)
        return len(data)

    def close(self) -> None:
        if not self.closed and self.raw is not sys.stdin.buffer:
            self.raw.close()
        super().close()


def text_stream(raw: BinaryIO, digest=None) -> io.TextIOWrapper:
    """``raw`` as text in its sniffed encoding; with ``digest`` (``update(bytes)``) every byte read
    is hashed once (the encoding check of a regular file reads it before, unhashed, and rewinds)."""
    whole_utf8 = _whole_file_is_utf8(raw)
    if digest is not None:
        raw = _Hashed(raw, digest)
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
    encoding = sniff_encoding(buffered.peek(SNIFF_BYTES)[:SNIFF_BYTES])
    if encoding == "utf-8" and whole_utf8 is False:
        encoding = "gb18030"
    if b"\x00" in buffered.peek(SNIFF_BYTES)[:SNIFF_BYTES]:
        raise InvalidInput(_("the input is binary, not a CSV or JSON-lines text file"))
    return io.TextIOWrapper(buffered, encoding=encoding, newline="")


def read_records(path: str, required: tuple[str, ...] = (), digest=None) -> Iterator[Row]:
    """Rows of a CSV (with header) or JSON-lines file; bad rows carry a problem, not an exception.
    ``digest``: hashes every byte of the input, to its end (``text_stream``)."""
    stream = text_stream(open_binary(path), digest)
    try:
        yield from _decoded(stream, path, _records_from(stream, _peek_first_char(stream), required))
        _to_the_end(stream, digest)
    finally:
        if path != "-":
            stream.close()


def read_card_numbers(path: str, digest=None) -> Iterator[Row]:
    """Card numbers one per line, or CSV/JSON lines with a ``card_no`` field (``digest``: as
    ``read_records``)."""
    stream = text_stream(open_binary(path), digest)
    try:
        first = _peek_first_char(stream)
        head = stream.buffer.peek(SNIFF_BYTES)[:SNIFF_BYTES].decode(stream.encoding, errors="ignore")
        lines = head.lstrip("\ufeff").strip().splitlines()
        first_line = lines[0].strip().lower() if lines else ""
        if first in "{[" and first or "," in first_line or first_line == "card_no":
            rows = _records_from(stream, first, ("card_no",), only=("card_no",))
        else:
            rows = _plain_lines(BoundedLines(stream))
        yield from _decoded(stream, path, rows)
        _to_the_end(stream, digest)
    finally:
        if path != "-":
            stream.close()


def _to_the_end(stream: io.TextIOWrapper, digest) -> None:
    """Every reader stops at the end of its input; should one stop short, the rest is still
    hashed, so the digest is of the whole input as ``sha256sum`` sees it."""
    if digest is not None:
        for _block in iter(lambda: stream.buffer.read(1 << 20), b""):
            pass


def _lines_or_too_long(lines: BoundedLines) -> Iterator[tuple[int, str] | Row]:
    """(line number, text) for each non-blank line; a line over ``MAX_LINE`` as its problem row."""
    while True:
        try:
            text = next(lines)
        except StopIteration:
            return
        except LineTooLong as exc:
            yield _too_long(exc.line)
            continue
        if text.strip():
            yield lines.line, text


def _plain_lines(lines: BoundedLines) -> Iterator[Row]:
    for item in _lines_or_too_long(lines):
        yield item if isinstance(item, Row) else Row(item[0], {"card_no": item[1].strip()})


def _decoded(stream, path: str, rows: Iterator[Row]) -> Iterator[Row]:
    try:
        yield from rows
    except UnicodeDecodeError as exc:
        raise InvalidInput(_("{path}: not valid {encoding} text ({error})").format(
            path=path, encoding=stream.encoding, error=exc.reason)) from None


def _records_from(stream, first: str, required: tuple[str, ...], only: tuple[str, ...] | None = None) -> Iterator[Row]:
    """Rows of any of the three formats; ``only`` names the JSON fields the reader uses (the
    rest are dropped unread, e.g. the lock lists of ``status -o jsonl`` piped into unlock)."""
    if first == "[":
        return _json_array_rows(stream, only)
    return _jsonl_rows(stream, only) if first == "{" else _csv_rows(stream, required)


def _json_array_rows(stream, only: tuple[str, ...] | None) -> Iterator[Row]:
    """A JSON array of objects, as ``-o json`` writes it (read whole: arrays are not streamable here)."""
    text = stream.read(MAX_JSON_ARRAY + 1)
    if len(text) > MAX_JSON_ARRAY:
        raise InvalidInput(_("a JSON array longer than {max_len} characters; use JSON lines").format(
            max_len=MAX_JSON_ARRAY))
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(_("not a JSON array: {error} at line {line}").format(error=exc.msg, line=exc.lineno)) from None
    except RecursionError:
        raise InvalidInput(_("not a JSON array of objects: nested too deeply")) from None
    if not isinstance(items, list):
        raise InvalidInput(_("expected a JSON array of objects"))
    for number, value in enumerate(items, 1):
        yield _json_row(number, value, only)


def _json_row(number: int, value: object, only: tuple[str, ...] | None) -> Row:
    """One JSON object as a row of text fields, or the reason it cannot be one."""
    if not isinstance(value, dict):
        return Row(number, None, _("not a JSON object"))
    fields: dict[str, str | None] = {}
    for key, item in value.items():
        if only is not None and key.lower() not in only:
            continue
        if item is None or isinstance(item, str):
            fields[key.lower()] = item
        elif isinstance(item, int) and not isinstance(item, bool):
            fields[key.lower()] = str(item)
        else:
            return Row(number, None, _("field {field!r} is {kind}, not text").format(
                field=key[:40], kind=type(item).__name__))
        if item is not None and len(fields[key.lower()]) > MAX_FIELD:
            return Row(number, None, _("a field is longer than {max_len} characters").format(max_len=MAX_FIELD))
    return Row(number, fields)


def _peek_first_char(stream: io.TextIOWrapper) -> str:
    head = stream.buffer.peek(SNIFF_BYTES)[:SNIFF_BYTES]
    text = head.decode(stream.encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    return text[:1]


def _csv_rows(stream, required: tuple[str, ...]) -> Iterator[Row]:
    lines = BoundedLines(stream)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    except (LineTooLong, csv.Error):
        raise InvalidInput(_("the header line is not CSV of at most {max_len} characters").format(
            max_len=MAX_LINE)) from None
    header = [name.strip().lstrip("\ufeff").lower() for name in header]
    missing = [name for name in required if name not in header]
    if missing:
        raise InvalidInput(_("the header lacks column(s) {missing} (found: {found})").format(
            missing=", ".join(missing), found=", ".join(header)[:200]))
    line = lines.line
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except LineTooLong as exc:  # the reader starts afresh at the next line
            yield _too_long(exc.line)
            line = lines.line
            continue
        except csv.Error as exc:
            yield Row(lines.line, None, f"broken CSV: {exc}")
            line = lines.line
            continue
        start, line = line + 1, lines.line
        if not values or values == [""]:
            continue
        if len(values) != len(header):
            yield Row(start, None, _("expected {expected} fields, found {found}").format(
                expected=len(header), found=len(values)))
            continue
        if any(len(value) > MAX_FIELD for value in values):
            yield Row(start, None, _("a field is longer than {max_len} characters").format(max_len=MAX_FIELD))
            continue
        yield Row(start, dict(zip(header, values)))


def _jsonl_rows(stream, only: tuple[str, ...] | None) -> Iterator[Row]:
    for item in _lines_or_too_long(BoundedLines(stream)):
        if isinstance(item, Row):
            yield item
            continue
        number, line = item
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Row(number, None, f"not JSON: {exc.msg}")
            continue
        except RecursionError:
            yield Row(number, None, _("not JSON: nested too deeply"))
            continue
        yield _json_row(number, value, only)


"""Reading records from CSV or JSON-lines files (or stdin), streaming.

CSV exported by Excel on Chinese Windows is GB18030 and may carry a UTF-8 BOM,
so the encoding is sniffed: BOM, else UTF-8 if the head decodes, else GB18030.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from .errors import InvalidInput
from .i18n import _

SNIFF_BYTES = 64 * 1024
MAX_FIELD = 4096
csv.field_size_limit(1 << 20)


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
        if not raw.seekable():
            return None
        start = raw.tell()
    except (OSError, ValueError):
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


def text_stream(raw: BinaryIO) -> io.TextIOWrapper:
    whole_utf8 = _whole_file_is_utf8(raw)
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
    encoding = sniff_encoding(buffered.peek(SNIFF_BYTES)[:SNIFF_BYTES])
    if encoding == "utf-8" and whole_utf8 is False:
        encoding = "gb18030"
    if b"\x00" in buffered.peek(SNIFF_BYTES)[:SNIFF_BYTES]:
        raise InvalidInput(_("the input is binary, not a CSV or JSON-lines text file"))
    return io.TextIOWrapper(buffered, encoding=encoding, newline="")


def read_records(path: str, required: tuple[str, ...] = ()) -> Iterator[Row]:
    """Rows of a CSV (with header) or JSON-lines file; bad rows carry a problem, not an exception."""
    stream = text_stream(open_binary(path))
    try:
        yield from _decoded(stream, path, _records_from(stream, _peek_first_char(stream), required))
    finally:
        if path != "-":
            stream.close()


def read_card_numbers(path: str) -> Iterator[Row]:
    """Card numbers one per line, or CSV/JSON lines with a ``card_no`` field."""
    stream = text_stream(open_binary(path))
    try:
        first = _peek_first_char(stream)
        head = stream.buffer.peek(SNIFF_BYTES)[:SNIFF_BYTES].decode(stream.encoding, errors="ignore")
        lines = head.lstrip("\ufeff").strip().splitlines()
        first_line = lines[0].strip().lower() if lines else ""
        if first in "{[" and first or "," in first_line or first_line == "card_no":
            rows = _records_from(stream, first, ("card_no",))
        else:
            rows = (Row(n, {"card_no": line.strip()}) for n, line in enumerate(stream, 1) if line.strip())
        yield from _decoded(stream, path, rows)
    finally:
        if path != "-":
            stream.close()


def _decoded(stream, path: str, rows: Iterator[Row]) -> Iterator[Row]:
    try:
        yield from rows
    except UnicodeDecodeError as exc:
        raise InvalidInput(_("{path}: not valid {encoding} text ({error})").format(
            path=path, encoding=stream.encoding, error=exc.reason)) from None


def _records_from(stream, first: str, required: tuple[str, ...]) -> Iterator[Row]:
    if first == "[":
        return _json_array_rows(stream)
    return _jsonl_rows(stream) if first == "{" else _csv_rows(stream, required)


def _json_array_rows(stream) -> Iterator[Row]:
    """A JSON array of objects, as ``-o json`` writes it (read whole: arrays are not streamable here)."""
    try:
        items = json.load(stream)
    except json.JSONDecodeError as exc:
        raise InvalidInput(_("not a JSON array: {error} at line {line}").format(error=exc.msg, line=exc.lineno)) from None
    if not isinstance(items, list):
        raise InvalidInput(_("expected a JSON array of objects"))
    for number, value in enumerate(items, 1):
        if not isinstance(value, dict):
            yield Row(number, None, "not a JSON object")
        else:
            yield Row(number, {str(k).lower(): (None if v is None else str(v)) for k, v in value.items()})


def _peek_first_char(stream: io.TextIOWrapper) -> str:
    head = stream.buffer.peek(SNIFF_BYTES)[:SNIFF_BYTES]
    text = head.decode(stream.encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    return text[:1]


def _csv_rows(stream, required: tuple[str, ...]) -> Iterator[Row]:
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [name.strip().lstrip("\ufeff").lower() for name in header]
    missing = [name for name in required if name not in header]
    if missing:
        raise InvalidInput(_("the header lacks column(s) {missing} (found: {found})").format(
            missing=", ".join(missing), found=", ".join(header)[:200]))
    line = reader.line_num
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Row(reader.line_num, None, f"broken CSV: {exc}")
            continue
        start, line = line + 1, reader.line_num
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


def _jsonl_rows(stream) -> Iterator[Row]:
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        if len(line) > MAX_FIELD * 8:
            yield Row(number, None, "line too long")
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Row(number, None, f"not JSON: {exc.msg}")
            continue
        if not isinstance(value, dict):
            yield Row(number, None, "not a JSON object")
            continue
        yield Row(number, {str(k).lower(): (None if v is None else str(v)) for k, v in value.items()})


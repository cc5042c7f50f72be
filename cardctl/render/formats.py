"""Output formats as pure functions of plain records.

JSON, JSON lines and CSV are streamed to stdout with nothing else on it;
tables are drawn by Rich. Text is always shown literally: no Rich markup,
no terminal escapes, no spreadsheet formulas.

The machine formats agree with each other: every time is ISO-8601 UTC to the second with
``Z`` (``iso_utc``), and a nested value (a card's locks, an event's detail) is a JSON
value in JSON and compact JSON text with sorted keys in a CSV cell (``json_cell``), so
every cell of every CSV parses back with the csv module and, where it holds JSON, json.loads.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Any, Callable, Iterable, TextIO

from ..domain.times import iso_utc  # noqa: F401 - the one format of a moment in machine output


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"


# characters a terminal may act on or that display as something else: controls (C0 and C1,
# e.g. ESC and CSI), format characters (bidi overrides, zero-width), line and paragraph
# separators, surrogates, private-use and unassigned code points. Spaces of any width stay.
_UNSAFE = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"))


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE


def literal(value: Any) -> str:
    """Make any value safe to show on a terminal: control and bidi characters escaped."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(ch.encode("unicode_escape").decode() if _unsafe(ch) else ch for ch in text)


def _json_text(record: Any, compact: bool = False) -> str:
    """JSON with every unsafe character as a \\u escape: the same data, harmless on a terminal
    (json.dumps leaves C1 controls, bidi overrides and U+2028 as they are)."""
    text = (json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")) if compact
            else json.dumps(machine(record), ensure_ascii=False))
    if text.isprintable():
        return text
    return "".join(_json_escape(ch) if _unsafe(ch) else ch for ch in text)


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code > 0xFFFF:  # outside the BMP: a UTF-16 surrogate pair, as JSON spells it
        code -= 0x10000
        return "\\u%04x\\u%04x" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))
    return "\\u%04x" % code


# an aware ISO-8601 time as records carry it (``domain.model.iso``): any fraction, Z or an offset
_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,6})?)?(Z|[+-]\d\d:\d\d)")


# keys whose values are times, in records and in the details the audit trail keeps
TIME_KEYS = frozenset({"at", "since", "until", "first", "last", "as_of"})


def _is_time_key(key: Any) -> bool:
    return isinstance(key, str) and (key in TIME_KEYS or key.endswith("_at"))


def machine(value: Any, key: str | None = None) -> Any:
    """A record value as JSON and CSV carry it: times (by their key) in ``iso_utc`` form, in
    nested values too. Free text that happens to look like a time is left as it was."""
    if isinstance(value, str):
        return iso_utc(value) if _is_time_key(key) and _ISO_TIME.fullmatch(value) else value
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, dict):
        return {name: machine(item, name) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [machine(item) for item in value]
    return value


def json_cell(value: list | dict) -> str:
    """A nested value in one CSV cell: compact JSON, keys sorted, so equal values read the same."""
    return _json_text(value, compact=True)


def csv_cell(value: Any) -> str:
    """One CSV cell: empty stays empty, a nested value is JSON (``json_cell``), and a cell a
    spreadsheet would run as a formula gets a leading quote (``_executable``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json_cell(machine(value))  # starts with [ or {: never a formula
    text = literal(value)  # a CSV file is read on terminals too
    return "'" + text if _executable(text) else text


def _executable(text: str) -> bool:
    """What a spreadsheet would act on (OWASP's CSV-injection list): a leading = or @, a tab or
    CR, or a + or - followed by more than a plain number: '-2+3' is a formula, '-5.00' is minus
    five and a lone '-' is text."""
    if not text or text[0] not in "=+-@\t\r":
        return False
    if text[0] in "+-":
        return len(text) > 1 and not _is_number(text)
    return True


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lstrip("+-").replace(".", "", 1).isdigit()


def write_json(records: Iterable[dict], out: TextIO) -> int:
    """A JSON array written item by item, so memory stays flat."""
    count = 0
    out.write("[")
    for record in records:
        out.write(",\n" if count else "\n")
        out.write(_json_text(record))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_jsonl(records: Iterable[dict], out: TextIO) -> int:
    count = 0
    for count, record in enumerate(records, 1):
        out.write(_json_text(record))
        out.write("\n")
    return count


def write_csv(records: Iterable[dict], out: TextIO, flatten: Callable[[dict], dict] | None = None) -> int:
    writer, count = None, 0
    for count, record in enumerate(records, 1):
        row = flatten(record) if flatten else record
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=list(row), lineterminator="\n", extrasaction="ignore")
            writer.writeheader()
        writer.writerow({key: csv_cell(machine(value, key)) for key, value in row.items()})
    return count


def emit(records: Iterable[dict], fmt: OutputFormat, *, table: Callable[[Iterable[dict]], int] | None = None,
         flatten: Callable[[dict], dict] | None = None, out: TextIO | None = None) -> int:
    """Print records in ``fmt``; returns how many were printed."""
    out = out or sys.stdout
    if fmt is OutputFormat.JSON:
        return write_json(records, out)
    if fmt is OutputFormat.JSONL:
        return write_jsonl(records, out)
    if fmt is OutputFormat.CSV:
        return write_csv(records, out, flatten)
    assert table is not None, "every record command supplies a table renderer"
    return table(records)

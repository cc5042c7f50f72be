"""How every table is laid out: to fit the terminal, or as one block of ``field: value`` lines per record.

A column is one of three kinds. An *identifier* (card number, seq, time, amount, status,
kind, count) is never broken, cut or ellipsised: its column is at least as wide as its widest
value. A *number* is an identifier aligned right. *Text* (reasons, details, names) wraps at
word boundaries, and between any two Chinese characters, down to a floor width. A cell may
also be given as lines of atoms (``Atoms``), each atom an identifier, that wrap between atoms
(a lock's kind, end time and time left).

When the identifiers and the floors of the text columns do not fit the width, the table is
shown as ``psql \\x`` shows a wide row: each record a block of ``field: value`` lines. Widths
are measured with ``rich.cells.cell_len``, so a Chinese character counts as two columns.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import unicodedata
from dataclasses import dataclass
from typing import Sequence, Union

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

IDENT, NUMBER, TEXT = "ident", "number", "text"
TEXT_FLOOR = 10  # the narrowest a wrapping text column gets before the table turns into blocks
WORD_CAP = 24  # the longest word of text kept whole in a table; a longer one (a path, a URL) may be cut
HEADER_FLOOR = 4  # a header breaks between Chinese characters, two of them at least on a line
GAP = 2  # between two columns: one space of padding and the (blank) rule; no outer edge
REPORT_WIDTH = 120  # not a terminal (a pipe, a file, CI) and no COLUMNS: a report's width

# atoms: lines of pieces that never break; glue " " between the pieces of a line
Atoms = list[list[Text]]
Cell = Union[Text, Atoms]

_WORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d\S*|\S+")  # a time as tables show it is one word
_NAMES = re.compile(r"[0-9*]")  # a word of text with a digit or a mask names something: never cut
_OPENING = frozenset("（「『《【〈(“‘")
_CLOSING = frozenset("，。、；：？！）」』》】〉,.;:?!)%”’")


@dataclass(frozen=True)
class Column:
    header: str
    kind: str = IDENT


def width() -> int:
    """The width to lay out for, read when a table is drawn (not when cardctl starts)."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return REPORT_WIDTH


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _pieces(word: Text) -> list[Text]:
    """A word of text cut where a line may break inside it: around Chinese characters, never
    before closing or after opening punctuation."""
    plain, cuts = word.plain, []
    for i in range(1, len(plain)):
        before, here = plain[i - 1], plain[i]
        if (_wide(before) or _wide(here)) and here not in _CLOSING and before not in _OPENING:
            cuts.append(i)
    return list(word.divide(cuts)) if cuts else [word]


def _glued(text: Text, kind: str) -> list[list[tuple[str, Text]]]:
    """Each line of a cell as (glue, atom) pairs: what may not be broken, and what goes before it."""
    found = []
    for line in text.split("\n", allow_blank=True):
        if kind != TEXT:
            found.append([("", line)] if line.plain else [])
            continue
        atoms: list[tuple[str, Text]] = []
        end = 0
        for match in _WORD.finditer(line.plain):
            space = line.plain[end:match.start()] if atoms else ""  # as written: 'Card X  name' keeps its two
            for i, piece in enumerate(_pieces(line[match.start():match.end()])):
                atoms.append((space if i == 0 else "", piece))
            end = match.end()
        found.append(atoms)
    return found


def _lines(cell: Cell, kind: str) -> list[list[tuple[str, Text]]]:
    if isinstance(cell, Text):
        return _glued(cell, kind)
    return [[(" " if i else "", atom) for i, atom in enumerate(line)] for line in cell]


def _natural(lines: list[list[tuple[str, Text]]]) -> int:
    return max((sum(len(glue) + cell_len(atom.plain) for glue, atom in line) for line in lines), default=0)


def _widest_atom(lines: list[list[tuple[str, Text]]], only: re.Pattern | None = None) -> int:
    return max((cell_len(atom.plain) for line in lines for _glue, atom in line
                if only is None or only.search(atom.plain)), default=0)


def _fold(atom: Text, room: int) -> list[Text]:
    """A piece of free text longer than the line, cut by display width."""
    cuts, used = [], 0
    for i, ch in enumerate(atom.plain):
        w = cell_len(ch)
        if used + w > room and used:
            cuts.append(i)
            used = 0
        used += w
    return list(atom.divide(cuts)) if cuts else [atom]


def wrap(lines: list[list[tuple[str, Text]]], room: int, fold: bool) -> list[Text]:
    """Lines no wider than ``room``, broken between atoms; an atom too long is cut only if ``fold``."""
    out: list[Text] = []
    for atoms in lines:
        line, used = Text(), 0
        for glue, atom in atoms:
            w = cell_len(atom.plain)
            if used and used + len(glue) + w <= room:
                line.append(glue)
                line.append_text(atom)
                used += len(glue) + w
                continue
            if used:
                out.append(line)
            chunks = _fold(atom, room) if fold and w > room else [atom]
            out.extend(chunks[:-1])
            line, used = chunks[-1].copy(), cell_len(chunks[-1].plain)
        out.append(line)
    return out


def paragraph(text: Text, room: int) -> list[Text]:
    """A line of prose (a card's heading, a report's period) wrapped as text in a table wraps."""
    return wrap(_glued(text, TEXT), room, fold=True)


def _measure(column: Column, cells: list[list[list[tuple[str, Text]]]]) -> tuple[int, int, int, int, int]:
    """Widths of a column: the least it can take; with its header on one line; with each word of
    its text whole; with each value on one line; with values and header on one line."""
    head = _glued(Text(column.header), TEXT)
    content = max([0, *(_natural(lines) for lines in cells)])
    natural = max(_natural(head), content)
    head_least = min(_natural(head), max(_widest_atom(head), HEADER_FLOOR))  # 错误/次数, not 错/误/次/数
    words = max([0, *(_widest_atom(lines) for lines in cells)])
    if column.kind == TEXT:  # an identifier in free text (a masked ID number in a detail) stays whole
        named = max([0, *(_widest_atom(lines, _NAMES) for lines in cells)])
        least = min(natural, max(TEXT_FLOOR, head_least, min(WORD_CAP, named)))
        headed = least
    else:
        least = max(head_least, words)
        headed = max(least, _natural(head))
    whole = max(headed, min(WORD_CAP, words))  # then every word of text whole, where there is room
    return least, headed, whole, max(whole, content), natural


def _share(least: list[int], stages: list[list[int]], room: int) -> list[int] | None:
    """Column widths: each its least; then what is left goes to each stage of wants in turn, in
    proportion to what each column lacks; None when even the least does not fit."""
    if sum(least) > room:
        return None
    widths = list(least)
    for wanted in stages:
        left = room - sum(widths)
        lacking = {i: wanted[i] - w for i, w in enumerate(widths) if wanted[i] > w}
        total = sum(lacking.values())
        if total <= left:
            widths = [max(w, n) for w, n in zip(widths, wanted)]
            continue
        for i, short in lacking.items():
            widths[i] += left * short // total
        left = room - sum(widths)
        for i in sorted(lacking, key=lambda i: widths[i] - wanted[i])[:left]:
            widths[i] += 1
        break
    return widths


def show(console: Console, columns: Sequence[Column], rows: Sequence[Sequence[Cell]], title: str | None = None,
         record_label: str = "record") -> None:
    """Draw ``rows`` under ``columns`` at the console's width: a table where one fits and is no
    taller than the same records as blocks of ``field: value`` lines; the blocks otherwise."""
    cells = [[_lines(cell, column.kind) for column, cell in zip(columns, row)] for row in rows]
    measured = [_measure(column, [row[i] for row in cells]) for i, column in enumerate(columns)]
    room = console.width - GAP * (len(columns) - 1)
    least, *stages = (list(sizes) for sizes in zip(*measured))
    # what is left goes first to the headers of identifier columns (a few cells each), then to
    # whole words of text, then to values on one line, then to headers of text columns
    widths = _share(least, stages, room)
    blocks = _blocks(console.width, columns, cells, record_label)
    if title:  # above the table, at the console's width, not wrapped to the table's
        console.print(Text(title, style="bold"))
    if widths is not None:
        heads = [wrap(_glued(Text(column.header), TEXT), w, fold=True) for column, w in zip(columns, widths)]
        shown = [[wrap(lines, w, fold=column.kind == TEXT) for column, lines, w in zip(columns, row, widths)]
                 for row in cells]
        height = max(len(head) for head in heads) + 1 + sum(max(len(lines) for lines in row) for row in shown)
        if height <= len(blocks):  # a long text squeezed into a narrow column: the blocks read better
            _table(console, columns, widths, heads, shown)
            return
    for line in blocks:
        console.print(line, crop=False)


def _table(console: Console, columns: Sequence[Column], widths: list[int], heads, shown) -> None:
    table = Table(box=box.SIMPLE_HEAVY, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), expand=False)
    for column, w, head in zip(columns, widths, heads):
        table.add_column(Text("\n").join(head), width=w, no_wrap=True, overflow="fold",
                         justify="right" if column.kind == NUMBER else "left")
    for row in shown:
        table.add_row(*(Text("\n").join(lines) for lines in row))
    console.print(table)


def _blocks(full: int, columns: Sequence[Column], cells, record_label: str) -> list[Text]:
    """One block per record: ``field: value``, values aligned, continuation lines indented."""
    labels = [" ".join(column.header.split()) for column in columns]
    indent = max(cell_len(label) for label in labels) + 2
    out: list[Text] = []
    for n, row in enumerate(cells, 1):
        mark = f"-[ {record_label} {n} ]"
        out.append(Text(mark + "-" * max(0, min(full, 40) - cell_len(mark)), style="dim"))
        for column, label, lines in zip(columns, labels, row):
            room = full - indent
            fits = room >= (min(TEXT_FLOOR, _natural(lines)) if column.kind == TEXT else _widest_atom(lines))
            head = Text(label + ":", style="bold")
            if not any(lines):
                out.append(head)
            elif fits:
                shown = wrap(lines, room, fold=True) or [Text()]
                head.append(" " * (indent - cell_len(head.plain)))
                out.append(head + shown[0])
                out.extend(Text(" " * indent) + more for more in shown[1:])
            else:  # a label too wide for its value beside it: the value below it
                out.append(head)
                out.extend(Text("  ") + more for more in wrap(lines, full - 2, fold=True))
    return out

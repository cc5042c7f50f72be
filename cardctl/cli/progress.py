"""Batches at the terminal and in pipes: a progress bar, and the output of work that must finish.

The bar (Rich) is shown only to a person at a terminal: nothing is drawn when stderr is not a
terminal or when the output is machine readable, so pipes, files and cron logs stay clean.

A batch (``import``, ``unlock --from``, ``unlock --expired``) prints as it works, chunk by
chunk. When its standard output closes early (``| head -1``, a log reader that died) the work
is not cut short at a chunk nobody chose: ``emit_all`` goes on to the last item with the rest
of the output discarded and says so on stderr, and the exit code is that of the whole work
(0 only when every input was processed and none failed).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Callable, Iterable, Iterator, TypeVar

from ..i18n import _
from ..render.formats import OutputFormat, emit

T = TypeVar("T")


def wanted(output: OutputFormat) -> bool:
    from .common import quiet

    return output is OutputFormat.TABLE and sys.stderr.isatty() and not quiet()


def count_lines(path: str) -> int | None:
    """Lines in a file (for the bar's total); None for stdin or an unreadable file."""
    if path == "-":
        return None
    try:
        with open(path, "rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None


@contextlib.contextmanager
def tracked(items: Iterable[T], description: str, total: int | None, enabled: bool) -> Iterator[Iterable[T]]:
    """Yield ``items`` wrapped so each one advances a bar with rate and time left."""
    if not enabled:
        yield items
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                               TimeRemainingColumn)
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="cyan")

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Rate(),
               TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advancing() -> Iterator[T]:
            for item in items:
                yield item
                bar.advance(task)

        yield advancing()


class _Counted:
    """An iterator that counts what it hands out and that survives the consumer's exception
    (a generator would be closed with it), so the rest can still be drained."""

    def __init__(self, items: Iterable[T]) -> None:
        self.items, self.count, self.done = iter(items), 0, False

    def __iter__(self) -> "_Counted":
        return self

    def __next__(self) -> T:
        try:
            item = next(self.items)
        except StopIteration:
            self.done = True
            raise
        self.count += 1
        return item


def _discard_stdout() -> None:
    """Point standard output at the null device: what is still buffered, and all that follows, goes
    nowhere instead of failing again (also at exit)."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, sys.stdout.fileno())
    finally:
        os.close(null)


def emit_all(records: Iterable[dict], output: OutputFormat, *,
             table: Callable[[Iterable[dict]], int] | None = None) -> int:
    """``emit`` every record of a batch; returns how many there were.

    If standard output closes early, the batch still runs to its end: the rest is discarded and
    one line on stderr says that every item was processed (``--help`` of the batch commands).
    """
    from .common import message

    counted = _Counted(records)
    try:
        emit(counted, output, table=table)
        sys.stdout.flush()
        return counted.count
    except BrokenPipeError:
        _discard_stdout()
    except SystemExit:  # Rich's answer to a broken pipe while drawing a table (it has read every row)
        if not counted.done or output is not OutputFormat.TABLE:
            raise
    for _item in counted:
        pass
    message(_("standard output closed early: the rest of the output was discarded; the work went on to the end "
              "({count} item(s) processed)").format(count=counted.count))
    return counted.count

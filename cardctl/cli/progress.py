"""A Rich progress bar for long batches, shown only to a person at a terminal.

Nothing is drawn when stderr is not a terminal or when the output is machine
readable, so pipes, files and cron logs stay clean.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterable, Iterator, TypeVar

from ..render.formats import OutputFormat

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

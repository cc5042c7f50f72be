"""What every store shares: the transaction it works in, and splitting long IN lists."""

from __future__ import annotations

from typing import Iterator, Sequence, TypeVar

from sqlalchemy import Connection

T = TypeVar("T")

IN_LIMIT = 10_000  # values in one IN (...) list: under SQLite's and PostgreSQL's parameter limits


def chunks(values: Sequence[T], size: int = IN_LIMIT) -> Iterator[Sequence[T]]:
    """``values`` in slices short enough for one IN (...) list."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


class Store:
    """A set of typed statements over one table (or a few that belong together), run in the
    caller's transaction. Methods take and return plain values and ``domain.records``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

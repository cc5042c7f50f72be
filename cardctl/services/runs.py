"""Batch provenance: a batch (``import``, ``unlock --from``, ``unlock`` of several cards, a sweep
that ends something) is one run, opened by a ``batch.start`` event and closed by ``batch.end``,
with the run id on every event in between (docs/domain.md, "Batch provenance").

``batch.start`` is written in the transaction of the first chunk that writes anything, ahead
of that chunk's events: a batch that changes nothing (a file imported again, rows all invalid,
an input refused before its first row) leaves no run, as it left no trace before runs existed.
Each chunk commits on its own; ``batch.end`` follows the last one and carries what the whole
input was: the SHA-256 and size of every byte read from it (hashed as read, ``sources.py``),
the rows and the count per result. A run cut short (killed, a fatal error, the database gone)
has a start and no end: it shows as unfinished, never as missing.
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from datetime import timezone
from hashlib import sha256
from typing import TYPE_CHECKING, Iterable, Iterator, TypeVar

from ..domain.events import Action, Outcome
from ..domain.identity import mask_id_shapes
from ..errors import InvalidInput
from ..i18n import _
from ..storage.audit import EventDraft
from .context import Context

if TYPE_CHECKING:
    from ..storage.stores import Tx

T = TypeVar("T")

# UTC second the run began, then 32 random bits: sortable by time, unique without coordination
# between counter PCs and cron hosts, and well inside events.run_id's 40 characters
RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}")
MAX_INPUT_NAME = 255  # the file name as given, kept in the trail
STDIN = "-"


def new_run_id(ctx: Context) -> str:
    return ctx.now().astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)


def parse_run_id(raw: str) -> str:
    """A run id as ``audit log --run`` takes it; anything else is a usage error (exit 2)."""
    text = raw.strip().lower().replace("t", "T").replace("z", "Z") if raw else ""
    if not RUN_ID.fullmatch(text):
        raise InvalidInput(_("--run {value!r}: expected a run id such as 20261206T051500Z-3f9a2c1b").format(
            value=(raw or "")[:60]))
    return text


class InputDigest:
    """The SHA-256 and the size of an input's bytes, fed as they are read (``sources.text_stream``)."""

    def __init__(self) -> None:
        self._sha, self.size = sha256(), 0

    def update(self, data: bytes) -> None:
        self._sha.update(data)
        self.size += len(data)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class Run:
    """One batch run of ``ctx``. From its creation every event ``ctx`` writes carries the run id
    (the actor of a write transaction is fixed as it opens); ``begin_in`` the first chunk's
    transaction that writes, ``count`` each result, ``end`` after the last chunk.
    ``source``: the input file (``-`` for stdin), or None when the rows come from the command line
    or the database (a sweep); ``rows``: known up front, if so."""

    def __init__(self, ctx: Context, command: str, source: str | None = None, rows: int | None = None) -> None:
        self.ctx, self.command, self.rows_known = ctx, command, rows
        self.source = source
        self.digest = InputDigest() if source is not None else None
        self.results: Counter[str] = Counter()
        self.id = new_run_id(ctx)  # the second the run began, not the second its first chunk wrote
        self.begun = False
        ctx.run_id = self.id

    def _detail(self) -> dict:
        detail: dict = {"command": self.command}
        if self.source is not None:
            # a name with an ID number in it by mistake is kept masked, as every text in the trail
            detail["input"] = "stdin" if self.source == STDIN else mask_id_shapes(self.source[:MAX_INPUT_NAME])
        return detail

    def begin_in(self, tx: Tx) -> None:
        """Record ``batch.start`` in ``tx`` (a write transaction of ``ctx``), ahead of what the chunk
        writes, once: it commits with the first chunk, or not at all."""
        if self.begun:
            return
        detail = self._detail()
        if self.rows_known is not None:
            detail["rows"] = self.rows_known
        tx.record([EventDraft(Action.BATCH_START, Outcome.OK, detail=detail)])
        self.begun = True

    def count(self, items: Iterable[T]) -> Iterator[T]:
        """``items`` (with a ``result``) passed on, each counted under its result."""
        for item in items:
            self.results[item.result] += 1
            yield item

    def end(self) -> None:
        """Record ``batch.end`` after the last chunk: the rows, the count per result and, for an
        input, the SHA-256 and size of all of it. Nothing when the run never began."""
        try:
            if not self.begun:
                return
            detail = {**self._detail(), "rows": sum(self.results.values()),
                      "results": dict(sorted(self.results.items()))}
            if self.digest is not None:
                detail["input_sha256"], detail["input_bytes"] = self.digest.hexdigest(), self.digest.size
            with self.ctx.write() as tx:
                tx.record([EventDraft(Action.BATCH_END, Outcome.OK, detail=detail)])
        finally:
            self.ctx.run_id = None

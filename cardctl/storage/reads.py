"""The read store: what ``status``, the idle sweep's count and opening a context ask of the database.

Imports no SQLAlchemy. ``ReadStore`` is the protocol; it has two implementations that
share everything but how one named statement is run (``NamedReads._rows``):

- ``storage/stores/reads.py`` ``CoreReads``: SQLAlchemy Core, on SQLite and PostgreSQL,
  with the listings, counts and summaries of ``status`` on top;
- ``storage/lite.py`` ``LiteReads``: the stdlib ``sqlite3`` start-up path, over the same
  statements compiled ahead of time (``storage/statements.py`` -> ``compiled_sql.py``).

Which one a command gets is decided once, when its context opens (``services/context.py``);
so is falling back from the start-up path to Core. Each statement is one of
``storage/statements.py``'s named ones, so both implementations answer alike (checked by
tests/test_startup_path.py).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ContextManager, Iterable, Iterator, NamedTuple, Protocol, Sequence, runtime_checkable

from ..domain.model import CardStatus, LockView
from ..domain.policy import Policy
from ..domain.roles import Role, Standing

# The columns of a region's policy, in the order the policies table has them
POLICY_FIELDS = ("max_attempts", "lock_hours", "temp_loss_days", "default_pin", "minor_age", "escalate_after",
                 "escalate_window_days")
# batch.end events ``metric_figures`` reads at a time (the LIMIT of statements.batch_ends)
BATCH_PAGE = 64


class Unavailable(Exception):
    """The start-up path cannot answer; the read runs on SQLAlchemy Core instead."""


@dataclass(frozen=True)
class Filters:
    """Which cards ``status`` lists: only locked ones (of one kind), of one status, in one region."""

    locked: bool = False
    status: str | None = None
    region: str | None = None
    kind: str | None = None  # with ``locked``: only cards holding a lock of this kind


class CardRow(NamedTuple):
    """A card as stored, with its holder's name and masked ID number (``statements.card_query``)."""

    card_no: str
    name: str
    id_masked: str
    region: str
    status: str
    failures: int
    insurance_type: str
    unit: str | None
    holder_id: int
    loss_kind: str | None
    lost_at: datetime | None
    loss_lapses_at: datetime | None
    void_reason: str | None
    replaced_by: str | None
    replaces: str | None


@runtime_checkable
class PolicySource(Protocol):
    """What policies are read from: a read store, or a write transaction (``stores.Tx``)."""

    def policies_by_region(self) -> dict[str, Policy]: ...


class ReadStore(PolicySource, Protocol):
    """The reads of one read transaction (one snapshot)."""

    def schema_revision(self) -> str | None: ...

    def key_fingerprint(self) -> str | None: ...

    def operator_standing(self, login: str) -> Standing: ...

    def cards_by_number(self, card_nos: Sequence[str], now: datetime) -> list[CardRow]: ...

    def open_locks(self, card_nos: Sequence[str], now: datetime) -> dict[str, list[LockView]]: ...

    def expired_pin_cards(self, card_nos: Sequence[str], now: datetime) -> set[str]: ...

    def balances(self, holder_ids: Iterable[int],
                 units: Iterable[str | None]) -> tuple[dict[int, int], dict[str, int]]: ...

    def count_due(self, now: datetime) -> int: ...

    def metric_figures(self, now: datetime, since: datetime, sweep: str) -> MetricFigures: ...


class MetricFigures(NamedTuple):
    """What ``metrics`` reports, read in one snapshot (docs/domain.md, "Metrics")."""

    cards: list[tuple[str, str, int]]  # (region, effective status, cards)
    locked: dict[str, tuple[int, int]]  # lock kind -> (cards holding one in force, of them escalated)
    unrecorded: int  # PIN locks past their end, not yet recorded as ended
    oldest_unrecorded: datetime | None  # the earliest end among them
    opened: dict[str, int]  # lock kind -> locks started after ``since``
    head_seq: int | None
    head_recorded_at: datetime | None
    last_sweep_at: datetime | None  # recorded_at of the newest batch.end of the sweep


class ReadSource(Protocol):
    """Where read transactions come from: the context's choice of implementation."""

    def read_store(self) -> ContextManager[ReadStore]: ...


class NamedReads:
    """``ReadStore`` over named statements; subclasses say how one is run."""

    def _rows(self, name: str, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        raise NotImplementedError

    def _scalar(self, name: str, **params: Any) -> Any:
        rows = self._rows(name, params)
        return rows[0][0] if rows else None

    def schema_revision(self) -> str | None:
        return self._scalar("schema_revision")

    def key_fingerprint(self) -> str | None:
        return self._scalar("key_fingerprint")

    def operator_standing(self, login: str) -> Standing:
        rows = self._rows("operator_standing", {"login": login})
        if not rows:
            return Standing(login, None)
        role, disabled_at = rows[0]
        return Standing(login, Role(role), disabled_at is not None)

    def policies_by_region(self) -> dict[str, Policy]:
        return {prefix: Policy(**dict(zip(POLICY_FIELDS, values))) for prefix, *values in self._rows("policies", {})}

    def cards_by_number(self, card_nos: Sequence[str], now: datetime) -> list[CardRow]:
        rows = self._rows("cards_by_number", {"card_nos": list(dict.fromkeys(card_nos)), "now": now})
        return [CardRow(*row) for row in rows]

    def open_locks(self, card_nos: Sequence[str], now: datetime) -> dict[str, list[LockView]]:
        found: dict[str, list[LockView]] = defaultdict(list)
        if not card_nos:
            return found
        for card_no, kind, reason, since, until, escalated in self._rows(
                "open_locks", {"card_nos": list(card_nos), "now": now}):
            found[card_no].append(LockView(kind, reason, since, until, now, bool(escalated)))
        return found

    def expired_pin_cards(self, card_nos: Sequence[str], now: datetime) -> set[str]:
        if not card_nos:
            return set()
        return {row[0] for row in self._rows("expired_pin_cards", {"card_nos": list(card_nos), "now": now})}

    def balances(self, holder_ids: Iterable[int],
                 units: Iterable[str | None]) -> tuple[dict[int, int], dict[str, int]]:
        """Balances in fen of these holders and units; absent means zero."""
        holder_ids, units = list(set(holder_ids)), list({u for u in units if u})
        # int(): PostgreSQL sums a BIGINT column as NUMERIC
        own = ({holder: int(fen) for holder, fen in self._rows("holder_balances", {"holder_ids": holder_ids})}
               if holder_ids else {})
        of_unit = ({unit: int(fen) for unit, fen in self._rows("unit_balances", {"units": units})}
                   if units else {})
        return own, of_unit

    def count_due(self, now: datetime) -> int:
        """PIN locks past their end and temporary loss reports past their lapse: two counts over
        indexes (ix_locks_pin_due, the status index), no rows read."""
        return self._scalar("due_pin_locks", now=now) + self._scalar("lapsed_losses", now=now)

    def metric_figures(self, now: datetime, since: datetime, sweep: str) -> MetricFigures:
        """The figures of ``metrics`` at ``now``: locks opened after ``since``, the last batch run
        of the command ``sweep``. Every statement is led by an index but the locks opened since
        ``since``: one pass over the locks table (statements._locks_opened_since)."""
        lag, oldest = self._rows("sweep_lag", {"now": now})[0]
        head = self._rows("audit_head", {})
        return MetricFigures(
            cards=self._cards_by_region_status(now),
            locked={kind: (cards, escalated) for kind, cards, escalated
                    in self._rows("cards_locked_by_kind", {"now": now})},
            unrecorded=lag, oldest_unrecorded=oldest,
            opened=dict(self._rows("locks_opened_since", {"since": since})),
            head_seq=head[0][0] if head else None, head_recorded_at=head[0][1] if head else None,
            last_sweep_at=self._last_batch_end(sweep))

    def _cards_by_region_status(self, now: datetime) -> list[tuple[str, str, int]]:
        """(region, effective status, cards), in that order: each region's total less its cards
        that are not active (see statements._cards_not_active_by_region)."""
        counts = {(region, status): count for region, status, count
                  in self._rows("cards_not_active_by_region", {"now": now})}
        not_active: dict[str, int] = defaultdict(int)
        for (region, status), count in counts.items():
            if status != CardStatus.ACTIVE:
                not_active[region] += count
        for region, total in self._rows("cards_by_region", {}):
            if total > not_active[region]:  # the lapsed reports counted as active are among them
                counts[region, CardStatus.ACTIVE.value] = total - not_active[region]
        return sorted((region, status, count) for (region, status), count in counts.items())

    def _last_batch_end(self, command: str) -> datetime | None:
        """When the newest ``batch.end`` of ``command`` was recorded: newest first over
        ix_events_batches, a page at a time, so the other batches in between cost little."""
        before = 2**63 - 1
        while True:
            rows = self._rows("batch_ends", {"before": before})
            for seq, recorded_at, detail in rows:
                if _batch_command(detail) == command:
                    return recorded_at
            if len(rows) < BATCH_PAGE:
                return None
            before = rows[-1][0]


def _batch_command(detail: str | None) -> str | None:
    """The ``command`` of a batch event's detail (docs/domain.md, "Batch provenance")."""
    try:
        found = json.loads(detail) if detail else None
    except ValueError:
        return None
    return found.get("command") if isinstance(found, dict) else None


def pages(rows: Iterator[Sequence[Any]], size: int) -> Iterator[list[CardRow]]:
    """``rows`` of ``card_query`` as CardRows, ``size`` at a time."""
    page: list[CardRow] = []
    for row in rows:
        page.append(CardRow(*row))
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page

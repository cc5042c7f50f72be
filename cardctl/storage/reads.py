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

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ContextManager, Iterable, Iterator, NamedTuple, Protocol, Sequence, runtime_checkable

from ..domain.model import LockView
from ..domain.policy import Policy
from ..domain.roles import Role, Standing

# The columns of a region's policy, in the order the policies table has them
POLICY_FIELDS = ("max_attempts", "lock_hours", "temp_loss_days", "default_pin", "minor_age", "escalate_after",
                 "escalate_window_days")


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

"""Stores: every SQL statement cardctl runs, behind typed methods (docs/architecture.md).

A use case opens one transaction (``Context.write()`` / ``Context.read()``) and gets a
``Tx``: the stores working in that transaction, its "now", and the audit trail to record
events in. Stores take and return plain values and ``domain.records``; they decide
nothing, the use cases in ``services/`` do.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Sequence

from sqlalchemy import Connection

if TYPE_CHECKING:
    from ..audit import AuditTrail, EventDraft
    from .arrears import ArrearsStore
    from .cards import CardStore
    from .history import HistoryStore
    from .locks import LockStore
    from .meta import MetaStore
    from .operators import OperatorStore
    from .policies import PolicyStore
    from .reads import CoreReads
    from .reports import ReportStore

    from .trail import TrailStore


class Tx:
    """One transaction and the stores that work in it."""

    def __init__(self, conn: Connection, now: Callable[[], datetime], audit: AuditTrail | None) -> None:
        self.conn = conn
        self._now = now
        self._audit = audit

    @property
    def now(self) -> datetime:
        """The transaction's "now": on PostgreSQL the server's time read as the write began."""
        return self._now()

    def record(self, drafts: Sequence[EventDraft], at: datetime | None = None) -> int:
        """Chain ``drafts`` onto the audit trail in this transaction."""
        assert self._audit is not None, "events are recorded in write transactions only"
        return self._audit.append(self.conn, drafts, at or self.now)

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name

    @cached_property
    def cards(self) -> CardStore:
        from .cards import CardStore

        return CardStore(self.conn)

    @cached_property
    def locks(self) -> LockStore:
        from .locks import LockStore

        return LockStore(self.conn)

    @cached_property
    def arrears(self) -> ArrearsStore:
        from .arrears import ArrearsStore

        return ArrearsStore(self.conn)

    @cached_property
    def policies(self) -> PolicyStore:
        from .policies import PolicyStore

        return PolicyStore(self.conn)

    @cached_property
    def operators(self) -> OperatorStore:
        from .operators import OperatorStore

        return OperatorStore(self.conn)

    @cached_property
    def meta(self) -> MetaStore:
        from .meta import MetaStore

        return MetaStore(self.conn)

    @cached_property
    def reads(self) -> CoreReads:
        """The read store (``storage.reads.ReadStore``) in this transaction."""
        from .reads import CoreReads

        return CoreReads(self.conn)

    def policies_by_region(self) -> dict:
        """Every region's policy (``storage.reads.PolicySource``)."""
        return self.reads.policies_by_region()

    @cached_property
    def history(self) -> HistoryStore:
        from .history import HistoryStore

        return HistoryStore(self.conn)

    @cached_property
    def reports(self) -> ReportStore:
        from .reports import ReportStore

        return ReportStore(self.conn)

    @cached_property
    def trail(self) -> TrailStore:
        from .trail import TrailStore

        return TrailStore(self.conn)

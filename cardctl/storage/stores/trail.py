"""The store of the audit trail as its readers see it: events listed for ``audit log``, the head,
signed heads, and the refusal an operator without rights records through the server.

Events are read as stored (``audit_walk.raw_columns``): a time or a detail damaged behind
cardctl's back is handed on as its text and flagged, never a traceback (docs/security.md,
"A damaged or poisoned trail"). Appending events is ``Tx.record`` (storage/audit.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator

from typing import Callable, Sequence

from sqlalchemy import func, select

from ...domain.records import EventRecord, SignedHeadRecord
from .. import audit_walk as walker
from ..audit_walk import TIMES, ChainReport, Damaged, raw_columns
from ..tables import audit_head, events, signed_heads
from .base import Store

LOG_FIELDS = ("seq", "at", "recorded_at", "operator", "os_user", "channel", "action", "card_no", "outcome",
              "reason", "detail", "actor", "terminal", "run_id")


def _text(value: Any) -> tuple[str | None, bool]:
    """A stored value as text, and whether it had to be repaired to be shown."""
    if value is None or isinstance(value, str):
        return value, False
    if isinstance(value, (bytes, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            return raw.decode("utf-8", "backslashreplace"), True
    return str(value), True


def _time(value: str | None) -> datetime | str | None:
    from ..lite import aware_utc

    try:
        return aware_utc(value)
    except (TypeError, ValueError):
        return value


def event_record(raw: dict[str, Any]) -> EventRecord:
    """One row read as stored; whatever cannot be read as its column's type is named in ``damaged``."""
    values: dict[str, Any] = {}
    damaged = []
    for name, value in raw.items():
        if name == "seq":
            values[name] = value if isinstance(value, int) and not isinstance(value, bool) else None
            if values[name] is None:
                damaged.append(name)
            continue
        text, repaired = _text(value)
        if name in TIMES:
            parsed = _time(text)
            repaired = repaired or not isinstance(parsed, datetime)  # NULL, 'infinity', garbage
            text = parsed
        if repaired:
            damaged.append(name)
        values[name] = text
    return EventRecord(**values, damaged=tuple(damaged))


def _signed(row) -> SignedHeadRecord | None:
    return None if row is None else SignedHeadRecord(row.seq, row.key_id, row.hash, row.signed_at, row.signature)


class TrailStore(Store):
    def events(self, card_no: str | None = None, since: datetime | None = None, until: datetime | None = None,
               batch: int = 5000, run_id: str | None = None) -> Iterator[EventRecord]:
        """Events in seq order (``since`` inclusive, ``until`` exclusive), ``batch`` rows at a time;
        ``run_id``: only that batch run's (through ``ix_events_run_id``)."""
        is_sqlite = self.conn.dialect.name == "sqlite"
        stmt = select(*raw_columns(LOG_FIELDS, is_sqlite)).order_by(events.c.seq)
        if card_no is not None:
            stmt = stmt.where(events.c.card_no == card_no)
        if run_id is not None:
            stmt = stmt.where(events.c.run_id == run_id)
        if since is not None:
            stmt = stmt.where(events.c.at >= since)
        if until is not None:
            stmt = stmt.where(events.c.at < until)
        for row in self.conn.execute(stmt.execution_options(yield_per=batch)):
            yield event_record(dict(zip(LOG_FIELDS, row)))

    def run_actions(self, run_id: str) -> set[str]:
        """Which of ``batch.start`` and ``batch.end`` run ``run_id`` has (empty: no such run)."""
        return set(self.conn.execute(select(events.c.action).where(
            events.c.run_id == run_id, events.c.action.in_(("batch.start", "batch.end")))).scalars())

    # -- the chain as the walker reads it: every column as stored (storage/audit_walk.py) ------

    def verify(self, key: bytes, anchors: Sequence[tuple[int, str]] = ()) -> ChainReport:
        """Walk the whole chain from genesis, then the head and each anchor."""
        return walker.verify_stored(self.conn, key, anchors)

    def records(self, first: int = 1, last: int | None = None,
                batch: int = 5000) -> Iterator[dict[str, Any] | Damaged]:
        """Events ``first``..``last`` as export records (or ``Damaged``), in seq order."""
        return walker.read_records(self.conn, walker.STORED_FIELDS, first, last, batch)

    def stored_head(self) -> tuple[int, str] | None:
        """The head's (seq, hash) as stored, or None if it is missing or damaged."""
        return walker.read_head(self.conn)

    def stored_hash(self, seq: int) -> str | None:
        return walker.stored_hash(self.conn, seq)

    def hash_finder(self) -> Callable[[str], bool]:
        """Whether an event with a given hash exists anywhere in the table."""
        return walker.hash_exists(self.conn)

    # -- signed heads (services/signing.py) ---------------------------------------------------

    def signed_with_events(self, kid: str) -> Iterator:
        """Every head signed by key ``kid`` in seq order, with the hash its event has now
        (``event_hash``; None when the event is gone)."""
        return self.conn.execute(
            select(signed_heads.c.seq, signed_heads.c.hash, signed_heads.c.signed_at, signed_heads.c.signature,
                   events.c.hash.label("event_hash"))
            .select_from(signed_heads.outerjoin(events, events.c.seq == signed_heads.c.seq))
            .where(signed_heads.c.key_id == kid).order_by(signed_heads.c.seq)
            .execution_options(yield_per=5000))

    def latest_signed(self, low: int, high: int, kid: str | None = None) -> SignedHeadRecord | None:
        """The newest signed head with a seq in ``low``..``high`` (of key ``kid``, or any)."""
        stmt = select(signed_heads).where(signed_heads.c.seq.between(low, high))
        if kid is not None:
            stmt = stmt.where(signed_heads.c.key_id == kid)
        return _signed(self.conn.execute(stmt.order_by(signed_heads.c.seq.desc(), signed_heads.c.signed_at.desc())
                                         .limit(1)).first())

    def first_unmatched(self, kid: str | None = None) -> tuple[int, datetime] | None:
        """The (seq, signed_at) of the first signed head (of key ``kid``, or any) whose event is gone
        or has another hash."""
        stmt = (select(signed_heads.c.seq, signed_heads.c.signed_at)
                .select_from(signed_heads.outerjoin(events, events.c.seq == signed_heads.c.seq))
                .where((events.c.hash.is_(None)) | (events.c.hash != signed_heads.c.hash)))
        if kid is not None:
            stmt = stmt.where(signed_heads.c.key_id == kid)
        row = self.conn.execute(stmt.order_by(signed_heads.c.seq).limit(1)).first()
        return None if row is None else (row.seq, row.signed_at)

    def init_head(self) -> None:
        from ..audit import init_head

        init_head(self.conn)

    def head(self) -> tuple[int, str]:
        return tuple(self.conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one())

    def event_hash(self, seq: int) -> str | None:
        return self.conn.execute(select(events.c.hash).where(events.c.seq == seq)).scalar()

    def last_signed(self, kid: str) -> SignedHeadRecord | None:
        """The newest head signed by key ``kid``, or None."""
        return _signed(self.conn.execute(select(signed_heads).where(signed_heads.c.key_id == kid)
                                         .order_by(signed_heads.c.seq.desc()).limit(1)).first())

    def last_signed_seq(self, kid: str) -> int:
        return self.conn.execute(select(func.max(signed_heads.c.seq))
                                 .where(signed_heads.c.key_id == kid)).scalar() or 0

    def add_signed_head(self, seq: int, kid: str, hash_: str, signed_at: datetime, signature: str) -> bool:
        """Record a signed head unless that key signed this seq meanwhile (a sweep on another host:
        theirs stands); True if recorded."""
        taken = self.conn.execute(select(signed_heads.c.seq).where(signed_heads.c.seq == seq,
                                                                   signed_heads.c.key_id == kid)).first()
        if taken is None:
            self.conn.execute(signed_heads.insert().values(seq=seq, key_id=kid, hash=hash_, signed_at=signed_at,
                                                           signature=signature))
        return taken is None

    def record_refusal(self, row: dict[str, Any]) -> int:
        """PostgreSQL: an access.refused event through the server's refusal function."""
        from ..pg_access import record_refusal

        return record_refusal(self.conn, row)

"""Audit trail queries: verify the chain, list events."""

from __future__ import annotations

import operator
from dataclasses import replace
from datetime import datetime
from typing import Iterator, Sequence

from sqlalchemy import select

from ..storage.audit import ChainReport, iter_events, verify_rows
from ..storage.models import AuditHead, Event
from .context import Context


def verify_chain(ctx: Context, anchors: Sequence[tuple[int, str]] = ()) -> ChainReport:
    """Walk the chain; then check each (seq, hash prefix) anchor recorded outside the database.

    The chain alone cannot show that its newest events were cut off together with
    the head row; an anchor written down earlier (a report, a ticket) can.
    """
    with ctx.db.read() as session:
        head = session.get(AuditHead, 1)

        def hash_exists(value: str) -> bool:
            return session.scalar(select(Event.seq).where(Event.hash == value).limit(1)) is not None

        report = verify_rows(ctx.keys.audit_key, iter_events(session), head.seq, head.hash, hash_exists)
        report = replace(report, head_hash=head.hash)
        if not report.ok:
            return report
        for seq, prefix in anchors:
            found = session.scalar(select(Event.hash).where(Event.seq == seq))
            if found is None:
                return replace(report, ok=False, first_bad_seq=seq,
                               problem=f"anchor {seq}: the event is gone; the trail was cut back to {head.seq}")
            if not found.startswith(prefix.lower()):
                return replace(report, ok=False, first_bad_seq=seq,
                               problem=f"anchor {seq}: the hash differs; events up to {seq} were rewritten")
        return report


def event_log(ctx: Context, card_no: str | None, since: datetime | None,
              until: datetime | None) -> Iterator[Event]:
    filters = {}
    if card_no:
        filters["card_no"] = (operator.eq, card_no)
    if since:
        filters["at"] = (operator.ge, since)
    with ctx.db.read() as session:
        for event in iter_events(session, **filters):
            if until is not None and event.at >= until:
                continue
            yield event

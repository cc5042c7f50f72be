"""Audit trail queries: verify the chain, list events."""

from __future__ import annotations

import operator
from datetime import datetime
from typing import Iterator

from sqlalchemy import select

from ..storage.audit import ChainReport, iter_events, verify_rows
from ..storage.models import AuditHead, Event
from .context import Context


def verify_chain(ctx: Context) -> ChainReport:
    with ctx.db.read() as session:
        head = session.get(AuditHead, 1)

        def hash_exists(value: str) -> bool:
            return session.scalar(select(Event.seq).where(Event.hash == value).limit(1)) is not None

        return verify_rows(ctx.keys.audit_key, iter_events(session), head.seq, head.hash, hash_exists)


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

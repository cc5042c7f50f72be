"""The append-only, keyed hash-chained audit trail.

Each event's hash is HMAC(audit key, previous hash + canonical content). The
single ``audit_head`` row holds the last seq and hash; writers lock it, so
appends from many processes queue in one order and never fork or skip. The walker
that verifies the chain (database, export, export file) is in ``audit_walk.py``.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Connection, select, text

from .tables import audit_head, events

GENESIS = "0" * 64

# json.dumps with options builds a new encoder on every call; events are hashed by the
# hundred thousand in a batch, so the two encoders are built once (same output).
_CONTENT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_DETAIL_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass
class EventDraft:
    action: str
    outcome: str
    card_no: str | None = None
    reason: str | None = None
    detail: dict[str, Any] | None = None
    at: datetime | None = None  # when it happened, if not now (e.g. a lock's end time)


@dataclass(frozen=True)
class Actor:
    """Who acts, and where: written on every event of one append."""

    operator: str
    os_user: str
    channel: str
    terminal: str | None = None  # the counter PC, bank branch or self-service terminal (--terminal)
    run_id: str | None = None  # the batch run the events belong to (services/runs.py)


# hashed after the actor, in this order, when either is set (migration 0006)
PLACE_FIELDS = ("terminal", "run_id")


def canonical(row: dict[str, Any]) -> str:
    """The hashed content: every column but seq and the hashes, in a fixed form."""
    return _content(row["at"].isoformat(), row["recorded_at"].isoformat(), row)


def _content(at_iso: str, recorded_iso: str, row: dict[str, Any]) -> str:
    """The JSON array that is hashed. ``actor`` (who really acted: the database login, the OS
    user) comes last, and only when set: events written before it existed (migration 0004)
    keep the form they were hashed in, and blanking a newer event's actor changes its content.
    On PostgreSQL ``cardctl_record_refusal`` (migration 0004) builds this same text, byte for byte.

    ``terminal`` and ``run_id`` (migration 0006) follow as one object holding those that are set,
    only when one is: older events and refusals keep their form, and blanking either changes it.
    """
    content = [at_iso, recorded_iso, row["operator"], row["os_user"], row["channel"], row["action"],
               row["card_no"], row["outcome"], row["reason"], row["detail"]]
    actor = row.get("actor")
    place = {name: row[name] for name in PLACE_FIELDS if row.get(name) is not None}
    if actor is not None or place:
        content.append(actor)
    if place:
        content.append(place)
    return _CONTENT_JSON.encode(content)


def _hmac(key: bytes, prev_hash: str, content: str) -> str:
    return hmac.digest(key, (prev_hash + content).encode(), "sha256").hex()


def chain_hash(key: bytes, prev_hash: str, row: dict[str, Any]) -> str:
    return _hmac(key, prev_hash, canonical(row))


# on PostgreSQL: the newest event (or genesis) and the login the events trigger will record
_NEWEST_EVENT = text(f"SELECT coalesce(e.seq, 0), coalesce(e.hash, '{GENESIS}'), session_user FROM (SELECT 1) AS one "
                     "LEFT JOIN (SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1) AS e ON true")


@dataclass
class AuditTrail:
    key: bytes
    actor: Actor

    def append(self, conn: Connection, drafts: Sequence[EventDraft], now: datetime) -> int:
        """Chain and insert ``drafts`` inside the caller's write transaction.

        Three statements whatever the number of drafts: lock and read the head, one
        executemany of the events, move the head; Core applies the column types
        (UTCDateTime) to every row.
        """
        if not drafts:
            return 0
        head = audit_head
        key, actor = self.key, self.actor
        postgresql = conn.dialect.name == "postgresql"
        if postgresql:
            # The server writes the actor and moves the head at commit (its triggers, migration
            # 0004): the hash covers the login the server will record, so a client that claims
            # another name writes an event that audit verify rejects. The chain goes on from
            # the newest event, as the server checks; writers already queue on the advisory
            # write lock, and operator logins may not lock the head row.
            seq, prev, login = conn.execute(_NEWEST_EVENT).one()
        else:
            seq, prev = conn.execute(select(head.c.seq, head.c.hash).where(head.c.id == 1).with_for_update()).one()
            login = actor.os_user  # on SQLite who acts is the OS user of this process
        now_iso = now.isoformat()  # every event of one append shares recorded_at, and most share at
        rows = []
        for draft in drafts:
            seq += 1
            row = {
                "seq": seq, "at": draft.at or now, "recorded_at": now,
                "operator": actor.operator, "os_user": actor.os_user,
                "channel": actor.channel, "action": draft.action, "card_no": draft.card_no,
                "outcome": draft.outcome, "reason": draft.reason,
                "detail": _DETAIL_JSON.encode(draft.detail) if draft.detail else None,
                "actor": login, "terminal": actor.terminal, "run_id": actor.run_id, "prev_hash": prev,
            }
            content = _content(draft.at.isoformat() if draft.at else now_iso, now_iso, row)
            row["hash"] = prev = _hmac(key, prev, content)
            rows.append(row)
        conn.execute(events.insert(), rows)
        if not postgresql:
            conn.execute(head.update().where(head.c.id == 1).values(seq=seq, hash=prev))
        return len(rows)


def init_head(conn: Connection) -> None:
    """The head row a new trail starts from (genesis), unless it is there already."""
    if conn.execute(select(audit_head.c.id).where(audit_head.c.id == 1)).first() is None:
        conn.execute(audit_head.insert().values(id=1, seq=0, hash=GENESIS))


def content_of(record: dict[str, Any]) -> str:
    """The hashed content of an exported event, whose times are already ISO text."""
    return _content(record["at"], record["recorded_at"], record)

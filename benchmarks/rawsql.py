"""Plain ``sqlite3`` plumbing for the baselines: connections, stored formats, the audit chain.

Everything here writes rows exactly as cardctl would, so a baseline (or the population
built with it) passes ``cardctl audit verify`` and reads back through cardctl:

- times are naive UTC text ``YYYY-MM-DD HH:MM:SS.ffffff`` (SQLAlchemy's SQLite format),
  dates ``YYYY-MM-DD``;
- ID numbers are stored as HMAC-SHA256 hex under the key file's ID key, plus a mask;
- each event's hash is HMAC(audit key, previous hash + canonical JSON of its content),
  where times appear as aware ISO-8601 (``...+00:00``), as cardctl hashes them.

Connections get the same pragmas cardctl sets (foreign keys on, synchronous NORMAL)
and every write transaction starts with ``BEGIN IMMEDIATE``, like cardctl's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cardctl.keys import Keys, load_keys

STORED = "%Y-%m-%d %H:%M:%S.%f"


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def stored(moment: datetime) -> str:
    """An aware UTC datetime as cardctl stores it."""
    return moment.astimezone(timezone.utc).strftime(STORED)


def hashed_iso(text: str) -> str:
    """A stored time as it enters an event hash (cardctl reads it back aware, then isoformat)."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).isoformat()


def keys_of(key_file: Path) -> Keys:
    return load_keys(key_file)


def id_hash(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def detail_json(detail: dict) -> str:
    return json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Actor:
    operator: str
    os_user: str
    channel: str


class Chain:
    """Appends events to the hash chain inside the caller's transaction, as cardctl's AuditTrail."""

    INSERT = ("INSERT INTO events (seq, at, recorded_at, operator, os_user, channel, action, card_no,"
              " outcome, reason, detail, prev_hash, hash, run_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)")

    def __init__(self, key: bytes, actor: Actor, run_id: str | None = None) -> None:
        self.key = key
        self.actor = actor
        # a batch run (cardctl's services/runs.py): on every event, hashed after the (absent) actor
        self.run_id = run_id

    def append(self, conn: sqlite3.Connection, now: datetime,
               drafts: list[tuple[str, str, str | None, str | None, str | None, str | None]]) -> int:
        """``drafts``: (action, outcome, card_no, reason, detail JSON, stored ``at`` or None for now)."""
        if not drafts:
            return 0
        seq, prev = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        now_text, now_iso = stored(now), now.isoformat()
        op, user, channel = self.actor.operator, self.actor.os_user, self.actor.channel
        key, rows, run_id = self.key, [], self.run_id
        tail = [None, {"run_id": run_id}] if run_id else []
        for action, outcome, card_no, reason, detail, at in drafts:
            seq += 1
            at_text, at_iso = (at, hashed_iso(at)) if at else (now_text, now_iso)
            content = json.dumps([at_iso, now_iso, op, user, channel, action, card_no, outcome, reason, detail,
                                  *tail], ensure_ascii=False, separators=(",", ":"))
            digest = hmac.new(key, (prev + content).encode(), hashlib.sha256).hexdigest()
            rows.append((seq, at_text, now_text, op, user, channel, action, card_no, outcome, reason, detail,
                         prev, digest, run_id))
            prev = digest
        conn.executemany(self.INSERT, rows)
        conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, prev))
        return len(rows)


def self_check(keys: Keys, actor: Actor) -> None:
    """Fail early if this module's hash differs from cardctl's for the same event."""
    from cardctl.storage.audit import chain_hash

    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    ended = "2026-01-01 00:00:00.000000"
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE audit_head (id, seq, hash)")
    conn.execute("CREATE TABLE events (seq, at, recorded_at, operator, os_user, channel, action, card_no,"
                 " outcome, reason, detail, prev_hash, hash, run_id)")
    conn.execute("INSERT INTO audit_head VALUES (1, 0, ?)", ("0" * 64,))
    detail = detail_json({"kind": "pin", "lock": 7})
    for run_id in (None, "20260102T030405Z-0badcafe"):
        conn.execute("DELETE FROM events")
        conn.execute("UPDATE audit_head SET seq = 0, hash = ?", ("0" * 64,))
        Chain(keys.audit_key, actor, run_id).append(conn, now, [("lock.expire", "ended", "A00000001", "r", detail,
                                                                  ended)])
        ours = conn.execute("SELECT hash FROM events").fetchone()[0]
        theirs = chain_hash(keys.audit_key, "0" * 64, {
            "at": datetime.fromisoformat(ended).replace(tzinfo=timezone.utc), "recorded_at": now,
            "operator": actor.operator, "os_user": actor.os_user, "channel": actor.channel,
            "action": "lock.expire", "card_no": "A00000001", "outcome": "ended", "reason": "r", "detail": detail,
            "run_id": run_id})
        if ours != theirs:
            raise AssertionError("the baseline's audit hash differs from cardctl's; fix benchmarks/rawsql.py")


def new_run(key: bytes, actor: Actor, now: datetime) -> Chain:
    """A chain whose events carry a fresh run id, as cardctl's batch runs (services/runs.py)."""
    import secrets

    return Chain(key, actor, now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4))


def copy_db(source: Path, target: Path) -> Path:
    """A byte copy of ``source`` after folding any WAL into it, so each run starts from one state."""
    conn = sqlite3.connect(source)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copyfile(source, target)
    return target

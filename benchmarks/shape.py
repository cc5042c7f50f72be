"""Turn a freshly imported database into the benchmark population, with plain SQL (untimed).

Starting from N pending cards (as ``import`` leaves them), in one transaction:

- every card but each 20th is active, with one shared peppered bcrypt hash of ``PIN``
  at the configured cost (hashing a million PINs would take days);
- 10% carry a PIN lock after 3 wrong PINs: half started 24-47 h ago and are past their
  end (due for the cron sweep, not yet recorded as ended), half started 0-22 h ago;
- 1% have a personal arrears debt in the ledger and an open arrears lock;
- 0.5% are reported lost (temporary loss report, made 0-4 days ago).

These states get no audit events: the chain written by the import stays intact
(``cardctl audit verify`` passes) and every measured operation appends to it.
Rows follow cardctl's formats (see ``rawsql``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cardctl.domain import pins

from .population import Shape, card_no, choose_shape
from .rawsql import connect, stored

PIN = "583920"
LOCK_REASON = "3 consecutive wrong PINs"
OPERATOR_ARREARS = "arrears-feed"
# The PIN locks not yet due end 2-24 h after the build: within this age a reused
# population still has exactly ``pin_due`` locks due, as the sweep's checks expect.
REUSE_HOURS = 2


@dataclass(frozen=True)
class Population:
    db: Path
    shape: Shape
    built_at: datetime
    pin_hash: str

    def free_card(self) -> str:
        """An active card in no special state, for verify."""
        busy = set(self.shape.pin_locked) | set(self.shape.arrears) | set(self.shape.lost)
        return card_no(next(i for i in range(1, 10**9) if i % 20 and i not in busy))


def _record_path(db: Path) -> Path:
    return db.with_suffix(".json")


def remember(population: Population, cards: int) -> None:
    """Note beside the database what ``reusable`` needs to take it up again."""
    _record_path(population.db).write_text(json.dumps({
        "cards": cards, "built_at": population.built_at.isoformat(), "pin_hash": population.pin_hash}),
        encoding="utf-8")


def forget(db: Path) -> None:
    """``db`` is about to be rebuilt: never reuse it half-built."""
    _record_path(db).unlink(missing_ok=True)


def reusable(db: Path, cards: int) -> Population | None:
    """The population built into ``db`` by a recent run for the same number of cards, if any."""
    record = _record_path(db)
    if not db.exists() or not record.exists():
        return None
    facts = json.loads(record.read_text(encoding="utf-8"))
    built_at = datetime.fromisoformat(facts["built_at"])
    if facts["cards"] != cards or datetime.now(timezone.utc) - built_at > timedelta(hours=REUSE_HOURS):
        return None
    return Population(db, choose_shape(cards), built_at, facts["pin_hash"])


def _spread(index: int, seconds: int) -> timedelta:
    return timedelta(seconds=index * 7919 % seconds)


def build(db: Path, shape: Shape, pepper: bytes, cost: int) -> Population:
    now = datetime.now(timezone.utc)
    pin_hash = pins.hash_pin(PIN, pepper, cost)
    conn = connect(db)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE cards SET status = 'active', pin_hash = ?, pin_scheme = ?, activated_at = ?"
                 " WHERE CAST(substr(card_no, 2) AS INTEGER) % 20 <> 0",
                 (pin_hash, pins.SCHEME_PEPPERED, stored(now - timedelta(days=30))))
    day = timedelta(hours=24)
    locks = []
    for i in shape.pin_due:  # started 24-47 h ago: ended 0-23 h ago
        started = now - day - timedelta(minutes=1) - _spread(i, 23 * 3600)
        locks.append((card_no(i), "pin", LOCK_REASON, stored(started), stored(started + day), "system"))
    for i in shape.pin_open:  # started 0-22 h ago: ends in 2-24 h
        started = now - _spread(i, 22 * 3600)
        locks.append((card_no(i), "pin", LOCK_REASON, stored(started), stored(started + day), "system"))
    for i in shape.arrears:
        locks.append((card_no(i), "arrears", "personal contributions unpaid", stored(now - timedelta(days=40)),
                      None, OPERATOR_ARREARS))
    conn.executemany("INSERT INTO locks (card_no, kind, reason, started_at, ends_at, created_by)"
                     " VALUES (?,?,?,?,?,?)", locks)
    conn.executemany("UPDATE cards SET failures = 3 WHERE card_no = ?", [(card_no(i),) for i in shape.pin_locked])
    conn.executemany(
        "INSERT INTO arrears (holder_id, amount_fen, period, at, operator)"
        " SELECT holder_id, ?, ?, ?, ? FROM cards WHERE card_no = ?",
        [(35_000 + i % 50_000, "2026-09", stored(now - timedelta(days=40)), OPERATOR_ARREARS, card_no(i))
         for i in shape.arrears])
    lost = []
    for i in shape.lost:
        at = now - _spread(i, 4 * 86400)
        lost.append((stored(at), stored(at + timedelta(days=7)), card_no(i)))
    conn.executemany("UPDATE cards SET status = 'lost', loss_kind = 'temporary', lost_at = ?, loss_lapses_at = ?"
                     " WHERE card_no = ?", lost)
    conn.execute("COMMIT")
    conn.close()
    return Population(db, shape, now, pin_hash)


def with_locked(db: Path, pin_locks: int) -> int:
    """Leave exactly ``pin_locks`` PIN locks in force (lowest ids) and no other lock; returns the count.

    Used for the streaming runs, where only the number of locked cards should change.
    """
    now = datetime.now(timezone.utc)
    conn = connect(db)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE locks SET ended_at = ?, end_cause = 'paid', ended_by = 'bench' WHERE kind <> 'pin'"
                 " AND ended_at IS NULL", (stored(now),))
    ids = [row[0] for row in conn.execute("SELECT id FROM locks WHERE kind = 'pin' AND ended_at IS NULL ORDER BY id")]
    keep, drop = ids[:pin_locks], ids[pin_locks:]
    conn.executemany("UPDATE locks SET ends_at = ? WHERE id = ?",
                     [(stored(now + timedelta(hours=20)), lock_id) for lock_id in keep])
    conn.executemany("UPDATE locks SET ended_at = ?, end_cause = 'unlocked', ended_by = 'bench' WHERE id = ?",
                     [(stored(now), lock_id) for lock_id in drop])
    conn.execute("COMMIT")
    conn.close()
    return len(keep)

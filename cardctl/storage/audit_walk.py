"""The one chain walker shared by database verify, export and offline verify, and the reading of
event rows it needs without trusting them.

A trail is evidence: whoever damaged it chose what is in it. Every column is read as it is
stored (text or bytes, never converted by the driver), so a time that is no time, a NULL, a
number where text belongs or bytes that are no UTF-8 make that one event bad instead of
stopping the walk with a traceback. The walk then goes on past it, anchored on what the bad
event stored, so one poisoned event cannot hide tampering further down (docs/security.md,
"A damaged or poisoned trail").
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Sequence

from sqlalchemy import LargeBinary, case, cast, func, literal, select

from ..i18n import _
from .audit import GENESIS, _hmac, content_of
from .audit_export import ACTOR_FIELD, EVENT_FIELDS, PLACE_FIELDS

# what a walk of the database reads: every hashed field, and the actor, terminal and run when set
STORED_FIELDS = (*EVENT_FIELDS, ACTOR_FIELD, *PLACE_FIELDS)
from .tables import audit_head, events

TIMES = ("at", "recorded_at")
HASHES = ("prev_hash", "hash")


class Damaged(Exception):
    """An event (or the head) that cannot be read as one: ``field`` is what is wrong with it."""

    def __init__(self, field: str, seq: int | None) -> None:
        super().__init__(field)
        self.field, self.seq = field, seq


@dataclass(frozen=True)
class ChainReport:
    """What a walk found. ``checked``: events read; ``bad``: events that failed (a deleted range
    counts each missing seq), the first and last of them named with their problem."""

    checked: int
    ok: bool
    problem: str | None = None
    first_bad_seq: int | None = None
    head_hash: str | None = None  # the last event's hash: write it down elsewhere as an anchor
    bad: int = 0
    last_bad_seq: int | None = None
    last_problem: str | None = None
    signed_seq: int | None = None  # the newest signed head that still matches (services/signing.py)
    signature_key: str | None = None  # the key id signatures were checked with; None: not checked


@dataclass
class ChainWalk:
    """Follows the chain one event at a time from a known point and records every event that
    breaks it: the count, the first and the last.

    After a bad event the walk re-anchors on what that event stored (its hash, its seq), so the
    events after it are judged on their own links. ``elsewhere(h)`` tells whether an event with
    hash ``h`` exists out of its place (anywhere in the table; further down an export file): a
    broken link whose missing predecessor is elsewhere was reordered, one whose predecessor is
    nowhere was deleted. ``where`` words a problem's place (an export's file and line).
    """

    key: bytes
    next_seq: int = 1
    prev: str = GENESIS
    checked: int = 0
    bad: int = 0
    problem: str | None = None
    first_bad_seq: int | None = None
    last_problem: str | None = None
    last_bad_seq: int | None = None
    where: Callable[[str], str] = field(default=lambda problem: problem, repr=False)
    # the event before was edited or unreadable: its stored hash proves nothing, so the next
    # event's link to it is not counted against that event again
    _loose: bool = field(default=False, repr=False)

    def step(self, seq: int, prev_hash: str, hash_: str, content: str,
             elsewhere: Callable[[str], bool]) -> bool:
        """True if the event continues the chain; otherwise it is counted and the walk goes on."""
        expected = self.next_seq
        self.checked += 1
        if not self._genuine(prev_hash, content, hash_):
            problem = _("event {seq} was edited (its hash does not match its content)").format(seq=seq)
            self._broken(problem, seq)
            if seq >= expected:  # else a stray from further back: the walk still waits for the expected one
                self._anchor(hash_, seq, loose=True)
            return False
        if prev_hash == self.prev or self._loose and seq == expected:
            if seq != expected:  # seq is not hashed: the content is genuine, its number is not
                self._broken(_("event {expected} carries seq {seq}: its seq was edited").format(
                    expected=expected, seq=seq), expected)
                self._anchor(hash_, expected)
                return False
            self.prev, self.next_seq, self._loose = hash_, expected + 1, False
            return True
        if hash_ == self.prev:
            self._broken(_("event {seq} appears twice: duplicated").format(seq=seq), seq)
            return False  # the anchor stays: the original was walked already
        if seq < expected:
            self._broken(_("event {seq} is out of order: reordered").format(seq=seq), seq)
            return False  # a stray from further back: the walk still waits for the expected one
        if elsewhere(prev_hash):
            self._broken(_("event {seq} is out of order: reordered").format(seq=expected), expected)
        elif seq == expected + 1:
            self._broken(_("event {seq} is missing: deleted").format(seq=expected), expected)
        elif seq != expected:
            self._broken(_("events {first}-{last} are missing: deleted").format(first=expected, last=seq - 1),
                         expected, seq - 1)
        else:
            self._broken(_("the event before {seq} was deleted").format(seq=seq), seq)
        self._anchor(hash_, seq)
        return False

    def damaged(self, problem: str, seq: int | None = None, stray: bool = False) -> None:
        """An event that cannot be read (``seq`` if its number at least could): counted, and the
        next one is judged by its own hash and seq, since this one's hash is unknown. A ``stray``
        (a database row without a seq) holds no place in the order: the walk stays where it is."""
        expected = self.next_seq
        self.checked += 1
        if stray:
            self._broken(problem, None)
            return
        at = seq if seq is not None and seq >= expected else expected
        self._broken(problem, at)
        self.next_seq, self._loose = at + 1, True

    def report(self) -> ChainReport:
        return ChainReport(self.checked, self.bad == 0, self.problem, self.first_bad_seq, None, self.bad,
                           self.last_bad_seq, self.last_problem)

    def _genuine(self, prev_hash: str, content: str, hash_: str) -> bool:
        try:
            return hmac.compare_digest(_hmac(self.key, prev_hash, content), hash_)
        except (TypeError, ValueError):  # a lone surrogate or other text no hash can be taken of
            return False

    def _anchor(self, hash_: str, seq: int, loose: bool = False) -> None:
        self.prev, self.next_seq, self._loose = hash_, seq + 1, loose

    def _broken(self, problem: str, first: int | None, last: int | None = None) -> None:
        problem = self.where(problem)
        if first is None:  # a bad event of no known seq: named only if nothing else is
            self.bad += 1
            self.problem = self.problem or problem
            self.last_problem = self.last_problem or problem
            return
        last = first if last is None else last
        self.bad += last - first + 1
        if self.first_bad_seq is None:
            self.problem, self.first_bad_seq = problem, first
        self.last_problem, self.last_bad_seq = problem, last

    def broken(self, problem: str, first: int, last: int | None = None) -> None:
        """A problem found beside the events themselves (the head, an anchor, a range's end)."""
        self._broken(problem, first, last)


# --- reading event rows as they are stored --------------------------------------------------


def record_of(raw: dict[str, Any]) -> dict[str, Any]:
    """An event row read raw (``raw_columns``) as an export record: seq an int, times the ISO
    text the hash covers, every other field text or None. Raises ``Damaged`` naming the field."""
    seq = raw["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise Damaged("seq", None)
    record: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, (bytes, memoryview)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise Damaged(name, seq) from None
        if name == "seq":
            record[name] = value
        elif name in TIMES:
            record[name] = _iso(value, name, seq)
        elif name in HASHES:
            if not isinstance(value, str):
                raise Damaged(name, seq)
            record[name] = value
        elif value is not None and not isinstance(value, str):
            raise Damaged(name, seq)
        else:
            record[name] = value
    for name in (ACTOR_FIELD, *PLACE_FIELDS):
        if record.get(name, "") is None:  # not set, or written before it was recorded
            del record[name]
    return record


def _iso(value: Any, name: str, seq: int) -> str:
    # the stored form (naive UTC text) as UTCDateTime reads it, then the ISO text the hash covers
    if not isinstance(value, str):
        raise Damaged(name, seq)
    try:
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc).isoformat()
    except ValueError:  # 'infinity', a BC date, any text that is no time
        raise Damaged(name, seq) from None


# a PostgreSQL time as ISO text whatever the session's DateStyle; NULL for +-infinity
_PG_ISO = 'YYYY-MM-DD"T"HH24:MI:SS.US'


def _raw(column, is_sqlite: bool):
    """``column`` as stored: bytes on SQLite (a text that is no UTF-8 would stop the cursor
    itself), text on PostgreSQL (a timestamp the driver cannot convert would too)."""
    if is_sqlite:
        return cast(column, LargeBinary).label(column.name)
    return (func.to_char(column, _PG_ISO) if column.name in TIMES else column).label(column.name)


def raw_columns(names: tuple[str, ...], is_sqlite: bool) -> list:
    columns = []
    for name in names:
        column = events.c[name]
        if name == "seq" and is_sqlite:  # any type is allowed in a column of SQLite: ints only
            columns.append(case((func.typeof(column) == "integer", column)).label("seq"))
        else:
            columns.append(_raw(column, is_sqlite) if name != "seq" else column)
    return columns


def read_records(conn, names: tuple[str, ...], first: int = 1, last: int | None = None,
                 batch: int = 5000) -> Iterator[dict[str, Any] | Damaged]:
    """Events in seq order, each as a record or as ``Damaged``; ``batch`` rows at a time (a
    server-side cursor on PostgreSQL), so memory stays flat."""
    is_sqlite = conn.dialect.name == "sqlite"
    stmt = select(*raw_columns(names, is_sqlite)).order_by(events.c.seq)
    if first > 1:
        stmt = stmt.where(events.c.seq >= first)
    if last is not None:
        stmt = stmt.where(events.c.seq <= last)
    for row in conn.execute(stmt.execution_options(yield_per=batch)):
        raw = dict(zip(names, row))
        try:
            yield record_of(raw)
        except Damaged as damaged:
            yield damaged


def read_head(conn) -> tuple[int, str] | None:
    """The head's (seq, hash), or None if the row is missing or holds no seq and hash."""
    is_sqlite = conn.dialect.name == "sqlite"
    seq = audit_head.c.seq
    if is_sqlite:
        seq = case((func.typeof(seq) == "integer", seq))
    row = conn.execute(select(seq, _raw(audit_head.c.hash, is_sqlite)).where(audit_head.c.id == 1)).first()
    if row is None or not isinstance(row[0], int):
        return None
    hash_ = row[1]
    if isinstance(hash_, (bytes, memoryview)):
        try:
            hash_ = bytes(hash_).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return (row[0], hash_) if isinstance(hash_, str) else None


def stored_hash(conn, seq: int) -> str | None:
    """The hash stored with event ``seq``, or None if there is no such event or no text in it."""
    is_sqlite = conn.dialect.name == "sqlite"
    value = conn.execute(select(_raw(events.c.hash, is_sqlite)).where(events.c.seq == seq).limit(1)).scalar()
    if isinstance(value, (bytes, memoryview)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def hash_exists(conn) -> Callable[[str], bool]:
    def exists(value: str) -> bool:
        return conn.execute(select(literal(1)).where(events.c.hash == value).limit(1)).first() is not None

    return exists


def take(walk: ChainWalk, record: dict[str, Any] | Damaged, elsewhere: Callable[[str], bool]) -> bool:
    """One row of a database walk (verify or export): True if it continues the chain."""
    if isinstance(record, Damaged):
        walk.damaged(damaged_problem(record), record.seq, stray=record.seq is None)
        return False
    try:
        content = content_of(record)
    except (TypeError, ValueError):
        walk.damaged(damaged_problem(Damaged("detail", record["seq"])), record["seq"])
        return False
    return walk.step(record["seq"], record["prev_hash"], record["hash"], content, elsewhere)


def damaged_problem(damaged: Damaged) -> str:
    if damaged.seq is None:
        return _("an event without a readable seq is in the trail (edited outside cardctl)")
    return _("event {seq} is damaged: its {field} is not readable as stored (edited outside cardctl)").format(
        seq=damaged.seq, field=damaged.field)


def walk_to_head(walk: ChainWalk, head: tuple[int, str] | None, last: int | None = None) -> None:
    """After the last event: the head row must name it (``last``: where the walk was to end)."""
    walked = walk.next_seq - 1
    if head is None:
        walk.broken(_("the head row is missing or damaged: events from {seq} on may have been cut off").format(
            seq=walked + 1), walked + 1)
        return
    head_seq, head_hash = head
    end = head_seq if last is None else last
    if walked < end:
        walk.broken(_("events after {seq} are missing: deleted (head says {head})").format(seq=walked, head=head_seq),
                    walked + 1, end)
    elif end == head_seq and walk.prev != head_hash:
        walk.broken(_("the head does not match event {seq}: the trail was rewritten").format(seq=head_seq),
                    head_seq)


def verify_stored(conn, key: bytes, anchors: Sequence[tuple[int, str]] = ()) -> ChainReport:
    """Walk the whole chain in the database from genesis, then the head and each (seq, hash
    prefix) anchor recorded outside it, in one read transaction (``conn``)."""
    walk = ChainWalk(key)
    elsewhere = hash_exists(conn)
    for record in read_records(conn, STORED_FIELDS):
        take(walk, record, elsewhere)
    head = read_head(conn)
    walk_to_head(walk, head)
    # the chain alone cannot show that its newest events were cut off together with the head
    # row; an anchor written down earlier (a report, a ticket) can
    for seq, prefix in anchors:
        found = stored_hash(conn, seq)
        if found is None:
            walk.broken(_("anchor {seq}: the event is gone; the trail was cut back to {head}").format(
                seq=seq, head=head[0] if head else walk.next_seq - 1), seq)
        elif not found.startswith(prefix.lower()):
            walk.broken(_("anchor {seq}: the hash differs; events up to {seq} were rewritten").format(seq=seq), seq)
    return replace(walk.report(), head_hash=head[1] if head else None)

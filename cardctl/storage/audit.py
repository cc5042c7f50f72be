"""The append-only, keyed hash-chained audit trail.

Each event's hash is HMAC(audit key, previous hash + canonical content). The
single ``audit_head`` row holds the last seq and hash; writers lock it, so
appends from many processes queue in one order and never fork or skip.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from sqlalchemy import Connection, select

from ..i18n import _
from .tables import audit_head, events

if TYPE_CHECKING:  # the ORM is loaded only by callers that use it: the sweep and reads never do
    from sqlalchemy.orm import Session

    from .models import Event

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
    operator: str
    os_user: str
    channel: str


def canonical(row: dict[str, Any]) -> str:
    """The hashed content: every column but seq and the hashes, in a fixed form."""
    return _content(row["at"].isoformat(), row["recorded_at"].isoformat(), row)


def _content(at_iso: str, recorded_iso: str, row: dict[str, Any]) -> str:
    return _CONTENT_JSON.encode(
        [at_iso, recorded_iso, row["operator"], row["os_user"], row["channel"], row["action"],
         row["card_no"], row["outcome"], row["reason"], row["detail"]])


def _hmac(key: bytes, prev_hash: str, content: str) -> str:
    return hmac.digest(key, (prev_hash + content).encode(), "sha256").hex()


def chain_hash(key: bytes, prev_hash: str, row: dict[str, Any]) -> str:
    return _hmac(key, prev_hash, canonical(row))


@dataclass
class AuditTrail:
    key: bytes
    actor: Actor

    def append(self, session: Session | Connection, drafts: Sequence[EventDraft], now: datetime) -> int:
        """Chain and insert ``drafts`` inside the caller's write transaction (a Session or a
        Core Connection).

        Three statements whatever the number of drafts: lock and read the head, one
        executemany of the events, move the head. They go through Core on the
        session's connection: the ORM's bulk insert builds its parameters row by row
        and splits the batch wherever a column turns NULL, which costs more than the
        hashing. Core still applies the column types (UTCDateTime) to every row.
        """
        if not drafts:
            return 0
        if isinstance(session, Connection):
            conn = session
        else:
            session.flush()  # objects the caller added go in first, as the ORM's autoflush did
            conn = session.connection()
        head = audit_head
        seq, prev = conn.execute(select(head.c.seq, head.c.hash).where(head.c.id == 1).with_for_update()).one()
        key, actor = self.key, self.actor
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
                "prev_hash": prev,
            }
            content = _content(draft.at.isoformat() if draft.at else now_iso, now_iso, row)
            row["hash"] = prev = _hmac(key, prev, content)
            rows.append(row)
        conn.execute(events.insert(), rows)
        conn.execute(head.update().where(head.c.id == 1).values(seq=seq, hash=prev))
        return len(rows)


def init_head(session: Session) -> None:
    from .models import AuditHead

    if session.get(AuditHead, 1) is None:
        session.add(AuditHead(id=1, seq=0, hash=GENESIS))


@dataclass(frozen=True)
class ChainReport:
    checked: int
    ok: bool
    problem: str | None = None
    first_bad_seq: int | None = None
    head_hash: str | None = None  # the last event's hash: write it down elsewhere as an anchor
    signed_seq: int | None = None  # the newest signed head that still matches (storage/signing.py)
    signature_key: str | None = None  # the key id signatures were checked with; None: not checked


@dataclass
class ChainWalk:
    """Follows the chain one event at a time from a known point and names the first event
    that breaks it. The database walk, the export and the export's verifier all use it.

    ``elsewhere(h)`` tells whether an event with hash ``h`` exists out of its place (anywhere
    in the table; further down an export file): a broken link whose missing predecessor is
    elsewhere was reordered, one whose predecessor is nowhere was deleted.
    """

    key: bytes
    next_seq: int = 1
    prev: str = GENESIS
    checked: int = 0
    problem: str | None = None
    first_bad_seq: int | None = None

    def step(self, seq: int, prev_hash: str, hash_: str, content: str,
             elsewhere: Callable[[str], bool]) -> bool:
        """True if the event continues the chain; otherwise the problem is recorded."""
        expected = self.next_seq
        if _hmac(self.key, prev_hash, content) != hash_:
            return self._broken(_("event {seq} was edited (its hash does not match its content)").format(seq=seq), seq)
        if prev_hash == self.prev:
            if seq != expected:  # seq is not hashed: the content is genuine, its number is not
                return self._broken(_("event {expected} carries seq {seq}: its seq was edited").format(expected=expected, seq=seq),
                                    expected)
            self.prev, self.next_seq, self.checked = hash_, expected + 1, self.checked + 1
            return True
        if hash_ == self.prev:
            return self._broken(_("event {seq} appears twice: duplicated").format(seq=seq), seq)
        if seq < expected:
            return self._broken(_("event {seq} is out of order: reordered").format(seq=seq), seq)
        if elsewhere(prev_hash):
            return self._broken(_("event {seq} is out of order: reordered").format(seq=expected), expected)
        if seq != expected:
            return self._broken(_("event {seq} is missing: deleted").format(seq=expected), expected)
        return self._broken(_("the event before {seq} was deleted").format(seq=seq), seq)

    def _broken(self, problem: str, seq: int) -> bool:
        self.problem, self.first_bad_seq = problem, seq
        return False

    def report(self) -> ChainReport:
        return ChainReport(self.checked, self.problem is None, self.problem, self.first_bad_seq)


def _row(event: Event) -> dict[str, Any]:
    return {c: getattr(event, c) for c in ("at", "recorded_at", "operator", "os_user", "channel",
                                            "action", "card_no", "outcome", "reason", "detail")}


def content_of(record: dict[str, Any]) -> str:
    """The hashed content of an exported event, whose times are already ISO text."""
    return _content(record["at"], record["recorded_at"], record)


def verify_rows(key: bytes, events: Iterable[Any], head_seq: int, head_hash: str,
                hash_exists: Callable[[str], bool]) -> ChainReport:
    """Walk the chain in seq order from genesis and name the first event that breaks it.

    ``hash_exists(h)`` tells whether some event carries hash ``h``, to tell a
    reordered event (its predecessor is elsewhere) from a deleted one.
    """
    walk = ChainWalk(key)
    for event in events:
        if not walk.step(event.seq, event.prev_hash, event.hash, canonical(_row(event)), hash_exists):
            return walk.report()
    count = walk.checked
    if count != head_seq or walk.prev != head_hash:
        problem = _("events after {seq} are missing: deleted (head says {head})").format(seq=count, head=head_seq)
        return ChainReport(count, False, problem, count + 1)
    return ChainReport(count, True)


def iter_events(session: Session, batch: int = 5000, **filters) -> Iterator[Event]:
    """Events in seq order, fetched in batches so memory stays flat."""
    from .models import Event

    stmt = select(Event).order_by(Event.seq)
    for column, (op, value) in filters.items():
        stmt = stmt.where(op(getattr(Event, column), value))
    yield from session.scalars(stmt.execution_options(yield_per=batch))


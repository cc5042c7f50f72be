"""Audit trail queries: verify the chain, list events, export it for retention and verify an export."""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Iterator, Sequence

from sqlalchemy import select

from ..config import Settings
from ..errors import InvalidInput
from ..i18n import _
from ..storage.audit import ChainReport, iter_events, verify_rows
from ..storage.models import AuditHead, Event
from .context import Context

if TYPE_CHECKING:
    from ..storage.audit_export_verify import FileReport


def verify_chain(ctx: Context, anchors: Sequence[tuple[int, str]] = (),
                 public_key: bytes | None = None) -> ChainReport:
    """Walk the chain; then check each (seq, hash prefix) anchor recorded outside the database,
    and with ``public_key`` every head it signed (services/signing.py).

    The chain alone cannot show that its newest events were cut off together with
    the head row; an anchor written down earlier (a report, a ticket) can. Nor can it show a
    rewrite by someone holding the audit key; a signed head can.
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
                               problem=_("anchor {seq}: the event is gone; the trail was cut back to {head}").format(
                                   seq=seq, head=head.seq))
            if not found.startswith(prefix.lower()):
                return replace(report, ok=False, first_bad_seq=seq,
                               problem=_("anchor {seq}: the hash differs; events up to {seq} were rewritten").format(seq=seq))
        if public_key is None:
            return report
        from .signing import check_signed_heads

        signed = check_signed_heads(session, ctx.keys.fingerprint, public_key)
        report = replace(report, signed_seq=signed.signed_seq, signature_key=signed.key_id)
        if not signed.ok:
            return replace(report, ok=False, problem=signed.problem, first_bad_seq=signed.first_bad_seq)
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


# --- export for long-term retention ----------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    count: int
    from_seq: int
    to_seq: int
    last_hash: str  # the hash of event to_seq: the head of the export, to note as an anchor
    broken: ChainReport | None = None  # the chain in the database broke; nothing was kept


class _ChainStop(Exception):
    def __init__(self, report: ChainReport) -> None:
        super().__init__(report.problem)
        self.report = report


def export_trail(ctx: Context, target: str, from_seq: int = 1, to_seq: int | None = None,
                 force: bool = False, batch: int = 5000, signer=None) -> ExportResult:
    """Write events ``from_seq``..``to_seq`` (default: to the newest) to ``target`` as an export.

    One read transaction, so the file is one snapshot of the trail; events stream in batches.
    Every event is checked on its way out (its hash, its link to the one before, the first
    one's link to the event before the range), and an export of a broken chain is refused:
    the file is removed and the report says which event broke it. The header carries the newest
    signed head in the range; with ``signer`` (the signing host) the end line is signed too.
    """
    from ..storage.audit import GENESIS, ChainWalk
    from ..storage.audit_export import ExportWriter, Header, atomic_output, iter_records

    with ctx.db.read() as session:
        head_seq, head_hash = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
        last = _export_range(from_seq, to_seq, head_seq)
        prev = GENESIS if from_seq == 1 else session.scalar(select(Event.hash).where(Event.seq == from_seq - 1))
        if prev is None:
            return ExportResult(0, from_seq, last, GENESIS, ChainReport(
                0, False, _("event {seq}, which the export would follow, is missing: deleted").format(seq=from_seq - 1),
                from_seq - 1))
        from ..storage.signing import key_id, signed_head_record, signing_time
        from .signing import first_unmatched_head, latest_signed_head

        # the head of the key this host verifies with, if it knows one; else the newest of any
        public = signer.public if signer is not None else ctx.keys.public_key
        kid = key_id(public) if public else None
        unmatched = first_unmatched_head(session, kid)
        if unmatched is not None:
            return ExportResult(0, from_seq, last, GENESIS, ChainReport(
                0, False, _("signed head {seq} (signed {at}) no longer matches the trail: it was rewritten").format(
                    seq=unmatched.seq, at=signing_time(unmatched.signed_at).isoformat()), unmatched.seq))
        signed = latest_signed_head(session, from_seq - 1, last, kid)
        header = Header(ctx.keys.fingerprint, ctx.db.display, from_seq, last, prev, ctx.now().isoformat(),
                        ctx.settings.operator, ctx.settings.os_user,
                        signed_head_record(signed) if signed is not None else None)
        walk = ChainWalk(ctx.keys.audit_key, from_seq, prev)
        writer = None
        try:
            with atomic_output(target, force) as out:
                writer = ExportWriter(out, ctx.keys.audit_key, header, signer)
                for record in _checked(walk, iter_records(session, from_seq, last, batch), session):
                    writer.event(record)
                _check_end(walk, last, head_seq, head_hash)
                writer.end(last, walk.prev)
        except _ChainStop as stop:
            return ExportResult(writer.count if writer else 0, from_seq, last, walk.prev, stop.report)
    return ExportResult(writer.count, from_seq, last, walk.prev)


def _checked(walk, records: Iterator[dict], session) -> Iterator[dict]:
    """The records, each first checked to continue the chain; stops at the first that does not."""
    from ..storage.audit import content_of

    def hash_exists(value: str) -> bool:
        return session.scalar(select(Event.seq).where(Event.hash == value).limit(1)) is not None

    for record in records:
        if not walk.step(record["seq"], record["prev_hash"], record["hash"], content_of(record), hash_exists):
            raise _ChainStop(walk.report())
        yield record


def _check_end(walk, last: int, head_seq: int, head_hash: str) -> None:
    problem = None
    if walk.next_seq <= last:
        problem = _("events after {seq} are missing: deleted (head says {head})").format(
            seq=walk.next_seq - 1, head=head_seq)
    elif last == head_seq and walk.prev != head_hash:
        problem = _("the head does not match event {seq}: the trail was rewritten").format(seq=last)
    if problem:
        raise _ChainStop(ChainReport(walk.checked, False, problem, walk.next_seq))


def _export_range(from_seq: int, to_seq: int | None, head_seq: int) -> int:
    if to_seq is not None and to_seq > head_seq:
        raise InvalidInput(_("--to-seq {seq}: the trail ends at seq {head}").format(seq=to_seq, head=head_seq))
    last = head_seq if to_seq is None else to_seq
    if from_seq > last + 1:
        if to_seq is not None:
            raise InvalidInput(_("--from-seq {first} is after --to-seq {last}").format(first=from_seq, last=to_seq))
        raise InvalidInput(_("--from-seq {seq}: the trail ends at seq {head}").format(seq=from_seq, head=head_seq))
    return last


def verify_export_files(settings: Settings, files: Sequence[str],
                        anchors: Sequence[tuple[int, str]] = (), public_key: str | None = None) -> FileReport:
    """Verify export files with the key file alone (and the public signing key): no database is opened."""
    from ..keys import load_keys
    from ..storage.audit_export_verify import verify_files
    from ..storage.signing import public_key_for

    keys = load_keys(settings.key_file)
    public = public_key_for(settings, keys, public_key)
    return verify_files(keys, str(settings.key_file), files, anchors, public)

"""Audit trail queries: verify the chain, list events, export it for retention and verify an export."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Iterator, Sequence

from ..config import Settings
from ..errors import InvalidInput
from ..i18n import _
from ..storage.audit_walk import ChainReport
from .context import Context

if TYPE_CHECKING:
    from ..domain.records import EventRecord
    from ..storage.audit_export_verify import FileReport


def verify_chain(ctx: Context, anchors: Sequence[tuple[int, str]] = (),
                 public_key: bytes | None = None) -> ChainReport:
    """Walk the chain; then check each (seq, hash prefix) anchor recorded outside the database,
    and with ``public_key`` every head it signed (services/signing.py).

    The chain alone cannot show that its newest events were cut off together with
    the head row; an anchor written down earlier (a report, a ticket) can. Nor can it show a
    rewrite by someone holding the audit key; a signed head can. Every bad event is counted,
    however damaged the trail (``storage/audit_walk.py``).
    """
    with ctx.read() as tx:
        report = tx.trail.verify(ctx.keys.audit_key, anchors)
        if public_key is None:
            return report
        from .signing import check_signed_heads

        signed = check_signed_heads(tx, ctx.keys.fingerprint, public_key)
        report = replace(report, signed_seq=signed.signed_seq, signature_key=signed.key_id)
        if signed.ok:
            return report
        if report.ok:  # the chain verifies with the audit key, yet no longer matches what was signed
            return replace(report, ok=False, problem=signed.problem, first_bad_seq=signed.first_bad_seq, bad=1,
                           last_bad_seq=signed.first_bad_seq, last_problem=signed.problem)
        return report


def event_log(ctx: Context, card_no: str | None, since: datetime | None,
              until: datetime | None, run_id: str | None = None) -> Iterator[EventRecord]:
    """Events in seq order, streamed from one read transaction; a damaged one is listed as stored."""
    with ctx.read() as tx:
        yield from tx.trail.events(card_no, since, until, run_id=run_id)


def run_state(ctx: Context, run_id: str) -> bool:
    """Whether batch run ``run_id`` finished (it has its ``batch.end``); NotFound when the trail
    holds no such run (docs/domain.md, "Batch provenance")."""
    from ..domain.events import Action
    from ..errors import NotFound

    with ctx.read() as tx:
        found = tx.trail.run_actions(run_id)
    if not found:
        raise NotFound(_("no batch run {run} in the audit trail").format(run=run_id))
    return Action.BATCH_END.value in found


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
    the file is removed and the report counts every bad event, naming the first and last. The
    header carries the newest signed head in the range; with ``signer`` (the signing host) the
    end line is signed too.
    """
    from ..storage import audit_walk as walker
    from ..storage.audit import GENESIS
    from ..storage.audit_export import ExportWriter, Header, atomic_output

    with ctx.read() as tx:
        trail = tx.trail
        head = trail.stored_head()
        if head is None:  # nothing to export against; the walk still counts what else is wrong
            walk = walker.ChainWalk(ctx.keys.audit_key, from_seq, trail.stored_hash(from_seq - 1) or GENESIS)
            elsewhere = trail.hash_finder()
            for record in trail.records(from_seq, to_seq, batch):
                walker.take(walk, record, elsewhere)
            walker.walk_to_head(walk, None)
            return ExportResult(0, from_seq, walk.next_seq - 1, walk.prev, walk.report())
        head_seq, head_hash = head
        last = _export_range(from_seq, to_seq, head_seq)
        prev = GENESIS if from_seq == 1 else trail.stored_hash(from_seq - 1)
        if prev is None:
            missing = _("event {seq}, which the export would follow, is missing: deleted").format(seq=from_seq - 1)
            return ExportResult(0, from_seq, last, GENESIS, ChainReport(
                0, False, missing, from_seq - 1, bad=1, last_bad_seq=from_seq - 1, last_problem=missing))
        from ..storage.signing import key_id, signed_head_record, signing_time

        # the head of the key this host verifies with, if it knows one; else the newest of any
        public = signer.public if signer is not None else ctx.keys.public_key
        kid = key_id(public) if public else None
        unmatched = trail.first_unmatched(kid)
        if unmatched is not None:
            seq, signed_at = unmatched
            rewritten = _("signed head {seq} (signed {at}) no longer matches the trail: it was rewritten").format(
                seq=seq, at=signing_time(signed_at).isoformat())
            return ExportResult(0, from_seq, last, GENESIS, ChainReport(
                0, False, rewritten, seq, bad=1, last_bad_seq=seq, last_problem=rewritten))
        signed = trail.latest_signed(from_seq - 1, last, kid)
        header = Header(ctx.keys.fingerprint, ctx.db.display, from_seq, last, prev, ctx.now().isoformat(),
                        ctx.settings.operator, ctx.settings.os_user,
                        signed_head_record(signed) if signed is not None else None)
        walk = walker.ChainWalk(ctx.keys.audit_key, from_seq, prev)
        elsewhere = trail.hash_finder()
        writer = None
        try:
            with atomic_output(target, force, ctx.settings.protected_files()) as out:
                writer = ExportWriter(out, ctx.keys.audit_key, header, signer)
                for record in trail.records(from_seq, last, batch):
                    # past the first bad event nothing more is written, but the walk goes on
                    # to count every bad event the refusal names
                    if walker.take(walk, record, elsewhere) and not walk.bad:
                        writer.event(record)
                walker.walk_to_head(walk, head, last)
                if walk.bad:
                    raise _ChainStop(walk.report())
                writer.end(last, walk.prev)
        except _ChainStop as stop:
            return ExportResult(writer.count if writer else 0, from_seq, last, walk.prev, stop.report)
    return ExportResult(writer.count, from_seq, last, walk.prev)


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

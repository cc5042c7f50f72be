"""audit: verify the hash chain, list events, export it for retention and verify an export."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from ..domain import reasons
from ..domain.identity import parse_card_no
from ..domain.model import iso
from ..domain.roles import Role
from ..errors import ChainBroken, InvalidInput
from ..i18n import N_, _
from ..render.formats import OutputFormat, emit
from ..render.tables import result_table
from .common import App, Runtime, edge, examples, message, parse_time, runtime, warn
from .options import OutputOpt

PublicKeyOpt = Annotated[str | None, typer.Option(
    "--public-key", help=N_("The public signing key (64 hex digits, or a file holding them) to check signatures "
                            "with; default: the one in the key file."), show_default=False)]

audit_app = App(help=N_("The append-only, hash-chained audit trail."), no_args_is_help=True,
                epilog=examples("cardctl audit log --card A10000001", "cardctl audit verify"))


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


@audit_app.command("verify", epilog=examples(
    "cardctl audit verify --anchor 1520:3f9a0c4e2b7d81aa",
    "cardctl --key-file cardctl.key audit verify --file audit-2026-10.jsonl.gz audit-2026-11.jsonl.gz"))
@edge
def verify(
    ctx: typer.Context,
    more_files: Annotated[list[str] | None, typer.Argument(
        metavar="[FILE]...", help=N_("More export files, after --file (e.g. a shell glob)."),
        show_default=False)] = None,
    file: Annotated[list[str] | None, typer.Option(
        "--file", help=N_("Verify this export file instead of the database; needs only the key file. "
                       "Repeat it or list more files after it, in any order; - reads standard input."),
        show_default=False)] = None,
    anchor: Annotated[list[str] | None, typer.Option(
        "--anchor", help=N_("SEQ:HASH (16+ hex) printed by an earlier verify; proves no newer event was cut off."),
        show_default=False)] = None,
    public_key: PublicKeyOpt = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Check the whole chain; name the first event that was edited, deleted or reordered (exit 6).

    Prints the head as SEQ:HASH; keep it outside the database (a report, a ticket) and pass
    it back later with --anchor to prove the newest events were not removed.

    With --file it checks files written by 'audit export' instead, without opening the
    database: each event's hash, each file's header and end line (a file cut short fails),
    and that each file continues the one before it. A wrong key file exits 1, a file that is
    no export exits 2, anything edited, deleted, reordered, cut or damaged exits 6.

    With the public signing key (in a staff or auditor key file, or --public-key) it also
    checks the signed heads and export signatures, which only the signing host can make: a
    rewrite by someone holding every HMAC key is named at the first signed head it changed.
    """
    anchors = [parse_anchor(a) for a in anchor or []]
    if file or more_files:
        if not file:
            raise InvalidInput(_("FILE arguments need --file (cardctl audit verify --file FILE...)"))
        verify_files([*file, *(more_files or [])], anchors, runtime(ctx), output, public_key)
        return
    from ..services.audit import verify_chain
    from ..storage.signing import public_key_for

    ctx_ = runtime(ctx).context(role=Role.AUDITOR)
    report = verify_chain(ctx_, anchors, public_key_for(ctx_.settings, ctx_.keys, public_key))
    head = f"{report.checked}:{(report.head_hash or '')[:16]}"
    if output is not OutputFormat.TABLE:
        emit([{"ok": report.ok, "checked": report.checked, "problem": report.problem,
               "first_bad_seq": report.first_bad_seq, "head": head, **_bad_fields(report),
               "signed_seq": report.signed_seq, "signature_key": report.signature_key}], output)
    if not report.ok:
        raise ChainBroken(_("audit chain broken: {problem}").format(problem=_all_bad(report)))
    if output is OutputFormat.TABLE:
        message(_("audit chain intact: {count} event(s) verified; head {head}").format(count=report.checked, head=head))
        message(signature_note(report.signature_key, report.signed_seq, report.checked))


def signature_note(key: str | None, signed_seq: int | None, head_seq: int) -> str:
    """One line on what the signatures cover (docs/security.md, "Signed heads")."""
    if key is None:
        return _("signatures not checked: no public key (a staff or auditor key file carries it, or give "
                 "--public-key)")
    if signed_seq is None:
        return _("nothing signed by key {key} yet: the audit key alone protects the trail; run 'cardctl audit "
                 "sign' on the signing host").format(key=key)
    if signed_seq >= head_seq:
        return _("signed by key {key} up to the head, event {seq}").format(key=key, seq=signed_seq)
    return _("signed by key {key} up to event {seq}; events {first}-{last} are not signed yet").format(
        key=key, seq=signed_seq, first=signed_seq + 1, last=head_seq)


def verify_files(files: list[str], anchors: list[tuple[int, str]], rt: Runtime, output: OutputFormat,
                 public_key: str | None = None) -> None:
    """``audit verify --file``: no database, no role; the key file is what it takes."""
    from ..services.audit import verify_export_files

    report = verify_export_files(rt.settings(), files, anchors, public_key)
    head = f"{report.head_seq}:{report.head_hash[:16]}" if report.ok else None
    follows = f"{report.from_seq - 1}:{report.prev_hash[:16]}" if report.ok else None
    if output is not OutputFormat.TABLE:
        emit([{"ok": report.ok, "checked": report.checked, "problem": report.problem,
               "first_bad_seq": report.first_bad_seq, "head": head, "follows": follows,
               "files": report.files, "file": report.file, "line": report.line, **_bad_fields(report),
               "signed_seq": report.signed_seq, "signature_key": report.signature_key}], output)
    if not report.ok:
        raise ChainBroken(_("audit export broken: {problem}").format(problem=_all_bad(report)))
    if output is not OutputFormat.TABLE:
        return
    span = (_("seq {first}-{last}").format(first=report.from_seq, last=report.head_seq) if report.checked
            else _("no events after seq {seq}").format(seq=report.head_seq))
    message(_("audit export intact: {count} event(s) verified in {files} file(s), {span}; head {head}").format(
        count=report.checked, files=report.files, span=span, head=head))
    message(signature_note(report.signature_key, report.signed_seq, report.head_seq))
    if report.from_seq > 1 and not any(seq == report.from_seq - 1 for seq, _anchor in anchors):
        warn(_("it follows {follows}: verify it together with the export before it, or check that "
                  "this is the head noted from that export (--anchor {seq}:HASH)").format(
                      follows=follows, seq=report.from_seq - 1))


@audit_app.command("export", epilog=examples(
    "cardctl audit export audit-2026-11.jsonl.gz --from-seq 1521",
    "cardctl audit export - | gzip > audit.jsonl.gz"))
@edge
def export(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(
        help=N_("A new file (a name ending in .gz is compressed), or - for standard output."),
        show_default=False)],
    from_seq: Annotated[int, typer.Option(
        "--from-seq", min=1, help=N_("First event to export. For an incremental archive: the last seq "
                                  "of the previous export plus one."))] = 1,
    to_seq: Annotated[int | None, typer.Option(
        "--to-seq", min=0, help=N_("Last event to export; default the newest."), show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help=N_(
        "Replace FILE if it exists. Never the database, a key file or anything but a regular file."))] = False,
) -> None:
    """Write the audit trail to FILE as JSON lines that verify later, anywhere, with the key file alone.

    A header line (format, key fingerprint, range, the hash the range follows, export time),
    one line per event with every field its hash covers, and an end line with the count and
    the last SEQ:HASH. The file appears only when complete (written beside it, then
    renamed), mode 0600; it holds what the trail holds: masked ID numbers, never a PIN.
    An export of a chain that does not verify is refused (exit 6) and nothing is kept.
    Check it with 'cardctl audit verify --file FILE'.
    """
    from ..output_file import check_target
    from ..services.audit import export_trail
    from ..storage.signing import signer_if_present

    rt = runtime(ctx)
    check_target(file, force, rt.settings().protected_files())  # before any work; again when written
    ctx_ = rt.context(role=Role.AUDITOR)
    signer = signer_if_present(ctx_.settings)  # on the signing host the end line is signed too
    result = export_trail(ctx_, file, from_seq, to_seq, force, signer=signer)
    if result.broken is not None:
        kept = (_("what was printed stops without its end line, so it does not verify") if file == "-"
                else _("nothing was exported"))
        raise ChainBroken(_("audit chain broken: {problem}; {kept}").format(problem=_all_bad(result.broken), kept=kept))
    head = f"{result.to_seq}:{result.last_hash[:16]}"
    target = _("standard output") if file == "-" else file
    if result.count:
        message(_("exported {count} event(s), seq {first}-{last}, to {target}; "
                  "head {head} (the next export starts at --from-seq {next})").format(
                      count=result.count, first=result.from_seq, last=result.to_seq, target=target, head=head,
                      next=result.to_seq + 1))
    else:
        message(_("no events after seq {seq}: wrote an export of 0 events to {target}; head {head}").format(
            seq=result.to_seq, target=target, head=head))
    if signer is not None:
        message(_("signed with signing key {key}").format(key=signer.key_id))


@audit_app.command("sign", epilog=examples("cardctl audit sign", "cardctl audit sign -o json"))
@edge
def sign(ctx: typer.Context, output: OutputOpt = OutputFormat.TABLE) -> None:
    """Sign the chain head with the signing key, after verifying the chain since the last signed head.

    Runs on the signing host, which alone holds the signing key (CARDCTL_SIGNING_KEY, or
    the file beside the key file). A rewrite of the trail by anyone without that key no
    longer matches the signed head: 'audit verify' names it. The cron sweep
    'unlock --expired' signs too where CARDCTL_SIGNING_KEY is set.
    """
    from ..services.signing import sign_head
    from ..storage.signing import load_signer, signing_key_path

    ctx_ = runtime(ctx).context(role=Role.STAFF)
    result = sign_head(ctx_, load_signer(signing_key_path(ctx_.settings)))
    if output is not OutputFormat.TABLE:
        emit([{"seq": result.seq, "hash": result.hash, "signed_at": iso(result.signed_at), "key_id": result.key_id,
               "created": result.created}], output)
        return
    text = (_("signed head {seq}:{hash} with key {key}") if result.created
            else _("head {seq}:{hash} was signed already with key {key}"))
    message(text.format(seq=result.seq, hash=result.hash[:16], key=result.key_id))


def _bad_fields(report) -> dict:
    """How many events failed and the last of them, beside the first (``problem``, ``first_bad_seq``)."""
    return {"bad": report.bad, "last_bad_seq": report.last_bad_seq, "last_problem": report.last_problem}


def _all_bad(report) -> str:
    """The first problem; with more than one bad event, their count and the last as well, so
    that one poisoned event cannot hide what was done further down."""
    if report.bad <= 1 or report.last_problem is None or report.last_problem == report.problem:
        return report.problem
    return _("{count} bad events from seq {first} to {last}; first: {problem}; last: {last_problem}").format(
        count=report.bad, first=report.first_bad_seq, last=report.last_bad_seq, problem=report.problem,
        last_problem=report.last_problem)


def parse_anchor(raw: str) -> tuple[int, str]:
    seq, _colon, prefix = raw.strip().partition(":")
    if not (seq.isascii() and seq.isdigit() and len(prefix) >= 16
            and all(c in "0123456789abcdefABCDEF" for c in prefix)):
        raise InvalidInput(_("--anchor {value!r}: expected SEQ:HASH with at least 16 hex characters").format(value=raw))
    return int(seq), prefix


def _event_record(event) -> dict:
    """One event as ``audit log`` shows it. A field damaged behind cardctl's back is shown as stored
    and named under ``damaged``, so the listing goes on (``audit verify`` says what it means)."""
    detail = event.detail
    if detail is not None and "detail" not in event.damaged:
        try:
            detail = json.loads(detail)
        except (ValueError, RecursionError):  # not what cardctl wrote: shown as the text it is
            damaged = (*event.damaged, "detail")
            return {**_event_fields(event), "detail": detail, "damaged": ", ".join(damaged)}
    record = {**_event_fields(event), "detail": detail}
    if event.damaged:
        record["damaged"] = ", ".join(event.damaged)
    return record


def _event_fields(event) -> dict:
    at = iso(event.at) if isinstance(event.at, datetime) else event.at
    return {"seq": event.seq, "at": at, "actor": event.actor, "operator": event.operator,
            "os_user": event.os_user, "channel": event.channel, "terminal": event.terminal, "run_id": event.run_id,
            "action": event.action, "card_no": event.card_no,
            "outcome": event.outcome, "reason": reasons.worded(event.reason, translate=False)}


@audit_app.command("log", epilog=examples(
    "cardctl audit log --since 2026-11-01 --until 2026-12-01 -o jsonl > november.jsonl",
    "cardctl audit log --card A10000001 --since 2026-11-01",
    "cardctl audit log --run 20261206T051500Z-3f9a2c1b -o csv > run.csv    # one batch run's events"))
@edge
def log(
    ctx: typer.Context,
    card: Annotated[str | None, typer.Option("--card", help=N_("Only this card's events."))] = None,
    since: Annotated[str | None, typer.Option("--since", help=N_("ISO-8601 time (local if no zone)."))] = None,
    until: Annotated[str | None, typer.Option("--until", help=N_("ISO-8601 time, exclusive."))] = None,
    run: Annotated[str | None, typer.Option("--run", help=N_(
        "Only this batch run's events (the run id import and unlock print), from batch.start to batch.end."),
        show_default=False)] = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """List audit events in order.

    With --run, the events of one batch run (import, unlock --from, unlock of several cards, a
    sweep that ended something): batch.start, each card's events, batch.end with the input's
    SHA-256 (as sha256sum prints it), its rows and the count per result. A run with no
    batch.end was cut short (or is still running) and is said to be unfinished. An unknown run
    exits 5; a malformed run id exits 2.
    """
    from ..services.audit import event_log, run_state

    run_id = None
    if run is not None:
        from ..services.runs import parse_run_id

        run_id = parse_run_id(run)
    ctx_ = runtime(ctx).context(role=Role.AUDITOR)
    finished = run_state(ctx_, run_id) if run_id is not None else True
    events = event_log(ctx_, parse_card_no(card) if card else None,
                       parse_time(since, "--since", ctx_.settings.timezone),
                       parse_time(until, "--until", ctx_.settings.timezone), run_id)
    damaged: list[int | None] = []

    def records():
        for event in events:
            record = _event_record(event)
            if "damaged" in record:
                damaged.append(event.seq)
            yield record

    emit(records(), output, table=lambda rows: result_table(_flag_column(rows), _("Audit events")))
    if not finished:  # a start with no end: shown as such, never as a run that completed
        warn(_("run {run} is unfinished: it has a batch.start and no batch.end (cut short, or still "
               "running)").format(run=run_id))
    if damaged:  # the listing shows them as stored; judging them is audit verify's job
        warn(_("{count} event(s) damaged outside cardctl, listed as stored (first: seq {seq}); run 'cardctl "
               "audit verify'").format(count=len(damaged), seq=damaged[0]))


def _flag_column(rows) -> list[dict]:
    """The table's columns come from its first row: a damaged event further down gets its column."""
    rows = list(rows)
    if any("damaged" in row for row in rows):
        rows = [{**row, "damaged": row.get("damaged", "")} for row in rows]
    return rows

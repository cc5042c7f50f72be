"""unlock: one card, a list, or the cron sweep of expired locks."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Iterable, Iterator

import typer

from ..domain.identity import parse_id_number
from ..domain.model import LockKind
from ..domain.names import parse_reason
from ..domain.roles import Role
from ..errors import BatchFailed, InvalidInput, RowFailed
from ..i18n import N_, _, localize
from ..render.formats import OutputFormat
from ..render.tables import result_table
from . import progress
from ..config import SYSTEM_CHANNEL
from .common import check_channel, edge, examples, message, runtime
from .confirm import at_terminal, confirm
from .idnumbers import id_numbers, refuse_stdin_twice
from .runs import run_message
from .options import AgentIdOpt, AgentNameOpt, ChannelOpt, IdStdinOpt, OutputOpt, YesOpt


def register(app: typer.Typer) -> None:
    app.command("unlock", epilog=examples(
        'cardctl status --locked -o jsonl | cardctl unlock --from - --reason "terminal fault 2026-11-20"',
        "cardctl unlock --expired -o jsonl        # cron",
        "cardctl unlock --from cleared.txt --reason \"terminal fault\"    # stderr: run 20261206T051500Z-3f9a2c1b ...",
        "cardctl unlock A10000001 --kind admin --reason \"case 2026-118 closed\"",
        'printf \'110105201605010126\\n11010519491231002X\\n\' | cardctl unlock M00000001 '
        '--reason "guardian at counter" --id-stdin --agent-name 王芳',
        'cardctl unlock A10000001 --reason "holder verified at counter" --id-stdin    # asks for the ID number',
        'cardctl unlock A10000001 --reason "counter visit" --id-stdin    # ends an escalated PIN lock too',
    ))(edge(unlock))


def unlock(
    ctx: typer.Context,
    card_nos: Annotated[list[str] | None, typer.Argument(help=N_("Card numbers."), show_default=False)] = None,
    from_file: Annotated[str | None, typer.Option(
        "--from",
        help=N_("File (or - for stdin) of card numbers: one per line, or CSV / JSON lines with card_no."))] = None,
    expired: Annotated[bool, typer.Option("--expired", help=N_(
        "Cron: end every PIN lock past its end time and record lapsed temporary loss reports."))] = False,
    reason: Annotated[str | None, typer.Option("--reason", help=N_("Why (required except with --expired)."))] = None,
    kind: Annotated[LockKind, typer.Option(  # arrears is parsed only to say who lifts it: pay-arrears
        "--kind", help=N_("pin (default) or admin; arrears only via pay-arrears."), case_sensitive=False,
        metavar="[pin|admin]", autocompletion=lambda: [LockKind.PIN.value, LockKind.ADMIN.value])] = LockKind.PIN,
    id_number: Annotated[str | None, typer.Option(
        "--id-number", help=N_("Holder's ID number, checked against each card (counter unlock)."))] = None,
    id_stdin: IdStdinOpt = False,
    agent_id: AgentIdOpt = None,
    agent_name: AgentNameOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help=N_(
        "Say what would happen; change nothing (the database is opened read-only)."))] = False,
    yes: YesOpt = False,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Clear PIN locks (admin locks with --kind admin; never arrears locks).

    One result row per card: unlocked, not locked, not found, refused or invalid.
    Idempotent. Exit 0 when nothing failed. One card named exits as any command on one card:
    5 not found, 6 refused, 2 invalid. A batch (several cards, --from) exits 7 when some cards
    were not found, refused or invalid.

    With --id-number (at a counter) each card must be that holder's, and a minor's card
    (under the region's minor age) needs a guardian: --agent-id-number and --agent-name.
    An agent acts for that one holder on every card named; both ID numbers are recorded.

    --dry-run (also with --expired) writes nothing: not an unlock, not an expiry, not an event.
    At a terminal, lifting admin locks of more than one card shows them and asks y/N first
    (--yes skips the question). If standard output closes early (| head), every card is still
    processed, the rest of the output is discarded and stderr says so.
    """
    rt = runtime(ctx)
    if expired:
        if card_nos or from_file:
            raise InvalidInput(_("--expired takes no card numbers and no --from"))
        if channel is not None:
            check_channel(channel)  # a channel nobody may name is refused as such
            raise InvalidInput(_("--expired is cardctl's own sweep, recorded on channel system; it takes no --channel"))
        return _expire(rt, output, dry_run)
    if not card_nos and not from_file:
        raise InvalidInput(_("name card numbers, --from FILE, or --expired"))
    if not reason or not reason.strip():
        raise InvalidInput(_("--reason is required to unlock"))
    reason = parse_reason(reason)  # it goes into the trail and onto screens: one limit for every reason
    refuse_stdin_twice(id_stdin, from_file)
    id_number, agent_id = id_numbers(id_number, agent_id, agent_name, id_stdin, holder_needed=False)
    # admin locks are an admin's to lift; PIN locks a counter's
    ctx_ = rt.context(channel, Role.ADMIN if kind is LockKind.ADMIN else Role.STAFF, read_only=dry_run)
    from ..services.unlock import FAILED, UnlockRequest, unlock_cards

    today = ctx_.now().date()
    agent = None
    if agent_id is not None or agent_name is not None:  # parse_agent loads the ORM: not for batches without one
        from .lifecycle import parse_agent

        agent = parse_agent(agent_id, agent_name, today)
    request = UnlockRequest(kind, reason.strip(), parse_id_number(id_number, today) if id_number else None,
                            dry_run, agent)
    counts = {"failed": 0, "total": 0, "last": None}
    run = _batch_run(ctx_, card_nos or [], from_file, dry_run)
    named: Iterable[str] = _card_numbers(card_nos or [], from_file, counts, run.digest if run else None)
    if kind is LockKind.ADMIN and not dry_run and not yes and at_terminal():
        named = list(named)  # read once: shown in the question, then unlocked
        _confirm_admin_unlock(ctx_, named, request)
    results = unlock_cards(ctx_, named, request, run)
    results = run.count(results) if run else results
    show_bar, total = progress.wanted(output), None
    if show_bar:  # lines, not card numbers: a CSV header or blank lines make the total an estimate
        lines = progress.count_lines(from_file) if from_file else 0
        total = None if lines is None else len(card_nos or []) + lines

    def records(items) -> Iterator[dict]:
        for item in items:
            counts["total"] += 1
            counts["failed"] += item.result in FAILED
            counts["last"] = item
            yield item.record()

    with progress.tracked(results, localize(_("unlocking")), total, show_bar) as tracked:
        progress.emit_all(records(tracked), output, table=lambda rows: result_table(rows))
    if run is not None:
        run.end()
        run_message(run)
    if counts["failed"] and not from_file and len(card_nos or []) == 1:
        # one card named is no batch: it exits as any single-card command does for the same
        # condition (a holder mismatch 6, as activate; an unknown card 5, as status)
        raise RowFailed(counts["last"])
    if counts["failed"]:
        raise BatchFailed(_("{failed} of {total} card(s) failed").format(
            failed=counts["failed"], total=counts["total"]))


def _confirm_admin_unlock(ctx_, named: list[str], request) -> None:
    """Lifting admin locks (set by hand, for a reason) of more than one card: show them and ask."""
    from dataclasses import replace

    from ..services.unlock import WOULD_UNLOCK, unlock_cards

    would = [item.card_no for item in unlock_cards(ctx_, named, replace(request, dry_run=True))
             if item.result == WOULD_UNLOCK]
    if len(would) > 1:
        shown = ", ".join(would[:10]) + (", …" if len(would) > 10 else "")
        confirm([_("the admin locks of {count} card(s) will be lifted: {cards}").format(count=len(would), cards=shown),
                 _("reason: {reason}").format(reason=request.reason)], yes=False)


def _batch_run(ctx_, card_nos: list[str], from_file: str | None, dry_run: bool):
    """A batch (--from, or several cards named) is a run in the trail; one card named is no
    batch, and a dry run writes nothing, not even that (docs/domain.md, "Batch provenance")."""
    if dry_run or (from_file is None and len(card_nos) < 2):
        return None
    from ..services.runs import Run

    if from_file is None:
        return Run(ctx_, "unlock", rows=len(card_nos))
    return Run(ctx_, "unlock --from", from_file)


def _card_numbers(args: list[str], from_file: str | None, counts: dict, digest=None) -> Iterable[str]:
    yield from args
    if from_file:
        from ..sources import read_card_numbers

        for row in read_card_numbers(from_file, digest):
            if row.fields is None or not row.fields.get("card_no"):
                yield f"(line {row.line})"  # reported as invalid, like any other bad entry
            else:
                yield row.fields["card_no"]


def sweep_title() -> str:
    return _("PIN locks ended, loss reports lapsed")


def _expire(rt, output: OutputFormat, dry_run: bool = False) -> None:
    from ..services.reads import count_due

    lapsed = 0
    show_bar = progress.wanted(output)  # cron never asks: its output is not a terminal
    rt.channel = SYSTEM_CHANNEL  # set here, never from the command line
    # What is due is counted in a read transaction first, on the sqlite3 start-up path
    # (storage/lite.py) where it can serve: with nothing due the sweep takes no write lock, so it
    # is never held up by a writer, and cron's every-few-minutes run costs no more than the count.
    # A dry run lists what is due from a database opened read-only: it never reaches the sweep.
    counting = rt.quick_context(Role.STAFF, read_only=dry_run) or rt.context(role=Role.STAFF, read_only=dry_run)
    total = count_due(counting)
    items, run = iter(()), None
    if total:
        from ..services.unlock import due_now, expire_due

        ctx_ = rt.context(role=Role.STAFF, read_only=dry_run)
        if dry_run:
            items = due_now(ctx_)
        else:  # a sweep that ends something is a run; an idle one writes nothing at all
            from ..services.runs import Run

            run = Run(ctx_, "unlock --expired", rows=total)
            items = run.count(expire_due(ctx_, run=run))

    def records(items) -> Iterator[dict]:
        nonlocal lapsed
        for item in items:
            lapsed += item.result in ("lapsed", "would lapse")
            yield item.record()

    title = _("PIN locks that would end, loss reports that would lapse (dry run)") if dry_run else sweep_title()
    with progress.tracked(items, localize(_("expiring")), total, show_bar) as tracked:
        count = progress.emit_all(records(tracked), output, table=lambda rows: result_table(rows, title))
    if output is OutputFormat.TABLE or not sys.stdout.isatty():
        if dry_run:
            ended = _("dry run, nothing changed: {ended} expired lock(s) would be recorded as ended; {lapsed} "
                      "temporary loss report(s) as lapsed")
        else:
            ended = (_("{ended} expired lock(s) recorded as ended; {lapsed} temporary loss report(s) recorded as "
                       "lapsed") if lapsed else _("{ended} expired lock(s) recorded as ended"))
        message(ended.format(ended=count - lapsed, lapsed=lapsed))
    if run is not None:
        run.end()
        if output is OutputFormat.TABLE or not sys.stdout.isatty():
            run_message(run)
    if os.environ.get("CARDCTL_SIGNING_KEY") and not dry_run:  # the signing host: sign the head at every sweep
        _sign_head(rt)


def _sign_head(rt) -> None:
    """Sign the chain head if it moved since the last signed head (docs/security.md, "Signed heads")."""
    from ..services.signing import sign_head, unsigned_since
    from ..storage.signing import load_signer, signing_key_path

    ctx_ = rt.context(role=Role.STAFF)
    signer = load_signer(signing_key_path(ctx_.settings))
    if unsigned_since(ctx_, signer.key_id):
        sign_head(ctx_, signer)

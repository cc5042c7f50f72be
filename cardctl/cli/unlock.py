"""unlock: one card, a list, or the cron sweep of expired locks."""

from __future__ import annotations

import sys
from typing import Annotated, Iterable, Iterator

import typer

from ..domain.identity import parse_id_number
from ..domain.model import LockKind
from ..domain.names import MAX_REASON, parse_text
from ..domain.roles import Role
from ..errors import BatchFailed, InvalidInput
from ..i18n import N_, _, localize
from ..render.formats import OutputFormat, emit
from ..render.tables import result_table
from . import progress
from .common import AgentIdOpt, AgentNameOpt, ChannelOpt, OutputOpt, edge, examples, message, runtime
from .idnumbers import IdStdinOpt, id_numbers, refuse_stdin_twice


def register(app: typer.Typer) -> None:
    app.command("unlock", epilog=examples(
        'cardctl status --locked -o jsonl | cardctl unlock --from - --reason "terminal fault 2026-11-20"',
        "cardctl unlock --expired -o jsonl        # cron",
        "cardctl unlock A10000001 --kind admin --reason \"case 2026-118 closed\"",
        'printf \'110105201605010126\\n11010519491231002X\\n\' | cardctl unlock M00000001 '
        '--reason "guardian at counter" --id-stdin --agent-name 王芳',
        'cardctl unlock A10000001 --reason "holder verified at counter" --id-stdin    # asks for the ID number',
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
    kind: Annotated[LockKind, typer.Option("--kind", help=N_("pin (default) or admin; arrears only via pay-arrears."),
                                           case_sensitive=False)] = LockKind.PIN,
    id_number: Annotated[str | None, typer.Option(
        "--id-number", help=N_("Holder's ID number, checked against each card (counter unlock)."))] = None,
    id_stdin: IdStdinOpt = False,
    agent_id: AgentIdOpt = None,
    agent_name: AgentNameOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help=N_("Say what would happen; change nothing."))] = False,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Clear PIN locks (admin locks with --kind admin; never arrears locks).

    One result row per card: unlocked, not locked, not found, refused or invalid.
    Idempotent. Exit 0 when nothing failed, 7 when some cards were not found, refused or invalid.

    With --id-number (at a counter) each card must be that holder's, and a minor's card
    (under the region's minor age) needs a guardian: --agent-id-number and --agent-name.
    An agent acts for that one holder on every card named; both ID numbers are recorded.
    """
    rt = runtime(ctx)
    if expired:
        if card_nos or from_file:
            raise InvalidInput(_("--expired takes no card numbers and no --from"))
        return _expire(rt, channel or "system", output)
    if not card_nos and not from_file:
        raise InvalidInput(_("name card numbers, --from FILE, or --expired"))
    if not reason or not reason.strip():
        raise InvalidInput(_("--reason is required to unlock"))
    reason = parse_text(reason, "--reason", MAX_REASON)  # it goes into the trail and onto screens
    refuse_stdin_twice(id_stdin, from_file)
    id_number, agent_id = id_numbers(id_number, agent_id, agent_name, id_stdin, holder_needed=False)
    # admin locks are an admin's to lift; PIN locks a counter's
    ctx_ = rt.context(channel, Role.ADMIN if kind is LockKind.ADMIN else Role.STAFF)
    from ..services.unlock import FAILED, UnlockRequest, unlock_cards

    today = ctx_.now().date()
    agent = None
    if agent_id is not None or agent_name is not None:  # parse_agent loads the ORM: not for batches without one
        from .lifecycle import parse_agent

        agent = parse_agent(agent_id, agent_name, today)
    request = UnlockRequest(kind, reason.strip(), parse_id_number(id_number, today) if id_number else None,
                            dry_run, agent)
    counts = {"failed": 0, "total": 0}
    results = unlock_cards(ctx_, _card_numbers(card_nos or [], from_file, counts), request)
    show_bar, total = progress.wanted(output), None
    if show_bar:  # lines, not card numbers: a CSV header or blank lines make the total an estimate
        lines = progress.count_lines(from_file) if from_file else 0
        total = None if lines is None else len(card_nos or []) + lines

    def records(items) -> Iterator[dict]:
        for item in items:
            counts["total"] += 1
            counts["failed"] += item.result in FAILED
            yield item.record()

    with progress.tracked(results, localize(_("unlocking")), total, show_bar) as tracked:
        emit(records(tracked), output, table=lambda rows: result_table(rows))
    if counts["failed"]:
        raise BatchFailed(_("{failed} of {total} card(s) failed").format(
            failed=counts["failed"], total=counts["total"]))


def _card_numbers(args: list[str], from_file: str | None, counts: dict) -> Iterable[str]:
    yield from args
    if from_file:
        from ..sources import read_card_numbers

        for row in read_card_numbers(from_file):
            if row.fields is None or not row.fields.get("card_no"):
                yield f"(line {row.line})"  # reported as invalid, like any other bad entry
            else:
                yield row.fields["card_no"]


def _expire(rt, channel: str, output: OutputFormat) -> None:
    from ..services.reads import count_due
    from ..storage.lite import Unavailable

    lapsed = 0
    show_bar = progress.wanted(output)  # cron never asks: its output is not a terminal
    # What is due is counted in a read transaction first, on the sqlite3 start-up path
    # (storage/lite.py) where it can serve: with nothing due the sweep takes no write lock, so it
    # is never held up by a writer, and cron's every-few-minutes run costs no more than the count.
    quick, total = rt.quick_context(Role.STAFF, channel), None
    if quick is not None:
        try:
            total = count_due(quick)
        except Unavailable:
            pass
    items = iter(())
    if total != 0:
        from ..services.unlock import expire_due

        ctx_ = rt.context(channel, Role.STAFF)
        if total is None:
            total = count_due(ctx_)
        if total:
            items = expire_due(ctx_)

    def records(items) -> Iterator[dict]:
        nonlocal lapsed
        for item in items:
            lapsed += item.result == "lapsed"
            yield item.record()

    with progress.tracked(items, localize(_("expiring")), total, show_bar) as tracked:
        count = emit(records(tracked), output,
                     table=lambda rows: result_table(rows, _("PIN locks ended, loss reports lapsed")))
    if output is OutputFormat.TABLE or not sys.stdout.isatty():
        ended = (_("{ended} expired lock(s) recorded as ended; {lapsed} temporary loss report(s) recorded as lapsed")
                 if lapsed else _("{ended} expired lock(s) recorded as ended"))
        message(ended.format(ended=count - lapsed, lapsed=lapsed))

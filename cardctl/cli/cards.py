"""Commands that bring cards into being: init, issue, import, activate."""

from __future__ import annotations

from typing import Annotated, Iterator

import typer

from ..domain.identity import parse_card_no, parse_id_number
from ..domain.model import ItemResult
from ..domain.roles import Role
from ..errors import BatchFailed, row_failed
from ..i18n import N_, _, localize, term
from ..render.formats import OutputFormat, emit
from . import progress
from .common import edge, examples, message, read_pins, runtime, warn
from .runs import run_message
from .idnumbers import id_numbers
from .options import (AgentIdOpt, AgentNameOpt, CardArg, ChannelOpt, IdNumberOpt, IdStdinOpt, OutputOpt,
                      PinStdinOpt)

IMPORT_CHUNK = 2000


def register(app: typer.Typer) -> None:
    app.command("init", epilog=examples("cardctl --db cards.db --key-file cards.key init"))(edge(init))
    app.command("issue", epilog=examples(
        "printf '440305197001010019\\n' | cardctl issue A10000002 --name 王芳 --region 440305 --id-stdin "
        "--unit 91350100M000100Y43",
        "cardctl issue A10000001 --name 张伟 --region 110105    # asks for the ID number"))(edge(issue))
    app.command("import", epilog=examples(
        "cardctl import examples/cards.csv -o jsonl > import-failures.jsonl",
        "cardctl import examples/cards.csv    # stderr: run 20261206T051500Z-3f9a2c1b ...",
        "cardctl audit log --run 20261206T051500Z-3f9a2c1b -o jsonl | tail -1    "
        "# batch.end: input_sha256 is what sha256sum examples/cards.csv prints"))(edge(import_cards))
    app.command("activate", epilog=examples(
        "printf '11010519491231002X\\n583920\\n' | cardctl activate A10000001 --id-stdin --pin-stdin",
        "cardctl activate A10000001    # asks for the ID number, then the PIN twice"))(edge(activate))


def init(ctx: typer.Context, output: OutputOpt = OutputFormat.TABLE) -> None:
    """Create or upgrade the database schema, create the key file, seed the default policy.

    Safe to run twice.
    """
    from ..services.setup import init_database

    rt = runtime(ctx)
    report = init_database(rt.settings(), rt.clock)
    if output is OutputFormat.TABLE:
        message(_("database {db}: schema {before} -> {after}").format(
            db=report.database, before=report.revision_before or term("none"), after=report.revision_after))
        (warn if report.key_created else message)(  # a new key to back up is said even with -q
            (_("key file {path} created (mode 0600; back it up!)") if report.key_created
             else _("key file {path} in use")).format(path=report.key_file))
        if report.signing_key:  # a new signing key to move is said even with -q
            warn(_("signing key {path} created (mode 0600), public key {key}: move it to the signing host "
                   "(README, \"Files and keys\")").format(path=report.signing_key, key=report.signing_key_id))
        return
    emit([report.record()], output)


def issue(
    ctx: typer.Context,
    card_no: Annotated[str, typer.Argument(help=N_("9 characters, 0-9 and A-Z."))],
    name: Annotated[str, typer.Option("--name", help=N_("Holder's name."))],
    region: Annotated[str, typer.Option("--region", help=N_("6-digit area code of the issuing office."))],
    id_number: Annotated[str | None, typer.Option(
        "--id-number", help=N_("Holder's 18-character resident ID number."))] = None,
    id_stdin: IdStdinOpt = False,
    insurance_type: Annotated[str, typer.Option("--type", help=N_("employee or resident."),
                                                metavar="[employee|resident]",
                                                autocompletion=lambda: ["employee", "resident"])] = "employee",
    unit: Annotated[str | None, typer.Option("--unit", help=N_("Employer's unified social credit code."))] = None,
    issuer: Annotated[str, typer.Option(
        "--issuer", help=N_("social-security or the issuing bank's name."))] = "social-security",
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Register a card in status pending; it must be activated before use.

    Issuing a card again exactly as it is on record (same holder and details) changes nothing
    and exits 0, as 'import' counts such a row; a card number or holder already taken
    otherwise is refused (exit 6).
    """
    from ..services.cards import issue_card, parse_card_input

    ctx_ = runtime(ctx).context(channel, Role.STAFF)
    id_number, _agent = id_numbers(id_number, None, None, id_stdin)
    card = parse_card_input({"card_no": card_no, "name": name, "id_number": id_number, "region": region,
                             "type": insurance_type, "unit": unit, "issuer": issuer}, ctx_.now().date())
    issued = issue_card(ctx_, card) == "issued"
    _report({"card_no": card.card_no, "result": "issued" if issued else "already issued", "holder_name": card.name,
             "id_number": card.id_number.masked, "region": card.region, "status": "pending"}, output,
            (_("card {card} issued to {name} ({id_number}); status pending") if issued
             else _("card {card} is already issued to {name} ({id_number}) as given; nothing changed")).format(
                card=card.card_no, name=card.name, id_number=card.id_number.masked))


def import_cards(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help=N_("CSV with a header, or JSON lines; - for stdin."))],
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Register many cards from a file, streaming, one transaction per chunk.

    Columns: card_no, name, id_number, region, type, unit (optional: issuer, pin_hash).
    Rows that fail are reported with their line number; the rest go in; exit 7 if any failed.
    A row already on record as it is (same card, holder and details) is "already issued", not
    a failure, so a file imported again after a crash finishes with exit 0.
    The import is one run in the audit trail (batch.start, its cards' events, batch.end with
    the file's SHA-256 and the count per result); stderr names it: see 'cardctl audit log --run'.
    If standard output closes early (| head), every row is still imported, the rest of the
    output is discarded and stderr says so; the exit code is that of the whole file.
    """
    from ..services.cards import import_rows
    from ..services.runs import Run

    ctx_ = runtime(ctx).context(channel, Role.STAFF)
    summary = {"issued": 0, "already issued": 0, "failed": 0}
    show_bar = progress.wanted(output)
    lines = progress.count_lines(file) if show_bar else None
    run = Run(ctx_, "import", file)
    with progress.tracked(run.count(import_rows(ctx_, file, chunk=IMPORT_CHUNK, run=run)), localize(_("importing")),
                          lines - 1 if lines else None, show_bar) as results:
        failures = _failures_only(results, summary) if output is OutputFormat.TABLE else _counted(results, summary)
        progress.emit_all(failures, output, table=lambda rows: _print_failures(rows))
    run.end()
    done = (_("imported {issued} card(s); {again} already issued; {failed} row(s) failed")
            if summary["already issued"] else _("imported {issued} card(s); {failed} row(s) failed"))
    message(done.format(issued=summary["issued"], again=summary["already issued"], failed=summary["failed"]))
    run_message(run)
    if summary["failed"]:
        raise BatchFailed(_("{failed} row(s) of {file} were not imported").format(failed=summary["failed"], file=file))


def _counted(results: Iterator[ItemResult], summary: dict) -> Iterator[dict]:
    for item in results:  # a row fails as errors.EXIT_CODE says: "already issued" exits 0, so it does not
        summary["failed" if row_failed(item.result) else item.result] += 1
        yield item.record()


def _failures_only(results: Iterator[ItemResult], summary: dict) -> Iterator[dict]:
    for record in _counted(results, summary):
        if row_failed(record["result"]):
            yield record


def _print_failures(rows) -> int:
    count = 0
    for count, row in enumerate(rows, 1):
        warn(row["detail"])
    return count


def activate(
    ctx: typer.Context,
    card_no: CardArg,
    id_number: IdNumberOpt = None,
    id_stdin: IdStdinOpt = False,
    pin_stdin: PinStdinOpt = False,
    agent_id: AgentIdOpt = None,
    agent_name: AgentNameOpt = None,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Activate a pending card in person: identity checked, first PIN set (weak PINs refused).

    A minor's card is activated by a guardian (--agent-id-number and --agent-name).
    """
    from ..services.cards import activate as activate_card
    from .lifecycle import parse_agent

    ctx_ = runtime(ctx).context(channel, Role.STAFF)
    card = parse_card_no(card_no)
    today = ctx_.now().date()
    id_number, agent_id = id_numbers(id_number, agent_id, agent_name, id_stdin)
    person = parse_id_number(id_number, today)
    agent = parse_agent(agent_id, agent_name, today)
    (pin,) = read_pins(1, pin_stdin, (_("New PIN"),), confirm_new=True)
    activate_card(ctx_, card, person, pin, agent)
    _report({"card_no": card, "result": "activated", "status": "active"}, output,
            _("card {card} activated").format(card=card))


def _report(record: dict, output: OutputFormat, text: str) -> None:
    """A one-line confirmation in table mode (on stderr, as every confirmation), the record otherwise."""
    if output is OutputFormat.TABLE:
        message(text)
    else:
        emit([record], output)

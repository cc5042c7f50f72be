"""report: the auditor's report over a period, as tables, JSON, JSON lines, CSV or one HTML file."""

from __future__ import annotations

from typing import Annotated

import typer

from ..domain.roles import Role
from ..errors import InvalidInput
from ..i18n import N_, _, tr
from ..render.formats import OutputFormat, write_csv, write_jsonl
from ..services.report_sources import DEFAULT_MIN_CARDS  # a light module: the default --help shows
from .common import edge, examples, message, parse_time, runtime
from .options import AsOfOpt, OutputOpt, RegionOpt
from .status import parse_as_of, parse_region_option

TABLE_ROWS = 100  # rows of one section in a table; JSON, JSON lines and CSV carry them all
TITLES = {
    "cards": N_("Cards by region, status and lock"),
    "locks_per_day": N_("Locks opened and ended per day (local days)"),
    "lock_durations": N_("How long locks lasted (locks that ended in the period)"),
    "duration_buckets": N_("Lock durations"),
    "pin_lock_endings": N_("How PIN locks ended"),
    "repeat_locked": N_("Cards locked {min_locks} or more times"),
    "arrears_units": N_("Arrears outstanding by unit"),
    "arrears_totals": N_("Arrears outstanding, totals"),
    "actions": N_("Actions per acting login, operator and channel"),
    "sources": N_("Wrong PINs per terminal, operator and channel (flagged: {min_cards} or more cards)"),
    "runs": N_("Batch runs (import, unlock --from, sweeps): input SHA-256, rows, results"),
}


def register(app: typer.Typer) -> None:
    app.command("report", epilog=examples(
        "cardctl report --as-of 2026-11-30T18:00 -o json > november.json",
        "cardctl report --section repeat_locked -o csv > repeat.csv",
        "cardctl report --html report.html",
        "cardctl report --since 2026-11-01 --region 4403",
        "cardctl report --section sources --since 2026-12-01 --min-cards 3    # PIN guessing from one place",
        "cardctl report --section runs -o csv > runs.csv    # which file did what, and runs left unfinished",
    ))(edge(report))


def parse_sections(raw: list[str] | None, output: OutputFormat) -> list[str]:
    from ..services.report import SECTIONS

    chosen = [name.strip().lower().replace("-", "_") for name in raw or []]
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        raise InvalidInput(_("unknown section {name!r}; choose from {sections}").format(
            name=unknown[0][:40], sections=", ".join(SECTIONS)))
    if output is OutputFormat.CSV and len(set(chosen)) != 1:
        raise InvalidInput(_("CSV holds one table: choose it with --section (one of {sections}), "
                             "or use -o json / -o jsonl for the whole report").format(sections=", ".join(SECTIONS)))
    return [name for name in SECTIONS if name in chosen] if chosen else list(SECTIONS)


def report(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(
        "--since", help=N_("ISO-8601 time (local if no zone); default 30 days before --until."))] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help=N_("ISO-8601 time, exclusive; default now (or --as-of)."))] = None,
    as_of: AsOfOpt = None,
    region: RegionOpt = None,
    section: Annotated[list[str] | None, typer.Option(
        "--section", help=N_("Only this section (repeatable); -o csv needs exactly one. Sections: cards, "
                          "locks_per_day, lock_durations, duration_buckets, pin_lock_endings, repeat_locked, "
                          "arrears_units, arrears_totals, actions, sources, runs."), show_default=False)] = None,
    min_locks: Annotated[int, typer.Option(
        "--min-locks", min=2, max=1000, help=N_("Locks in the period that make a card 'locked again and again'."))] = 3,
    min_cards: Annotated[int, typer.Option("--min-cards", min=1, max=1_000_000, help=N_(
        "Distinct cards hit by wrong PINs from one terminal, operator and channel that flag it (section sources)."
    ))] = DEFAULT_MIN_CARDS,
    html: Annotated[str | None, typer.Option(
        "--html", metavar="FILE", help=N_("Write one self-contained HTML file (charts and tables) instead of "
                                          "printing; - for standard output. Never replaces the database, a key "
                                          "file or anything but a regular file; an existing file only with --force."),
        show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help=N_("Replace the --html file if it exists."))] = False,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Report for auditors: cards by status and lock, locks per day, how long locks lasted and
    how PIN locks ended, cards locked again and again, arrears by unit, actions per operator.

    Locks and events are counted in [--since, --until); cards and arrears are counted now,
    or as they stood at --as-of (rebuilt from the audit trail; --until then defaults to it).
    -o json prints one object {"period": ..., "sections": {name: [rows]}}; -o jsonl one row
    per line with its "section"; -o csv one section, chosen with --section.
    """
    from ..services.report import Period, build_report

    rt = runtime(ctx)
    if html is not None:  # refused before any work: the database, a key file, a device, an existing file
        from ..output_file import check_target

        check_target(html, force, rt.settings().protected_files())
    ctx_ = rt.context(role=Role.AUDITOR)
    wanted = parse_sections(section, output) if html is None else parse_sections(section, OutputFormat.JSON)
    now = ctx_.now()
    zone = ctx_.settings.timezone
    period = Period.resolve(now, parse_time(since, "--since", zone), parse_time(until, "--until", zone),
                            parse_as_of(as_of, now, zone), parse_region_option(region), min_locks, zone, min_cards)
    result = build_report(ctx_, period, wanted, headline=html is not None)
    if html is not None:
        from ..render.html import render_report

        titles = {name: tr(title).format(min_locks=period.min_locks, min_cards=period.min_cards)
                  for name, title in TITLES.items()}
        from ..output_file import output_file

        page = render_report(result.record(), titles).encode("utf-8")
        with output_file(html, force, ctx_.settings.protected_files()) as out:
            out.write(page)
        if html != "-":
            message(_("report written to {file}").format(file=html))
        return
    _print(result.record(), output, period.min_locks, ctx_.settings.timezone)


def _print(record: dict, output: OutputFormat, min_locks: int, tz: str) -> None:
    import sys

    sections = record["sections"]
    if output is OutputFormat.JSON:
        write_jsonl([record], sys.stdout)
    elif output is OutputFormat.JSONL:
        write_jsonl(({"section": name, **row} for name, rows in sections.items() for row in rows), sys.stdout)
    elif output is OutputFormat.CSV:
        (name, rows), = sections.items()
        if rows:
            write_csv(rows, sys.stdout)
        else:
            from ..services.report import columns

            sys.stdout.write(",".join(columns(name)) + "\n")
    else:
        _tables(record, min_locks, tz)


def _tables(record: dict, min_locks: int, tz: str) -> None:
    from ..i18n import localize
    from ..render.labels import worded_durations
    from ..render.tables import local, out, result_table, say

    console = out()

    period = record["period"]
    scope = ""
    if period["region"]:
        scope += localize(_("region {region}; ").format(region=period["region"]))
    if period["as_of"]:
        scope += localize(_("as of {time}; ").format(time=local(period["as_of"], tz)))
    heading = _("Report: {scope}locks and events from {since} to {until} ({tz})").format(
        scope=scope, since=local(period["since"], tz), until=local(period["until"], tz), tz=tz)
    say(localize(heading))
    for name, rows in record["sections"].items():
        console.print()
        title = tr(TITLES[name]).format(min_locks=min_locks, min_cards=period["min_cards"])
        if not rows:
            console.print(localize(_("{title}: none").format(title=title)), style="dim", markup=False)
            continue
        if name == "sources":  # no terminal given: a word, not an empty cell (JSON and CSV keep null)
            rows = [{**row, "terminal": tr(N_("(none)"))} if row["terminal"] is None else row for row in rows]
        result_table([worded_durations(row) for row in rows[:TABLE_ROWS]], title)
        if len(rows) > TABLE_ROWS:
            more = _("… and {count} more (use -o json, -o jsonl or -o csv for all)").format(
                count=len(rows) - TABLE_ROWS)
            console.print(localize(more), style="dim", markup=False)

"""Every option more than one command takes, declared once: its flags, help text and metavar.

A command names an option by its alias (``output: OutputOpt = OutputFormat.TABLE``), so the
same option reads the same in every command's --help and in both languages (the help texts
are ``N_`` msgids; cli/helptext.py translates them). An option only one command has stays
with that command. This module holds declarations only: it imports no command module, so
any of them may import it.
"""

from __future__ import annotations

from typing import Annotated, Callable

import typer

from ..config import OPERATOR_CHANNELS
from ..i18n import N_
from ..render.formats import OutputFormat

# --- global options (before the command: cardctl --db X status) --------------------------------

DbOpt = Annotated[str | None, typer.Option("--db", envvar="CARDCTL_DB",
                                           help=N_("SQLAlchemy URL or SQLite file path."))]
KeyFileOpt = Annotated[str | None, typer.Option("--key-file", envvar="CARDCTL_KEY_FILE",
                                                help=N_("Secret key file (created by init)."))]
OperatorOpt = Annotated[str | None, typer.Option("--operator", envvar="CARDCTL_OPERATOR",
                                                 help=N_("Who is acting; default the login name."))]
LangOpt = Annotated[str | None, typer.Option(
    "--lang", envvar="CARDCTL_LANG", autocompletion=lambda: ["en", "zh"],
    help=N_("Language of tables and messages: en or zh (default: from LANGUAGE, LC_ALL, LC_MESSAGES, LANG); "
            "JSON, JSON lines and CSV stay English."))]
VersionOpt = Annotated[bool, typer.Option(
    "--version", help=N_("Show the versions of cardctl, Python, SQLAlchemy and the database engine "
                         "(the PostgreSQL server's when --db names one), then exit."))]

# --- arguments and options of the commands --------------------------------------------------------------------

CardArg = Annotated[str, typer.Argument(help=N_("Card number."))]
OutputOpt = Annotated[OutputFormat, typer.Option("-o", "--output", help=N_("table, json, jsonl or csv."),
                                                 case_sensitive=False)]
ChannelOpt = Annotated[str | None, typer.Option(  # the channels an operator names: OPERATOR_CHANNELS
    "--channel", help=N_("Where the action happens: counter, bank, terminal, online, hotline."),
    metavar="[" + "|".join(OPERATOR_CHANNELS) + "]", autocompletion=lambda: list(OPERATOR_CHANNELS))]
YesOpt = Annotated[bool, typer.Option(
    "--yes", "-y", help=N_("Do not ask. At a terminal this action first shows what it will change and asks "
                           "y/N (Ctrl-C or no: cancelled, exit 130); without a terminal it never asks."))]
AsOfOpt = Annotated[str | None, typer.Option(
    "--as-of", help=N_("ISO-8601 time (local if no zone): the cards as they stood then, rebuilt from the audit trail."),
    show_default=False)]
RegionOpt = Annotated[str | None, typer.Option("--region", help=N_("Area code or prefix (e.g. 4403)."))]
TerminalOpt = Annotated[str | None, typer.Option(  # verify, change-pin: docs/domain.md "PIN guessing from one place"
    "--terminal", envvar="CARDCTL_TERMINAL", metavar="ID", show_default=False,
    help=N_("Where the PIN is typed: the counter PC, bank branch or self-service terminal (up to 64 characters), "
            "recorded on every event of the command; report --section sources counts wrong PINs by it."))]

# Secrets and personal data: read from stdin or a hidden prompt, never from arguments (cli/idnumbers.py)
PinStdinOpt = Annotated[bool, typer.Option(
    "--pin-stdin", help=N_("Read the PIN(s) from standard input, one per line."))]
IdStdinOpt = Annotated[bool, typer.Option("--id-stdin", help=N_(
    "Read the ID number(s) not given as options from standard input, one per line, before any PIN: "
    "the holder's, then the agent's. Without it they are asked for at a terminal."))]
IdNumberOpt = Annotated[str | None, typer.Option(  # the holder's, at a counter
    "--id-number", help=N_("The holder's ID number, checked against the card."))]
AgentIdOpt = Annotated[str | None, typer.Option(
    "--agent-id-number", help=N_("ID number of the agent or, for a minor, the guardian acting for the holder."))]
AgentNameOpt = Annotated[str | None, typer.Option("--agent-name", help=N_("Name of the agent or guardian."))]


def quiet_option(callback: Callable) -> typer.core.TyperOption:
    """-q/--quiet, which every command takes (cli/common.HelpCommand adds it); ``callback``
    records it for the run."""
    return typer.core.TyperOption(
        param_decls=["-q", "--quiet"], is_flag=True, default=False, expose_value=False, callback=callback,
        help=N_("Print no confirmation or summary line on stderr (for cron); errors still print."))

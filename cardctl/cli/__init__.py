"""The command-line layer: parses options, calls services, renders results.

One module per command group, each with a ``register(app)``. ``main()`` (the
``cardctl`` script) imports and registers only the module of the command being run,
so ``cardctl status CARD`` never loads or builds import, audit or operator
management; without a known command (``--help``, a typo, shell completion) it
registers them all. ``app``, with every command, is what tests and other callers
import.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module

import typer

from ..errors import OK, InvalidInput
from ..i18n import N_, _
from .common import App, RootGroup, Runtime, choose_language, examples, fail, set_quiet
from .options import DbOpt, KeyFileOpt, LangOpt, OperatorOpt, VersionOpt

# In the order --help lists them.
MODULES = ("cards", "pin", "unlock", "lifecycle", "arrears", "status", "report", "metrics", "policy", "audit",
           "operator", "keys", "settings")

# Command name -> the module that registers it (tests/test_startup.py checks it against MODULES).
COMMANDS = {
    "init": "cards", "issue": "cards", "import": "cards", "activate": "cards",
    "verify": "pin",
    "unlock": "unlock",
    "reset-pin": "lifecycle", "change-pin": "lifecycle", "report-lost": "lifecycle",
    "cancel-loss": "lifecycle", "reissue": "lifecycle", "lock": "lifecycle",
    "add-arrears": "arrears", "pay-arrears": "arrears",
    "status": "status",
    "report": "report",
    "metrics": "metrics",
    "policy": "policy",
    "audit": "audit",
    "operator": "operator",
    "key": "keys",
    "settings": "settings",
}


def root() -> typer.Typer:
    """The top-level app with its global options and no commands yet."""
    app = App(
        name="cardctl",
        cls=RootGroup,
        help=N_("Administer social-security / medical-insurance cards and their PINs."),
        no_args_is_help=True,
        add_completion=True,
        context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every command and group
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        epilog=examples("cardctl --db /srv/cardctl/cards.db --key-file /etc/cardctl/cardctl.key status --summary",
                        "cardctl status --locked --region 440305", "cardctl --lang zh status A10000001"),
    )
    # invoked without a command too, so that --version can answer after --db is parsed
    app.callback(invoke_without_command=True)(main_options)
    return app


def main_options(
    ctx: typer.Context,
    db: DbOpt = None,
    key_file: KeyFileOpt = None,
    operator: OperatorOpt = None,
    lang: LangOpt = None,
    version: VersionOpt = False,
) -> None:
    choose_language(lang)
    set_quiet(False)  # until the command's own -q says otherwise
    if version:
        from .version import lines

        typer.echo("\n".join(lines(db)))  # db: --db or CARDCTL_DB, as click read them
        raise typer.Exit(OK)
    if ctx.invoked_subcommand is None:
        ctx.fail("Missing command.")  # as click says it when no command is invoked; worded by cli/usage.py
    if db is not None and not db.strip():
        raise fail(InvalidInput(_("--db is empty: give a SQLite file path or a postgresql+psycopg:// URL")))
    if ctx.obj is None:
        ctx.obj = Runtime(db=db, key_file=key_file, operator=operator)


def build(modules: tuple[str, ...] = MODULES) -> typer.Typer:
    app = root()
    for name in modules:
        import_module(f"{__name__}.{name}").register(app)
    return app


def invoked_command(args: list[str]) -> str | None:
    """The command named in ``args`` after the global options, if it is one of ours."""
    if any(key.startswith("_") and key.endswith("_COMPLETE") for key in os.environ):
        return None  # shell completion: every command
    with_value = {opt for param in typer.main.get_group(root()).params
                  if not getattr(param, "is_flag", False) for opt in param.opts}
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            break
        if token.startswith("-"):
            if token in with_value:
                next(tokens, None)  # its value, which may look like a command name
            continue
        return token if token in COMMANDS else None
    return None


def __getattr__(name: str) -> typer.Typer:
    """``from cardctl.cli import app``: the app with every command, built on first use."""
    if name == "app":
        app = build()
        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    command = invoked_command(sys.argv[1:])
    build((COMMANDS[command],) if command else MODULES)()

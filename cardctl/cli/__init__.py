"""The command-line layer: parses options, calls services, renders results."""

from __future__ import annotations

from typing import Annotated

import typer

from . import arrears, audit, cards, lifecycle, operator, pin, policy, status, unlock
from .common import Runtime

app = typer.Typer(
    name="cardctl",
    help="Administer social-security / medical-insurance cards and their PINs.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def main_options(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option("--db", envvar="CARDCTL_DB",
                                           help="SQLAlchemy URL or SQLite file path.")] = None,
    key_file: Annotated[str | None, typer.Option("--key-file", envvar="CARDCTL_KEY_FILE",
                                                 help="Secret key file (created by init).")] = None,
    operator: Annotated[str | None, typer.Option("--operator", envvar="CARDCTL_OPERATOR",
                                                 help="Who is acting; default the login name.")] = None,
) -> None:
    if ctx.obj is None:
        ctx.obj = Runtime(db=db, key_file=key_file, operator=operator)


for module in (cards, pin, unlock, lifecycle, arrears, status, policy, audit, operator):
    module.register(app)


def main() -> None:
    app()

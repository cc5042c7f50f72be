"""settings: database-wide settings, the same for every client (admin only to change)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from ..domain.roles import Role
from ..i18n import N_, _, term
from ..render.formats import OutputFormat, emit
from ..render.tables import result_table
from .common import App, edge, examples, message, runtime
from .confirm import at_terminal, confirm
from .options import ChannelOpt, OutputOpt, YesOpt

settings_app = App(
    help=N_("Database-wide settings, the same for every client: the bcrypt cost of PIN hashes."),
    no_args_is_help=True, epilog=examples("cardctl settings show", "cardctl settings set bcrypt-cost 13"))


class Setting(str, Enum):
    bcrypt_cost = "bcrypt-cost"


def register(app: typer.Typer) -> None:
    app.add_typer(settings_app, name="settings")


@settings_app.command("show", epilog=examples("cardctl settings show", "cardctl settings show -o json"))
@edge
def show(ctx: typer.Context, output: OutputOpt = OutputFormat.TABLE) -> None:
    """Show the database's settings and what this client uses (CARDCTL_BCRYPT_COST may raise the
    cost on one client, never lower it)."""
    from ..services.settings import show_settings

    views = show_settings(runtime(ctx).context(role=Role.AUDITOR))
    emit((view.record() for view in views), output, table=lambda rows: result_table(rows, _("Settings")))


@settings_app.command("set", epilog=examples("cardctl settings set bcrypt-cost 13",
                                            "cardctl settings set bcrypt-cost 12 --yes"))
@edge
def set_(
    ctx: typer.Context,
    setting: Annotated[Setting, typer.Argument(metavar="SETTING", help=N_("The setting: bcrypt-cost."),
                                               show_default=False)],
    value: Annotated[str, typer.Argument(
        metavar="VALUE", help=N_("bcrypt-cost: 10-16; each step doubles the time of every PIN check (12 is about a quarter "
                "of a second)."), show_default=False)],
    yes: YesOpt = False,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Change a database-wide setting (audited with its old and new value). A new bcrypt cost is
    used for every PIN set from now on, by every client; a PIN hashed at a lower cost is
    re-hashed at its holder's next correct PIN.
    """
    from ..domain.hashing import parse_cost
    from ..services.settings import bcrypt_cost_now, set_bcrypt_cost

    cost = parse_cost(value)
    ctx_ = runtime(ctx).context(channel, Role.ADMIN)
    if not yes and at_terminal():
        before = bcrypt_cost_now(ctx_)
        if before != cost:
            confirm([_("the bcrypt cost of every PIN set from now on, by every client, will change: {before} -> "
                       "{after}").format(before=before, after=cost)], yes)
    result = set_bcrypt_cost(ctx_, cost)
    if output is OutputFormat.TABLE:
        done = (_("setting {name} {outcome}: {before} -> {after}") if result.outcome == "changed"
                else _("setting {name} {outcome}: {after}"))
        message(done.format(name=result.name, outcome=term(result.outcome), before=result.before, after=result.after))
        return
    emit([result.record()], output)

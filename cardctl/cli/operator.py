"""operator: who may use cardctl and as what (admin only)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..domain.roles import Role, parse_login, parse_role
from ..errors import InvalidInput
from ..i18n import N_, _, term
from ..render.formats import OutputFormat, emit
from ..render.tables import result_table
from .common import App, edge, examples, message, runtime
from .confirm import at_terminal, confirm
from .options import ChannelOpt, OutputOpt, YesOpt

operator_app = App(
    help=N_("Operators and their roles: auditor (read only), staff (card actions), admin (policy, "
            "admin locks, operators)."), no_args_is_help=True,
    epilog=examples("cardctl operator list", "cardctl operator add wangfang --role staff"))

NameArg = Annotated[str, typer.Argument(
    help=N_("The login: an existing OS user name on SQLite, a database login on PostgreSQL."))]
RoleOpt = Annotated[str, typer.Option("--role", help=N_("auditor, staff or admin."))]


def register(app: typer.Typer) -> None:
    app.add_typer(operator_app, name="operator")


def _report(record: dict, output: OutputFormat, text: str) -> None:
    if output is OutputFormat.TABLE:
        message(text)
    else:
        emit([record], output)


@operator_app.command("add", epilog=examples(
    "printf '%s\\n' \"$PASSWORD\" | cardctl operator add liqiang --role auditor --password-stdin",
    "cardctl operator add wangfang --role staff"))
@edge
def add(
    ctx: typer.Context,
    name: NameArg,
    role: RoleOpt,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help=N_("PostgreSQL: read the new login's password from standard input."))] = False,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Let NAME use cardctl with ROLE. On PostgreSQL this creates the database login (asking
    for its password) and grants exactly the role's privileges, so the database itself
    refuses what the role may not do.
    """
    from ..services.operators import add_operator, check_password, needs_password

    wanted = parse_role(role)
    ctx_ = runtime(ctx).context(channel, Role.ADMIN)
    login = parse_login(name, postgresql=not ctx_.db.is_sqlite)
    password = None
    if needs_password(ctx_, login):
        password = check_password(_read_password(password_stdin, login))
    elif password_stdin and ctx_.db.is_sqlite:
        raise InvalidInput(_("on SQLite an operator is an OS login and has no password here"))
    result = add_operator(ctx_, login, wanted, password)
    done = (_("operator {login} {result} as {role}; database login created") if result.login_created
            else _("operator {login} {result} as {role}"))
    _report(result.record(), output,
            done.format(login=login, result=term(result.result), role=term(result.role, "role")))


def _read_password(from_stdin: bool, login: str) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise InvalidInput(_("expected the password on a line of standard input"))
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InvalidInput(_("no terminal to prompt for the password; use --password-stdin"))
    import getpass

    from ..i18n import localize
    from .confirm import cancellable

    with cancellable():
        password = getpass.getpass(localize(_("Password for the new login {login}").format(login=login)) + ": ")
        again = getpass.getpass(localize(_("Again")) + ": ")
    if again != password:
        raise InvalidInput(_("the two passwords differ"))
    return password


@operator_app.command("list", epilog=examples("cardctl operator list -o csv", "cardctl operator list"))
@edge
def list_(ctx: typer.Context, output: OutputOpt = OutputFormat.TABLE) -> None:
    """List operators, their roles and whether they are active."""
    from ..services.operators import list_operators

    views = list_operators(runtime(ctx).context(role=Role.ADMIN))
    emit((view.record() for view in views), output, table=lambda rows: result_table(rows, _("Operators")))


@operator_app.command("set-role", epilog=examples("cardctl operator set-role wangfang --role admin"))
@edge
def set_role(
    ctx: typer.Context,
    name: NameArg,
    role: RoleOpt,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Change an operator's role; the last active admin cannot be demoted."""
    from ..services.operators import set_role as change

    wanted = parse_role(role)
    ctx_ = runtime(ctx).context(channel, Role.ADMIN)
    login = parse_login(name, postgresql=not ctx_.db.is_sqlite)
    result = change(ctx_, login, wanted)
    _report(result.record(), output, _("operator {login}: {result} ({role})").format(
        login=login, result=term(result.result), role=term(result.role, "role")))


@operator_app.command("disable", epilog=examples(
    'cardctl operator disable wangfang --reason "left the office 2026-11-30"'))
@edge
def disable(
    ctx: typer.Context,
    name: NameArg,
    reason: Annotated[str, typer.Option("--reason", help=N_("Why, for the audit trail."))],
    yes: YesOpt = False,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Stop an operator from using cardctl (on PostgreSQL the login can no longer log in).
    The record stays, so the audit trail's names stay explained; the last active admin
    cannot be disabled.
    """
    from ..services.operators import disable_operator

    from ..domain.names import parse_reason

    reason = parse_reason(reason)  # one limit for every free-text option; no ID number kept
    ctx_ = runtime(ctx).context(channel, Role.ADMIN)
    login = parse_login(name, postgresql=not ctx_.db.is_sqlite)
    if not yes and at_terminal():
        from ..services.operators import list_operators

        found = [view for view in list_operators(ctx_) if view.login == login and view.disabled_at is None]
        confirm([_("operator {login} ({role}) will be disabled and can no longer use cardctl; reason: {reason}").format(
            login=login, role=term(view.role, "role"), reason=reason) for view in found], yes)
    result = disable_operator(ctx_, login, reason)
    _report(result.record(), output, _("operator {login} disabled").format(login=login))

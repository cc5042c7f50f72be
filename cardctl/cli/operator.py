"""operator: who may use cardctl and as what (admin only)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..domain.roles import Role, parse_login, parse_role
from ..errors import InvalidInput
from ..render.formats import OutputFormat, emit
from ..render.tables import result_table
from .common import ChannelOpt, OutputOpt, edge, message, runtime

operator_app = typer.Typer(
    help="Operators and their roles: auditor (read only), staff (card actions), admin (policy, "
         "admin locks, operators).", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(
    help="The login: an OS user name on SQLite, a database login on PostgreSQL.")]
RoleOpt = Annotated[str, typer.Option("--role", help="auditor, staff or admin.")]


def register(app: typer.Typer) -> None:
    app.add_typer(operator_app, name="operator")


def _report(record: dict, output: OutputFormat, text: str) -> None:
    if output is OutputFormat.TABLE:
        message(text)
    else:
        emit([record], output)


@operator_app.command("add")
@edge
def add(
    ctx: typer.Context,
    name: NameArg,
    role: RoleOpt,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="PostgreSQL: read the new login's password from standard input.")] = False,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Let NAME use cardctl with ROLE. On PostgreSQL this creates the database login (asking
    for its password) and grants exactly the role's privileges, so the database itself
    refuses what the role may not do.

    Examples:
      cardctl operator add wangfang --role staff
      printf '%s\\n' "$PASSWORD" | cardctl operator add liqiang --role auditor --password-stdin
    """
    from ..services.operators import add_operator, check_password, needs_password

    wanted = parse_role(role)
    ctx_ = runtime(ctx).context(channel, Role.ADMIN)
    login = parse_login(name, postgresql=not ctx_.db.is_sqlite)
    password = None
    if needs_password(ctx_, login):
        password = check_password(_read_password(password_stdin, login))
    elif password_stdin and ctx_.db.is_sqlite:
        raise InvalidInput("on SQLite an operator is an OS login and has no password here")
    result = add_operator(ctx_, login, wanted, password)
    created = "; database login created" if result.login_created else ""
    _report(result.record(), output, f"operator {login} {result.result} as {result.role}{created}")


def _read_password(from_stdin: bool, login: str) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise InvalidInput("expected the password on a line of standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InvalidInput("no terminal to prompt for the password; use --password-stdin")
    import getpass

    password = getpass.getpass(f"Password for the new login {login}: ")
    if getpass.getpass("Again: ") != password:
        raise InvalidInput("the two passwords differ")
    return password


@operator_app.command("list")
@edge
def list_(ctx: typer.Context, output: OutputOpt = OutputFormat.TABLE) -> None:
    """List operators, their roles and whether they are active. Example: cardctl operator list"""
    from ..services.operators import list_operators

    views = list_operators(runtime(ctx).context(role=Role.ADMIN))
    emit((view.record() for view in views), output, table=lambda rows: result_table(rows, "Operators"))


@operator_app.command("set-role")
@edge
def set_role(
    ctx: typer.Context,
    name: NameArg,
    role: RoleOpt,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Change an operator's role; the last active admin cannot be demoted.

    Example: cardctl operator set-role wangfang --role admin
    """
    from ..services.operators import set_role as change

    wanted = parse_role(role)
    ctx_ = runtime(ctx).context(channel, Role.ADMIN)
    login = parse_login(name, postgresql=not ctx_.db.is_sqlite)
    result = change(ctx_, login, wanted)
    _report(result.record(), output, f"operator {login}: {result.result} ({result.role})")


@operator_app.command("disable")
@edge
def disable(
    ctx: typer.Context,
    name: NameArg,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit trail.")],
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Stop an operator from using cardctl (on PostgreSQL the login can no longer log in).
    The record stays, so the audit trail's names stay explained; the last active admin
    cannot be disabled.

    Example: cardctl operator disable wangfang --reason "left the office 2026-11-30"
    """
    from ..services.operators import disable_operator

    if not reason.strip() or not reason.strip().isprintable():
        raise InvalidInput("--reason must be printable text")
    ctx_ = runtime(ctx).context(channel, Role.ADMIN)
    login = parse_login(name, postgresql=not ctx_.db.is_sqlite)
    result = disable_operator(ctx_, login, reason.strip())
    _report(result.record(), output, f"operator {login} disabled")

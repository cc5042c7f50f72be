"""add-arrears and pay-arrears: the contribution ledger and the arrears locks it sets and lifts."""

from __future__ import annotations

from typing import Annotated

import typer

from ..domain.identity import parse_card_no, parse_uscc
from ..domain.money import parse_yuan
from ..domain.roles import Role
from ..errors import InvalidInput
from ..i18n import N_, _
from ..render.formats import OutputFormat, emit
from ..render.tables import arrears_panel
from .common import edge, examples, runtime
from .options import ChannelOpt, OutputOpt

CardArg = Annotated[str | None, typer.Argument(help=N_("A card of the holder who owes."), show_default=False)]
UnitOpt = Annotated[str | None, typer.Option(
    "--unit", help=N_("Employer's unified social credit code: the unit's arrears lock every employee's card."))]
AmountOpt = Annotated[str, typer.Option("--amount", help=N_("Yuan, at most two decimals, e.g. 1200.50."))]


def register(app: typer.Typer) -> None:
    app.command("add-arrears", epilog=examples(
        "cardctl add-arrears --unit 91350100M000100Y43 --amount 120000 --period 2026-10",
        "cardctl add-arrears A10000001 --amount 356.40 --period 2026-10"))(edge(add_arrears))
    app.command("pay-arrears", epilog=examples(
        "cardctl pay-arrears A10000001 --amount 356.40 --receipt BK20261123-0041 -o json",
        "cardctl pay-arrears --unit 91350100M000100Y43 --amount 120000 --receipt BK20261123-0042",
    ))(edge(pay_arrears))


def flatten(record: dict) -> dict:
    """One CSV row: card lists joined with ';'."""
    return {key: ";".join(value) if isinstance(value, list) else value for key, value in record.items()}


def _debtor(card_no: str | None, unit: str | None):
    from ..services.arrears import Debtor

    if (card_no is None) == (unit is None):
        raise InvalidInput(_("name either a card number or --unit USCC"))
    return Debtor(parse_card_no(card_no)) if card_no is not None else Debtor(unit=parse_uscc(unit))


def add_arrears(
    ctx: typer.Context,
    amount: AmountOpt,
    card_no: CardArg = None,
    unit: UnitOpt = None,
    period: Annotated[str | None, typer.Option("--period", help=N_("Contribution month, YYYY-MM."))] = None,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Record unpaid contributions and lock the card(s): the holder's own card, or with
    --unit every employee's card. The lock ends only when the debt is paid (pay-arrears).
    """
    from ..services.arrears import add_arrears as add, parse_period

    debtor = _debtor(card_no, unit)
    fen = parse_yuan(amount)
    ctx_ = runtime(ctx).context(channel, Role.STAFF)
    month = parse_period(period, ctx_.now().date()) if period is not None else None
    result = add(ctx_, debtor, fen, month)
    emit([result.record()], output, table=lambda rows: arrears_panel(next(iter(rows))), flatten=flatten)


def pay_arrears(
    ctx: typer.Context,
    amount: AmountOpt,
    card_no: CardArg = None,
    unit: UnitOpt = None,
    receipt: Annotated[str | None, typer.Option(
        "--receipt", help=N_("Payment reference, e.g. a bank receipt."))] = None,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Record a payment. A partial payment lowers the balance and keeps the lock; a card's
    arrears lock ends once its holder and its unit both owe nothing. Paying more than is
    owed is refused (exit 6).
    """
    from ..services.arrears import parse_receipt, pay_arrears as pay

    debtor = _debtor(card_no, unit)
    fen = parse_yuan(amount)
    ref = parse_receipt(receipt) if receipt is not None else None
    result = pay(runtime(ctx).context(channel, Role.STAFF), debtor, fen, ref)
    emit([result.record()], output, table=lambda rows: arrears_panel(next(iter(rows))), flatten=flatten)

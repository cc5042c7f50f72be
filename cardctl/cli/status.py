"""status: cards and their locks, filtered lists, and population counts."""

from __future__ import annotations

from typing import Annotated

import typer

from ..domain.identity import parse_card_no, parse_region
from ..domain.model import CardStatus
from ..domain.roles import Role
from ..errors import CardNotFound, InvalidInput
from ..render.formats import OutputFormat, emit
from ..render.tables import card_table, result_table
from .common import OutputOpt, edge, runtime

TABLE_LIMIT = 100


def register(app: typer.Typer) -> None:
    app.command("status")(edge(status))


def flatten_card(record: dict) -> dict:
    """One CSV row per card; locks joined as kind:until pairs."""
    flat = {k: v for k, v in record.items() if k != "locks"}
    flat["locks"] = ";".join(f"{lock['kind']}:{lock['until'] or 'none'}" for lock in record["locks"])
    return flat


def status(
    ctx: typer.Context,
    card_nos: Annotated[list[str] | None, typer.Argument(help="Card numbers; none lists by filters.",
                                                         show_default=False)] = None,
    locked: Annotated[bool, typer.Option("--locked", help="Only cards with a lock in force.")] = False,
    card_status: Annotated[CardStatus | None, typer.Option("--status", help="pending, active, lost or void.",
                                                           case_sensitive=False)] = None,
    region: Annotated[str | None, typer.Option("--region", help="Area code or prefix (e.g. 4403).")] = None,
    summary: Annotated[bool, typer.Option("--summary", help="Counts by region x status x lock kind.")] = False,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Show cards, their failure counts and locks (times in local time, with time left).

    A table shows the first 100 matching cards; JSON, JSON lines and CSV stream them all.
    Examples:
      cardctl status A10000001
      cardctl status --locked --region 440305 -o csv > locked.csv
      cardctl status --summary
    """
    from ..services import status as service

    ctx_ = runtime(ctx).context(role=Role.AUDITOR)
    tz = ctx_.settings.timezone
    if region is not None and not (region.isascii() and region.isdigit() and 1 <= len(region) <= 6):
        raise InvalidInput("--region takes an area code or a prefix of one (1-6 digits)")
    if region is not None and len(region) == 6:
        region = parse_region(region)
    filters = service.Filters(locked, card_status.value if card_status else None, region)
    if summary:
        emit((row.record() for row in service.summary(ctx_, filters)), output,
             table=lambda rows: result_table(rows, "Cards by region, status and lock"))
        return
    if card_nos:
        views, missing = service.cards_by_number(ctx_, [parse_card_no(n) for n in card_nos])
        if views or output is not OutputFormat.TABLE:  # no empty table before "not found"
            emit((view.record() for view in views), output, table=lambda rows: card_table(rows, tz),
                 flatten=flatten_card)
        if missing:
            if len(missing) == 1:
                raise CardNotFound(missing[0])
            raise CardNotFound(", ".join(missing))
        return
    if output is OutputFormat.TABLE:
        total = service.count_cards(ctx_, filters)
        views = service.list_cards(ctx_, filters, limit=TABLE_LIMIT)
        card_table((view.record() for view in views), tz, TABLE_LIMIT, total)
        return
    emit((view.record() for view in service.list_cards(ctx_, filters)), output, flatten=flatten_card)

"""status: cards and their locks, filtered lists, and population counts; now or at a past moment."""

from __future__ import annotations

from datetime import datetime
from itertools import islice
from typing import Annotated

import typer

from ..domain.identity import parse_card_no, parse_region
from ..domain.model import CardStatus, LockKind, iso
from ..domain.roles import Role
from ..errors import CardNotFound, InvalidInput
from ..i18n import N_, _
from ..render.formats import OutputFormat, emit
from ..render.tables import card_table, summary_table
from .common import edge, examples, parse_time, runtime
from .options import AsOfOpt, OutputOpt, RegionOpt

TABLE_LIMIT = 100



def register(app: typer.Typer) -> None:
    app.command("status", epilog=examples(
        "cardctl status --locked --region 440305 -o csv > locked.csv",
        "cardctl status --locked --kind pin -o jsonl | cardctl unlock --from - --reason \"terminal fault\"",
        "cardctl status --summary",
        "cardctl status --locked --as-of 2026-11-23T09:00 -o json",
        "cardctl status A10000001",
    ))(edge(status))


def parse_region_option(region: str | None) -> str | None:
    """--region: an area code or a prefix of one (1-6 digits); a full code is checked as one."""
    if region is None:
        return None
    if not (region.isascii() and region.isdigit() and 1 <= len(region) <= 6):
        raise InvalidInput(_("--region takes an area code or a prefix of one (1-6 digits)"))
    return parse_region(region) if len(region) == 6 else region


def parse_as_of(raw: str | None, now: datetime, zone: str) -> datetime | None:
    """--as-of: a past moment (the trail knows nothing later than now)."""
    moment = parse_time(raw, "--as-of", zone)
    if moment is not None and moment > now:
        raise InvalidInput(_("--as-of {at} is in the future; the trail only knows the past").format(at=iso(moment)))
    return moment


def status(
    ctx: typer.Context,
    card_nos: Annotated[list[str] | None, typer.Argument(help=N_("Card numbers; none lists by filters."),
                                                         show_default=False)] = None,
    locked: Annotated[bool, typer.Option("--locked", help=N_("Only cards with a lock in force."))] = False,
    kind: Annotated[LockKind | None, typer.Option(
        "--kind", help=N_("With --locked: only cards holding a lock of this kind (pin, arrears or admin)."),
        case_sensitive=False, show_default=False)] = None,
    card_status: Annotated[CardStatus | None, typer.Option("--status", help=N_("pending, active, lost or void."),
                                                           case_sensitive=False)] = None,
    region: RegionOpt = None,
    summary: Annotated[bool, typer.Option("--summary", help=N_("Counts by region x status x lock kind."))] = False,
    as_of: AsOfOpt = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Show cards, their failure counts and locks (times in local time, with time left).

    A table shows the first 100 matching cards; JSON, JSON lines and CSV stream them all.
    With --as-of every card, count and lock is shown as it stood at that moment (time left
    counted from it), replayed from the audit trail.
    """
    rt = runtime(ctx)
    # named cards, now: the sqlite3 start-up path where it can serve (storage/lite.py)
    quick = bool(card_nos) and not summary and as_of is None and rt.quick_context(Role.AUDITOR)
    ctx_ = quick or rt.context(role=Role.AUDITOR)
    tz = ctx_.settings.timezone
    region = parse_region_option(region)
    moment = parse_as_of(as_of, ctx_.now(), tz)
    if moment is not None:  # the replay is loaded only when asked for
        from ..services import history
    if card_nos and not summary:
        from ..services.reads import cards_by_number

        wanted = [parse_card_no(n) for n in card_nos]
        views, missing = (history.cards_at(ctx_, moment, wanted) if moment
                          else cards_by_number(ctx_, wanted))
        if views or output is not OutputFormat.TABLE:  # no empty table before "not found"
            emit((view.record() for view in views), output, table=lambda rows: card_table(rows, tz))
        if missing:
            raise CardNotFound(", ".join(missing))
        return
    from ..services import status as service

    if kind is not None and not locked:
        raise InvalidInput(_("--kind chooses among locked cards: use it with --locked"))
    filters = service.Filters(locked, card_status.value if card_status else None, region,
                              kind.value if kind else None)
    if summary:
        return _summary(ctx_, filters, moment, output)
    if output is OutputFormat.TABLE:
        if moment is not None:  # counting what matched means replaying every card anyway
            views = history.list_cards_at(ctx_, moment, filters)
            shown = list(islice(views, TABLE_LIMIT))
            card_table((view.record() for view in shown), tz, TABLE_LIMIT, len(shown) + sum(1 for _view in views))
            return
        total = service.count_cards(ctx_, filters)
        views = service.list_cards(ctx_, filters, limit=TABLE_LIMIT)
        card_table((view.record() for view in views), tz, TABLE_LIMIT, total)
        return
    views = history.list_cards_at(ctx_, moment, filters) if moment else service.list_cards(ctx_, filters)
    emit((view.record() for view in views), output)


def _summary(ctx_, filters, moment: datetime | None, output: OutputFormat) -> None:
    """Counts by region x status x lock kind; a table adds totals per status, per lock kind and of all cards."""
    from collections import Counter

    from ..services import status as service

    by_status: Counter[str] = Counter()
    if moment is not None:
        from ..services import history

        def counted(views):
            for view in views:
                by_status[view.status] += 1
                yield view

        rows = history.summarise(counted(history.list_cards_at(ctx_, moment, filters)))
    else:
        rows = service.summary(ctx_, filters)
        if output is OutputFormat.TABLE:
            by_status.update(service.count_by_status(ctx_, filters))
    emit((row.record() for row in rows), output,
         table=lambda records: summary_table(list(records), by_status, _("Cards by region, status and lock")))


"""Cards by number and the count of what is due: the reads ``status CARD`` and the idle cron
sweep share with ``status --locked``, verify and the lifecycle use cases.

Everything is asked of the context's read store (``storage/reads.py`` ``ReadStore``):
SQLAlchemy Core, or on an SQLite file the sqlite3 start-up path, whichever the context
chose when it opened (``Context.reading``). So this module imports no SQLAlchemy.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Sequence

from ..domain.model import CardView
from .views import card_view

if TYPE_CHECKING:
    from ..storage.reads import CardRow, ReadStore
    from .context import Context


def count_due(ctx: Context) -> int:
    """PIN locks past their end and temporary loss reports past their lapse: what the cron
    sweep (``unlock.expire_due``) would record now, in one read transaction."""
    now = ctx.now()
    return ctx.reading(lambda store: store.count_due(now))


def card_views(ctx: Context, store: ReadStore, rows: Sequence[CardRow], now: datetime) -> list[CardView]:
    """Views of ``rows`` with their locks, balances and policy, read in ``store``'s transaction."""
    card_nos = [row.card_no for row in rows]
    held = store.open_locks(card_nos, now)
    expired = store.expired_pin_cards(card_nos, now)
    own, of_unit = store.balances((row.holder_id for row in rows), (row.unit for row in rows))
    return [card_view(
        now=now, card_no=row.card_no, holder_name=row.name, id_masked=row.id_masked, region=row.region,
        status=row.status, failures=row.failures, pin_lock_expired=row.card_no in expired,
        max_attempts=ctx.policy_for(store, row.region).max_attempts, locks=held.get(row.card_no, []),
        insurance_type=row.insurance_type, unit=row.unit, owed_fen=own.get(row.holder_id, 0),
        unit_owed_fen=of_unit.get(row.unit, 0), loss_kind=row.loss_kind, lost_at=row.lost_at,
        loss_lapses_at=row.loss_lapses_at, void_reason=row.void_reason, replaced_by=row.replaced_by,
        replaces=row.replaces) for row in rows]


def cards_by_number(ctx: Context, card_nos: Sequence[str]) -> tuple[list[CardView], list[str]]:
    """Views of the named cards in the order given, and the numbers not found."""
    now = ctx.now()

    def read(store: ReadStore) -> dict[str, CardView]:
        return {view.card_no: view for view in card_views(ctx, store, store.cards_by_number(card_nos, now), now)}

    views = ctx.reading(read)
    return [views[n] for n in card_nos if n in views], [n for n in card_nos if n not in views]

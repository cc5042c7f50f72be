"""What reading one card's status and checking for due locks ask of the database.

Every query here is a named statement (``services/statements.py``) run through ``run``:
on an ORM session or a Core connection it executes the SQLAlchemy statement; on the
sqlite3 start-up path (``storage/lite.py``) the same statement compiled ahead of time.
So this module imports no SQLAlchemy, and ``status CARD`` and the idle cron sweep share
it with verify, the lifecycle use cases and ``status --locked``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..domain.model import CardView, LockView, effective_status
from ..domain.roles import Role, Standing

if TYPE_CHECKING:
    from .context import Context


def run(conn, name: str, **params: Any) -> list:
    """The rows of named statement ``name`` (attribute access and tuple unpacking alike)."""
    named = getattr(conn, "run_named", None)
    if named is not None:
        return named(name, params)
    from .statements import statement

    if hasattr(conn, "record"):
        conn = conn.conn  # a write use case's Tx (storage/stores): its transaction's connection
    return conn.execute(statement(name), params).all()


def scalar(conn, name: str, **params: Any):
    """The first column of the first row, or None."""
    rows = run(conn, name, **params)
    return rows[0][0] if rows else None


def open_locks(conn, card_nos: Sequence[str], now: datetime) -> dict[str, list[LockView]]:
    """Effective locks of these cards, oldest first."""
    found: dict[str, list[LockView]] = defaultdict(list)
    if not card_nos:
        return found
    for card_no, kind, reason, since, until in run(conn, "open_locks", card_nos=list(card_nos), now=now):
        found[card_no].append(LockView(kind, reason, since, until, now))
    return found


def expired_pin_cards(conn, card_nos: Sequence[str], now: datetime) -> set[str]:
    """Cards whose PIN lock has passed its end but is not yet recorded as ended."""
    if not card_nos:
        return set()
    return {row.card_no for row in run(conn, "expired_pin_cards", card_nos=list(card_nos), now=now)}


def balances(conn, holder_ids: Iterable[int], units: Iterable[str | None]) -> tuple[dict[int, int], dict[str, int]]:
    """Balances in fen of these holders and units; absent means zero."""
    holder_ids, units = list(set(holder_ids)), list({u for u in units if u})
    # int(): PostgreSQL sums a BIGINT column as NUMERIC
    own = ({holder: int(fen) for holder, fen in run(conn, "holder_balances", holder_ids=holder_ids)}
           if holder_ids else {})
    of_unit = {unit: int(fen) for unit, fen in run(conn, "unit_balances", units=units)} if units else {}
    return own, of_unit


def count_due(ctx: Context) -> int:
    """PIN locks past their end and temporary loss reports past their lapse: what the cron
    sweep (``unlock.expire_due``) would record now. Two counts over indexes (ix_locks_pin_due,
    the status index) in one read transaction, no rows read."""
    now = ctx.now()
    with ctx.db.connect_read() as conn:
        return scalar(conn, "due_pin_locks", now=now) + scalar(conn, "lapsed_losses", now=now)


def standing_of(conn, login: str) -> Standing:
    """What the operators table says about ``login``."""
    rows = run(conn, "operator_standing", login=login)
    if not rows:
        return Standing(login, None)
    return Standing(login, Role(rows[0].role), rows[0].disabled_at is not None)


def card_views(ctx: Context, conn, rows: Sequence, now: datetime) -> list[CardView]:
    """Views of the card rows of ``statements.card_query``, with their locks, balances and policy."""
    card_nos = [row.card_no for row in rows]
    held = open_locks(conn, card_nos, now)
    expired = expired_pin_cards(conn, card_nos, now)
    own, of_unit = balances(conn, (row.holder_id for row in rows), (row.unit for row in rows))
    views = []
    for row in rows:
        policy = ctx.policy_for(conn, row.region)
        # an expired PIN lock resets the count even before cron records it
        failures = 0 if row.card_no in expired else row.failures
        status = effective_status(row.status, row.loss_kind, row.loss_lapses_at, now)
        # a lapsed report is shown as what it is now: no loss report at all
        loss = (row.loss_kind, row.lost_at, row.loss_lapses_at) if status == row.status else (None, None, None)
        views.append(CardView(row.card_no, row.name, row.id_masked, row.region, status,
                              failures, policy.max_attempts, held.get(row.card_no, []),
                              row.insurance_type, row.unit, own.get(row.holder_id, 0),
                              of_unit.get(row.unit, 0), *loss, row.void_reason, row.replaced_by, row.replaces))
    return views


def cards_by_number(ctx: Context, card_nos: Sequence[str]) -> tuple[list[CardView], list[str]]:
    """Views of the named cards in the order given, and the numbers not found."""
    now = ctx.now()
    with ctx.db.connect_read() as conn:
        rows = run(conn, "cards_by_number", card_nos=list(dict.fromkeys(card_nos)), now=now)
        views = {view.card_no: view for view in card_views(ctx, conn, rows, now)}
    return [views[n] for n in card_nos if n in views], [n for n in card_nos if n not in views]

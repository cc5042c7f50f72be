"""The named read statements of the read store, and their compiler for the start-up path.

One source for both implementations of ``storage.reads.ReadStore``: ``CoreReads``
(storage/stores/reads.py) executes ``statement(name)``; ``LiteReads`` (storage/lite.py)
executes the same statement compiled ahead of time into ``storage/compiled_sql.py``.
Regenerate that file after changing a statement here or anything it is built from::

    python -m cardctl.storage.statements

tests/test_startup_path.py fails while the file is stale. The compiler uses public
SQLAlchemy API only: list parameters are rendered for a one-element list
(``render_postcompile``) and the start-up path widens that one placeholder to the list
it is given; constants are converted by their types' ``bind_processor``.
"""

from __future__ import annotations

import pprint
import re
import sys
from functools import cache
from pathlib import Path
from typing import Callable

from sqlalchemy import (Date, Integer, String, and_, bindparam, case, cast, column, exists, func, literal, literal_column,
                        or_, select, table)
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import Select, visitors

from ..domain.model import CardStatus, LossKind
# the SQL twins of the domain's read-time rules (docs/domain.md, locks and lapses)
from .stores.cards import lapsed
from .stores.locks import effective, pin_due
from .reads import BATCH_PAGE, POLICY_FIELDS, Filters
from .tables import UTCDateTime, audit_head, cards, events, holders, locks, meta, operators, policies
from .tables import arrears as ledger

NOW = bindparam("now", type_=UTCDateTime)
CARD_NOS = bindparam("card_nos", expanding=True)


# --- the card query of ``status`` ---------------------------------------------------------------


def status_is(status: str, now):
    """Filter on the effective status, still led by the status index."""
    card = cards.c
    if status == CardStatus.ACTIVE:
        return or_(card.status == status, lapsed(now))
    if status == CardStatus.LOST:
        return and_(card.status == status, or_(card.loss_kind.is_distinct_from(LossKind.TEMPORARY.value),
                                               card.loss_lapses_at.is_(None), card.loss_lapses_at > now))
    return card.status == status


def card_query(filters: Filters, now) -> Select:
    """The columns of ``reads.CardRow`` of the cards ``filters`` match."""
    card, holder = cards.c, holders.c
    stmt = (select(card.card_no, holder.name, holder.id_masked, card.region, card.status,
                   card.failures, card.insurance_type, card.unit, card.holder_id, card.loss_kind,
                   card.lost_at, card.loss_lapses_at, card.void_reason, card.replaced_by, card.replaces)
            .join(holders, holder.id == card.holder_id))
    if filters.status:
        stmt = stmt.where(status_is(filters.status, now))
    if filters.region:
        stmt = stmt.where(card.region.startswith(filters.region, autoescape=True))
    if filters.locked:
        held = exists().where(locks.c.card_no == card.card_no, effective(now))
        stmt = stmt.where(held.where(locks.c.kind == filters.kind) if filters.kind else held)
    return stmt


# --- the named statements -----------------------------------------------------------------------


def _schema_revision() -> Select:
    return select(table("alembic_version", column("version_num", String)).c.version_num)


def _key_fingerprint() -> Select:
    return select(meta.c.value).where(meta.c.key == "key_fingerprint")


def _operator_standing() -> Select:
    return select(operators.c.role, operators.c.disabled_at).where(operators.c.login == bindparam("login"))


def _policies() -> Select:
    return select(policies.c.region_prefix, *(policies.c[name] for name in POLICY_FIELDS))


def _cards_by_number() -> Select:
    return card_query(Filters(), NOW).where(cards.c.card_no.in_(CARD_NOS))


def _open_locks() -> Select:
    lock = locks.c
    # the flag as 0/1: the start-up path converts no booleans, and both engines agree on integers
    return (select(lock.card_no, lock.kind, lock.reason, lock.started_at, lock.ends_at,
                   cast(lock.escalated, Integer).label("escalated"))
            .where(lock.card_no.in_(CARD_NOS), effective(NOW)).order_by(lock.started_at, lock.id))


def _expired_pin_cards() -> Select:
    return select(locks.c.card_no).where(locks.c.card_no.in_(CARD_NOS), *pin_due(NOW))


def _holder_balances() -> Select:
    return (select(ledger.c.holder_id, func.sum(ledger.c.amount_fen).label("fen"))
            .where(ledger.c.holder_id.in_(bindparam("holder_ids", expanding=True))).group_by(ledger.c.holder_id))


def _unit_balances() -> Select:
    return (select(ledger.c.unit, func.sum(ledger.c.amount_fen).label("fen"))
            .where(ledger.c.unit.in_(bindparam("units", expanding=True))).group_by(ledger.c.unit))


def _due_pin_locks() -> Select:
    """Counted over the partial index ix_locks_pin_due."""
    return select(func.count().label("due")).select_from(locks).where(*pin_due(NOW))


def _lapsed_losses() -> Select:
    """Counted through the status index: only lost cards are read."""
    return select(func.count().label("due")).select_from(cards).where(lapsed(NOW))


# --- the figures of ``metrics`` (docs/domain.md, "Metrics") --------------------------------------

SINCE = bindparam("since", type_=UTCDateTime)
# ix_events_batches' own condition, written out as the index has it: SQLite uses a partial
# index only for a query whose WHERE contains the index's WHERE, literals and all
BATCH_ACTIONS = events.c.action.in_([literal_column("'batch.start'"), literal_column("'batch.end'")])


def _cards_by_region() -> Select:
    """Cards per region, over ix_cards_region alone (a covering index: no card row is read)."""
    return select(cards.c.region, func.count().label("cards")).group_by(cards.c.region).order_by(cards.c.region)


def _cards_not_active_by_region() -> Select:
    """The cards not stored as active, by region and effective status (a lapsed temporary loss
    report is active), led by ix_cards_status: only these cards' rows are read. Active cards
    per region are the rest; grouping every card by region and status would sort them all,
    which no index serves (about a second at 1M cards)."""
    card = cards.c
    others = [literal_column(f"'{status.value}'") for status in CardStatus if status is not CardStatus.ACTIVE]
    status = case((lapsed(NOW), literal(CardStatus.ACTIVE.value)), else_=card.status)
    return (select(card.region, status.label("status"), func.count().label("cards"))
            .where(card.status.in_(others)).group_by(card.region, status).order_by(card.region, status))


def _cards_locked_by_kind() -> Select:
    """Cards holding a lock in force, per kind, and those of them whose PIN lock escalated."""
    lock = locks.c
    escalated = case((lock.escalated, lock.card_no))
    return (select(lock.kind, func.count(lock.card_no.distinct()).label("cards"),
                   func.count(escalated.distinct()).label("escalated"))
            .where(effective(NOW)).group_by(lock.kind).order_by(lock.kind))


def _sweep_lag() -> Select:
    """PIN locks past their end the sweep has not recorded yet, and the oldest end (over ix_locks_pin_due)."""
    return (select(func.count().label("locks"), func.min(locks.c.ends_at).label("oldest"))
            .select_from(locks).where(*pin_due(NOW)))


def _locks_opened_since() -> Select:
    """Locks started after ``since``, per kind: one pass over the locks table, since no index
    leads with started_at (9 ms over the 110,000 locks of the 1M-card benchmark)."""
    lock = locks.c
    return (select(lock.kind, func.count().label("locks")).where(lock.started_at > SINCE)
            .group_by(lock.kind).order_by(lock.kind))


def _audit_head() -> Select:
    """The chain's last seq and when its event was recorded."""
    head = audit_head.c
    return (select(head.seq, events.c.recorded_at)
            .select_from(audit_head.outerjoin(events, events.c.seq == head.seq)))


def _batch_ends() -> Select:
    """``batch.end`` events before seq ``before``, newest first, a page at a time (over ix_events_batches)."""
    event = events.c
    return (select(event.seq, event.recorded_at, event.detail)
            .where(BATCH_ACTIONS, event.action == literal_column("'batch.end'"), event.seq < bindparam("before"))
            .order_by(event.seq.desc()).limit(BATCH_PAGE))


BUILDERS: dict[str, Callable[[], Select]] = {
    "schema_revision": _schema_revision,
    "key_fingerprint": _key_fingerprint,
    "operator_standing": _operator_standing,
    "policies": _policies,
    "cards_by_number": _cards_by_number,
    "open_locks": _open_locks,
    "expired_pin_cards": _expired_pin_cards,
    "holder_balances": _holder_balances,
    "unit_balances": _unit_balances,
    "due_pin_locks": _due_pin_locks,
    "lapsed_losses": _lapsed_losses,
    "cards_by_region": _cards_by_region,
    "cards_not_active_by_region": _cards_not_active_by_region,
    "cards_locked_by_kind": _cards_locked_by_kind,
    "sweep_lag": _sweep_lag,
    "locks_opened_since": _locks_opened_since,
    "audit_head": _audit_head,
    "batch_ends": _batch_ends,
}


@cache
def statement(name: str) -> Select:
    return BUILDERS[name]()


# --- compiling for the start-up path ------------------------------------------------------------

# One element of a list parameter, rendered in its place; never a value anyone binds
_ONE = "\x00"


def _kind(type_) -> str | None:
    """How the start-up path converts a value of this column type (None: as it is)."""
    if isinstance(type_, UTCDateTime):
        return "utc"
    if isinstance(type_, Date):
        return "date"
    try:
        python_type = type_.python_type
    except NotImplementedError:
        python_type = None
    if python_type in (str, int):
        return None
    raise TypeError(f"no start-up path conversion for {type_!r}")


def compile_sqlite(name: str) -> tuple[str, dict, dict, tuple]:
    """(SQL with :named parameters, parameters and their kinds, constants, result columns and kinds).

    A list parameter's kind is ``("list", placeholder)``: the text SQLAlchemy renders for a
    one-element list, which the start-up path replaces by one placeholder per element."""
    stmt = statement(name)
    found = {bind.key: bind for bind in visitors.iterate(stmt) if bind.__visit_name__ == "bindparam"}
    wanted = {key: bind for key, bind in found.items() if bind.required}
    dialect = sqlite.dialect(paramstyle="named")
    stand_ins = {key: [_ONE] if bind.expanding else None for key, bind in wanted.items()}
    compiled = stmt.params(stand_ins).compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    sql = compiled.string
    binds: dict[str, object] = {}
    for key, bind in wanted.items():
        if bind.expanding:
            if _kind(bind.type) is not None:
                raise TypeError(f"{name}: list parameter {key} needs a conversion the start-up path lacks")
            placeholder = f"(:{key}_1)"
            if sql.count(placeholder) != 1:
                raise TypeError(f"{name}: list parameter {key} is not rendered once as {placeholder}")
            binds[key] = ("list", placeholder)
        else:
            binds[key] = _kind(bind.type)
    constants = {}
    for bind_name, bind in compiled.binds.items():  # by name as rendered (and by anonymous key)
        if bind.key in wanted or not re.search(rf":{re.escape(bind_name)}\b", sql):
            continue
        processor = bind.type.bind_processor(dialect)
        constants[bind_name] = processor(bind.value) if processor else bind.value
    columns = tuple((col.key, _kind(col.type)) for col in stmt.selected_columns)
    if not all(key for key, _kind_ in columns):
        raise TypeError(f"{name}: label every computed column, so both paths name it alike")
    return sql, binds, constants, columns


def render_module() -> str:
    body = pprint.pformat({name: compile_sqlite(name) for name in BUILDERS}, width=110, sort_dicts=False)
    return ('"""Generated by ``python -m cardctl.storage.statements`` from storage/statements.py: do not edit.\n\n'
            "Each named read statement of the start-up path, compiled for SQLite: (SQL, parameters and\n"
            "their kinds, constants, result columns and their kinds). See storage/lite.py.\n"
            '"""\n\n'
            f"SQLITE = {body}\n")


TARGET = Path(__file__).resolve().parent / "compiled_sql.py"

if __name__ == "__main__":
    TARGET.write_text(render_module(), encoding="utf-8")
    print(f"wrote {TARGET}", file=sys.stderr)

"""The read statements of the start-up path, by name: one source for two ways of running them.

``services.reads.run(conn, name, **params)`` executes ``statement(name)`` on a SQLAlchemy
connection or session; on the sqlite3 start-up path (``storage/lite.py``) it executes
the same statement compiled ahead of time into ``storage/compiled_sql.py``. Regenerate
that file after changing a statement here or anything it is built from::

    python -m cardctl.services.statements

tests/test_startup_path.py fails while the file is stale.
"""

from __future__ import annotations

import pprint
import sys
from functools import cache
from pathlib import Path
from typing import Callable

from sqlalchemy import Date, String, bindparam, column, func, select, table
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import Select

from ..storage.tables import UTCDateTime, cards, locks, meta, operators, policies
from ..storage.tables import arrears as ledger
from .context import POLICY_FIELDS
from .lapses import lapsed
from .locks import effective, pin_due
from .status import Filters, card_query

NOW = bindparam("now", type_=UTCDateTime)
CARD_NOS = bindparam("card_nos", expanding=True)


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
    return (select(lock.card_no, lock.kind, lock.reason, lock.started_at, lock.ends_at)
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
}


@cache
def statement(name: str) -> Select:
    return BUILDERS[name]()


# --- compiling for the start-up path ------------------------------------------------------------


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
    """(SQL with :named parameters, parameters and their kinds, constants, result columns and kinds)."""
    stmt = statement(name)
    compiled = stmt.compile(dialect=sqlite.dialect(paramstyle="named"))
    binds, constants = {}, {}
    for bind_name, bind in ((compiled.bind_names[b], b) for b in dict.fromkeys(compiled.binds.values())):
        if bind.required and bind.expanding:
            if _kind(bind.type) is not None:
                raise TypeError(f"{name}: list parameter {bind_name} needs a conversion the start-up path lacks")
            binds[bind_name] = "list"
        elif bind.required:
            binds[bind_name] = _kind(bind.type)
        else:
            processor = bind.type._cached_bind_processor(compiled.dialect)
            constants[bind_name] = processor(bind.value) if processor else bind.value
    columns = tuple((col.key, _kind(col.type)) for col in stmt.selected_columns)
    if not all(key for key, _kind_ in columns):
        raise TypeError(f"{name}: label every computed column, so both paths name it alike")
    return compiled.string, binds, constants, columns


def render_module() -> str:
    body = pprint.pformat({name: compile_sqlite(name) for name in BUILDERS}, width=110, sort_dicts=False)
    return ('"""Generated by ``python -m cardctl.services.statements`` from services/statements.py: do not edit.\n\n'
            "Each named read statement of the start-up path, compiled for SQLite: (SQL, parameters and\n"
            "their kinds, constants, result columns and their kinds). See storage/lite.py.\n"
            '"""\n\n'
            f"SQLITE = {body}\n")


TARGET = Path(__file__).resolve().parent.parent / "storage" / "compiled_sql.py"

if __name__ == "__main__":
    TARGET.write_text(render_module(), encoding="utf-8")
    print(f"wrote {TARGET}", file=sys.stderr)

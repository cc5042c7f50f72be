"""Transactions for the code that runs before there is a Context: ``init`` and the access check
(and recording a refusal). The same ``Tx`` as ``Context.write()`` / ``Context.read()`` give,
on a ``Database`` opened by hand.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Iterator

from sqlalchemy.exc import DBAPIError

from ...errors import AccessRefused, DatabaseError
from ...i18n import _
from . import Tx

if TYPE_CHECKING:
    from ..audit import AuditTrail
    from ..db import Database


@contextlib.contextmanager
def write(db: Database, now: Callable[[], datetime], audit: AuditTrail | None = None) -> Iterator[Tx]:
    """A write transaction (the write lock, commit or roll back) on ``db``."""
    with db.connect_write() as conn:
        yield Tx(conn, now, audit)


@contextlib.contextmanager
def read(db: Database, now: Callable[[], datetime]) -> Iterator[Tx]:
    with db.connect_read() as conn:
        yield Tx(conn, now, None)


@contextlib.contextmanager
def probe(db: Database, now: Callable[[], datetime]) -> Iterator[Tx]:
    """A deferred read of a database that may not be cardctl's yet (init's checks, which are the only user): a login with
    no rights here is refused as such (exit 6), anything else is a database error."""
    try:
        with db.engine.execution_options(cardctl_begin="DEFERRED").connect() as conn:
            yield Tx(conn, now, None)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "42501":  # a PostgreSQL login without rights here
            raise AccessRefused(_("init needs role admin; the login has no rights on {db}").format(
                db=db.display)) from None
        from ..db import describe_db_error  # one wording for missing, busy, unreachable

        raise DatabaseError(describe_db_error(exc, db)) from None


def upgrade_schema(db: Database, keys) -> tuple[str | None, str]:
    """Create or upgrade the schema (Alembic) under the write lock; on PostgreSQL the schema owner
    then (re)grants the operator groups' privileges. Returns (revision before, revision after)."""
    from .. import SCHEMA_REVISION, schema

    with db.translate_errors():
        db.enable_wal()
        with db.engine.begin() as conn:
            db.lock_writers(conn)  # two hosts running init at once: the second finds it done
            _refuse_newer(conn, SCHEMA_REVISION)
            before, after = schema.upgrade(conn, keys)
            if not db.is_sqlite:
                from .. import pg_access

                if pg_access.owns_schema(conn):
                    pg_access.ensure_groups(conn)
        if schema.needs_scrub(before, after):
            schema.scrub(db.engine, db.is_sqlite)
    return before, after


def _refuse_newer(conn, expected: str) -> None:
    # Alembic would fail on a revision it does not know, with a traceback-shaped message
    from alembic.runtime.migration import MigrationContext

    found = MigrationContext.configure(conn).get_current_revision()
    if found is not None and found > expected:
        raise DatabaseError(_("database schema {found} is newer than this cardctl ({expected}); upgrade cardctl")
                            .format(found=found, expected=expected))

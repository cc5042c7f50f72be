"""Engine set-up and transactions for SQLite and PostgreSQL.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts
with ``BEGIN IMMEDIATE`` so two writers queue instead of failing half way.
On PostgreSQL writers take row locks (``SELECT ... FOR UPDATE``) instead.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from ..errors import DatabaseError

# Bumped with every Alembic revision; checked on open without loading Alembic.
SCHEMA_REVISION = "0001"


def normalise_url(raw: str) -> str:
    """A SQLAlchemy URL, or a plain file path meaning SQLite."""
    if "://" in raw:
        return raw
    return "sqlite:///" + str(Path(raw).expanduser().resolve())


def _sqlite_path(url: str) -> str | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    return parsed.database or ":memory:"


class Database:
    def __init__(self, raw_url: str, busy_timeout_s: float = 5.0) -> None:
        self.url = normalise_url(raw_url)
        try:
            parsed = make_url(self.url)
        except ArgumentError:
            raise DatabaseError(f"cannot parse database URL {raw_url!r}") from None
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.display = parsed.render_as_string(hide_password=True)
        self.busy_timeout_s = busy_timeout_s
        self.engine = self._make_engine()

    def _make_engine(self) -> Engine:
        if not self.is_sqlite:
            return create_engine(self.url, pool_pre_ping=False)
        engine = create_engine(
            self.url, connect_args={"timeout": self.busy_timeout_s, "isolation_level": None}
        )
        busy_ms = int(self.busy_timeout_s * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            mode = conn.get_execution_options().get("cardctl_begin", "IMMEDIATE")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    # -- lifecycle -----------------------------------------------------------------

    def exists(self) -> bool:
        path = _sqlite_path(self.url)
        return path is None or path == ":memory:" or os.path.exists(path)

    def require_ready(self) -> None:
        """Refuse a missing, uninitialised or too-new database with the fix named."""
        if not self.exists():
            raise DatabaseError(
                f"database {self.display} does not exist; run 'cardctl init' first (or check --db / CARDCTL_DB)"
            )
        with self.translate_errors(), self.engine.connect() as conn:
            try:
                found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except (OperationalError, ProgrammingError):
                found = None
        if found is None:
            raise DatabaseError(f"database {self.display} is not initialised; run 'cardctl init'")
        if found != SCHEMA_REVISION:
            if found > SCHEMA_REVISION:
                raise DatabaseError(
                    f"database schema {found} is newer than this cardctl ({SCHEMA_REVISION}); upgrade cardctl"
                )
            raise DatabaseError(f"database schema {found} is older than {SCHEMA_REVISION}; run 'cardctl init' to upgrade")

    def enable_wal(self) -> None:
        if self.is_sqlite:
            # on the raw connection: the begin hook would wrap it in BEGIN IMMEDIATE,
            # where SQLite ignores it on a new file and refuses it on an existing one
            raw = self.engine.raw_connection()
            try:
                raw.cursor().execute("PRAGMA journal_mode = WAL")
            finally:
                raw.close()

    # -- transactions --------------------------------------------------------------

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: BEGIN IMMEDIATE on SQLite; commit on success, roll back on error."""
        with self.translate_errors(), Session(self.engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction that takes no write lock."""
        engine = self.engine.execution_options(cardctl_begin="DEFERRED") if self.is_sqlite else self.engine
        with self.translate_errors(), Session(engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    @contextlib.contextmanager
    def translate_errors(self) -> Iterator[None]:
        try:
            yield
        except DBAPIError as exc:
            raise DatabaseError(describe_db_error(exc, self)) from None


def describe_db_error(exc: DBAPIError, db: Database) -> str:
    message = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    lowered = message.lower()
    if "locked" in lowered or "busy" in lowered:
        return (f"database {db.display} is busy (locked by another process for more than "
                f"{db.busy_timeout_s:g} s); retry, or raise CARDCTL_BUSY_TIMEOUT")
    if "no such table" in lowered or "does not exist" in lowered and "relation" in lowered:
        return f"database {db.display} is not initialised; run 'cardctl init'"
    if "unable to open" in lowered or "connection" in lowered:
        return f"cannot open database {db.display}: {message}"
    return f"database error on {db.display}: {message}"

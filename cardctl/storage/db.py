"""Engine set-up and transactions for SQLite and PostgreSQL.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts
with ``BEGIN IMMEDIATE`` so two writers queue instead of failing half way.
PostgreSQL gets the same shape: every write transaction first takes one
transaction-level advisory lock (writers queue, none can deadlock another, a
check-then-act sees what the previous writer committed), waits at most the busy
timeout for it (``lock_timeout``), and reads run in REPEATABLE READ so a read
sees one snapshot, as a SQLite read transaction does.

On PostgreSQL the statement that queues a writer also reads the server's clock
(``clock_timestamp()`` once the lock is held), and ``write_guard`` (set by the
Context) checks and adopts it before anything is written: times that decide locks
come from one clock (clock.py, docs/security.md "A wrong clock").
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, ContextManager, Iterator

from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, ProgrammingError

from ..errors import DatabaseError, InvalidInput
from ..i18n import _
from . import SCHEMA_REVISION


# pg_advisory_xact_lock key every PostgreSQL write transaction takes first: the
# equivalent of SQLite's BEGIN IMMEDIATE (any constant works; this one spells "cardctl")
PG_WRITE_LOCK = 0x63617264_63746C
# the lock first, then the clock: a MATERIALIZED CTE is evaluated before the row it feeds
# (as seconds since the epoch: a timestamptz in text depends on the session's DateStyle)
_PG_LOCK_AND_CLOCK = text("WITH queued AS MATERIALIZED (SELECT pg_advisory_xact_lock(:key)) "
                          "SELECT extract(epoch FROM clock_timestamp())::float8 FROM queued")
_PG_CLOCK = text("SELECT extract(epoch FROM clock_timestamp())::float8")

# as stored (bytes): a damaged newest event must not stop the cursor
_NEWEST_EVENT_TIME = text("SELECT CAST(recorded_at AS BLOB) FROM events ORDER BY seq DESC LIMIT 1")

WriteGuard = Callable[[Connection, "datetime | None"], ContextManager[None]]


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, timezone.utc)


def normalise_url(raw: str) -> str:
    """A SQLAlchemy URL, or a plain file path meaning SQLite."""
    if "://" in raw:
        return raw
    try:
        return "sqlite:///" + str(Path(raw).expanduser().resolve())
    except (RuntimeError, OSError):  # a symbolic link that leads back to itself (RuntimeError before 3.13)
        raise InvalidInput(_("--db {db}: the path cannot be followed (a symbolic link that loops?)").format(
            db=shown_path(raw))) from None


# (backend, driver) pairs cardctl runs on and is tested with; the driver "" is the URL's default
SUPPORTED = {("sqlite", ""), ("sqlite", "pysqlite"), ("postgresql", ""), ("postgresql", "psycopg")}
SUPPORTED_TEXT = _("cardctl runs on SQLite (a file path, or sqlite:///PATH) and PostgreSQL "
                   "(postgresql+psycopg://USER@HOST:PORT/DB)")


def shown_path(raw: str) -> str:
    """A value from the command line as it can be printed: undecodable bytes as escapes."""
    return os.fsencode(raw).decode("utf-8", "backslashreplace")


def checked_url(raw: str) -> str:
    """The SQLAlchemy URL of --db / CARDCTL_DB, refused (exit 2) when it is malformed or names a
    database or driver cardctl does not run on, before any driver is loaded or file touched."""
    if not raw.strip():
        raise InvalidInput(_("--db is empty: give a SQLite file path or a postgresql+psycopg:// URL"))
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:  # bytes the file system took that UTF-8 cannot name: SQLite cannot open them
        raise InvalidInput(_("--db {db}: the name is not valid UTF-8; rename the file or its folder").format(
            db=shown_path(raw))) from None
    url = normalise_url(raw)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidInput(_("cannot parse database URL {url!r}; {supported}").format(
            url=raw, supported=SUPPORTED_TEXT)) from None
    backend, _plus, driver = parsed.drivername.partition("+")
    if (backend, driver) not in SUPPORTED:
        raise InvalidInput(_("unsupported database {scheme}://: {supported}").format(
            scheme=parsed.drivername, supported=SUPPORTED_TEXT))
    if backend == "postgresql":
        import importlib.util

        if importlib.util.find_spec("psycopg") is None:
            raise InvalidInput(_("the PostgreSQL driver psycopg is not installed: pip install 'psycopg[binary]'"))
    path = parsed.database if backend == "sqlite" else None
    if path and path != ":memory:" and os.path.isdir(path):
        raise InvalidInput(_("--db {db} is a directory, not a database file; name a file in it, e.g. {db}/cardctl.db")
                           .format(db=path.rstrip("/") or "/"))
    if path and path != ":memory:" and os.path.exists(path) and not os.path.isfile(path):
        # a FIFO or a device: SQLite would wait on it for ever, or read a stream as a database
        raise InvalidInput(_("--db {db} is not a regular file (a pipe or a device?); name a database file").format(
            db=shown_path(path)))
    return url


def _sqlite_path(url: str) -> str | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    return parsed.database or ":memory:"


class Database:
    def __init__(self, raw_url: str, busy_timeout_s: float = 5.0, read_only: bool = False) -> None:
        self.url = checked_url(raw_url)
        self.read_only = read_only  # commands that only read open the database read-only
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.display = parsed.render_as_string(hide_password=True)
        self.busy_timeout_s = busy_timeout_s
        # checks the clock once a write holds the write lock (given the server's time on PostgreSQL)
        self.write_guard: WriteGuard | None = None
        self.engine = self._make_engine()
        if read_only:
            from .readonly import make_read_only

            make_read_only(self.engine, _sqlite_path(self.url))

    def _make_engine(self) -> Engine:
        if not self.is_sqlite:
            return self._make_pg_engine()
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

    def _make_pg_engine(self) -> Engine:
        engine = create_engine(self.url, pool_pre_ping=False)
        # lock_timeout 0 would mean "wait forever"; CARDCTL_BUSY_TIMEOUT=0 means "do not wait"
        lock_ms = max(1, int(self.busy_timeout_s * 1000))

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            with dbapi_conn.cursor() as cur:
                cur.execute(f"SET lock_timeout = {lock_ms}")
            dbapi_conn.commit()

        return engine

    def lock_writers(self, conn) -> datetime | None:
        """Queue behind every other writer, as BEGIN IMMEDIATE does on SQLite (no-op there);
        on PostgreSQL, the server's time once this writer's turn has come."""
        if self.is_sqlite:
            return None
        return _utc(conn.execute(_PG_LOCK_AND_CLOCK, {"key": PG_WRITE_LOCK}).scalar())

    def _guarded(self, conn, server_now: datetime | None) -> ContextManager[None]:
        return contextlib.nullcontext() if self.write_guard is None else self.write_guard(conn, server_now)

    def newest_event_time(self, conn) -> datetime | None:
        """``recorded_at`` of the newest event (SQLite), or None if there is none or it is unreadable."""
        from .lite import aware_utc

        value = conn.execute(_NEWEST_EVENT_TIME).scalar()
        try:
            return aware_utc(bytes(value).decode("utf-8")) if isinstance(value, (bytes, memoryview)) else None
        except ValueError:  # a damaged trail is audit verify's to report, not a reason to stop writing
            return None

    def server_time(self, conn) -> datetime:
        """The PostgreSQL server's clock now."""
        return _utc(conn.execute(_PG_CLOCK).scalar())

    # -- lifecycle -----------------------------------------------------------------

    def exists(self) -> bool:
        path = _sqlite_path(self.url)
        if path is None or path == ":memory:":
            return True
        try:
            os.stat(path)
        except PermissionError:  # os.path.exists would say "missing" for a folder one may not enter
            raise DatabaseError(_("cannot open database {db}: permission denied (its folder or file is not "
                                  "accessible to this user)").format(db=self.display)) from None
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def require_ready(self) -> None:
        """Refuse a missing, uninitialised or too-new database with the fix named."""
        if not self.exists():
            folder = os.path.dirname(_sqlite_path(self.url) or "")
            if folder and not os.path.isdir(folder):
                raise DatabaseError(_("database {db} does not exist, nor does its folder {folder}; run 'cardctl init' "
                                      "first (or check --db / CARDCTL_DB)").format(db=self.display, folder=folder))
            raise DatabaseError(_("database {db} does not exist; run 'cardctl init' first (or check --db / CARDCTL_DB)")
                                .format(db=self.display))
        # DEFERRED: checking the revision must not queue behind writers on SQLite
        with self.translate_errors(), self.engine.execution_options(cardctl_begin="DEFERRED").connect() as conn:
            try:
                found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except (OperationalError, ProgrammingError) as exc:
                if not self.is_sqlite:  # a login with no rights here sees no schema at all
                    from .pg_access import refuse_login_without_rights

                    refuse_login_without_rights(conn, self, exc)
                found = None
        if found is None:
            raise DatabaseError(_("database {db} is not initialised; run 'cardctl init'").format(db=self.display))
        if found != SCHEMA_REVISION:
            if found > SCHEMA_REVISION:
                newer = _("database schema {found} is newer than this cardctl ({expected}); upgrade cardctl")
                raise DatabaseError(newer.format(found=found, expected=SCHEMA_REVISION))
            raise DatabaseError(_("database schema {found} is older than {expected}; run 'cardctl init' to upgrade")
                                .format(found=found, expected=SCHEMA_REVISION))

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
    #
    # Core connections only (the stores, ``storage/stores``); a use case gets them wrapped
    # in a ``Tx`` by ``Context.write()`` / ``Context.read()``.

    @contextlib.contextmanager
    def connect_write(self) -> Iterator[Connection]:
        """A write transaction: BEGIN IMMEDIATE on SQLite, the advisory write lock on PostgreSQL;
        commit on success, roll back on error."""
        with self.translate_errors(), self.engine.begin() as conn:
            with self._guarded(conn, self.lock_writers(conn)):
                yield conn

    @contextlib.contextmanager
    def connect_read(self) -> Iterator[Connection]:
        """A read transaction that takes no write lock and sees one snapshot throughout."""
        with self.translate_errors(), self._reader().begin() as conn:
            yield conn

    def _reader(self) -> Engine:
        return (self.engine.execution_options(cardctl_begin="DEFERRED") if self.is_sqlite
                else self.engine.execution_options(isolation_level="REPEATABLE READ"))

    @contextlib.contextmanager
    def translate_errors(self) -> Iterator[None]:
        try:
            yield
        except DBAPIError as exc:
            raise DatabaseError(describe_db_error(exc, self)) from None


def describe_db_error(exc: DBAPIError, db: Database) -> str:
    """One line naming what is wrong and the fix, for SQLite's and psycopg's errors alike."""
    raw = str(exc.orig).strip() if exc.orig else str(exc)
    message = raw.splitlines()[0] if raw else type(exc).__name__
    lowered = raw.lower()
    sqlstate = getattr(exc.orig, "sqlstate", None)
    # 55P03: lock_timeout passed; 40P01 / 40001: the server gave up on this transaction
    if sqlstate in ("55P03", "40P01", "40001") or db.is_sqlite and ("locked" in lowered or "busy" in lowered):
        return _("database {db} is busy (locked by another process for more than {seconds:g} s); retry, or raise "
                 "CARDCTL_BUSY_TIMEOUT").format(db=db.display, seconds=db.busy_timeout_s)
    if sqlstate == "42P01" or "no such table" in lowered:
        return _("database {db} is not initialised; run 'cardctl init'").format(db=db.display)
    if not db.is_sqlite and sqlstate is None:
        return _describe_pg_connect(raw, message, db)
    if "unable to open" in lowered or "connection" in lowered:
        return _("cannot open database {db}: {error}").format(db=db.display, error=message)
    return _("database error on {db}: {error}").format(db=db.display, error=message)


def _describe_pg_connect(raw: str, message: str, db: Database) -> str:
    # psycopg reports failures to connect without a SQLSTATE; the server's FATAL line says why
    fatal = next((line.split("FATAL:", 1)[1].strip() for line in raw.splitlines() if "FATAL:" in line), None)
    where = db.display
    if fatal and fatal.startswith("database ") and fatal.endswith("does not exist"):
        return _("database {db} does not exist on the server; create it (createdb --owner USER NAME), then run "
                 "'cardctl init'").format(db=where)
    if fatal and ("password authentication failed" in fatal or "role " in fatal):
        return _("cannot log in to database {db}: {error}; check the user and password in --db / CARDCTL_DB").format(
            db=where, error=fatal)
    if fatal:
        return _("cannot open database {db}: {error}").format(db=where, error=fatal)
    if "connection" in raw.lower():
        reason = message.rsplit("failed:", 1)[-1].strip()
        return _("cannot reach the PostgreSQL server of database {db}: {error}; check that it is running and the "
                 "host and port in --db / CARDCTL_DB").format(db=where, error=reason)
    return _("database error on {db}: {error}").format(db=where, error=message)

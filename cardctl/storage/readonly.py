"""Opening the database read-only for the commands that only read.

SQLite: the file is opened with ``mode=ro``, so not one byte of it can change. In WAL
mode a reader also needs the ``-shm`` index beside the file; SQLite creates it when the
folder is writable. When it is not (an auditor's read-only copy, a read-only share) and
no ``-wal`` file holds uncheckpointed changes, the file is complete as it stands and is
opened ``immutable``. PostgreSQL: every transaction of the session is READ ONLY.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DatabaseError
from ..i18n import _

if TYPE_CHECKING:  # the sqlite3 start-up path (storage/lite.py) uses connect_read_only without SQLAlchemy
    from sqlalchemy.engine import Engine


def make_read_only(engine: Engine, sqlite_path: str | None) -> None:
    if sqlite_path is None:
        _postgresql_read_only(engine)
    elif sqlite_path != ":memory:":
        _sqlite_read_only(engine, sqlite_path)


def _postgresql_read_only(engine: Engine) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        with dbapi_conn.cursor() as cur:
            cur.execute("SET default_transaction_read_only = on")
        dbapi_conn.commit()


def _sqlite_read_only(engine: Engine, path: str) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, _cargs, cparams):
        return connect_read_only(path, {k: v for k, v in cparams.items() if k != "uri"})


def connect_read_only(path: str, options: dict) -> sqlite3.Connection:
    uri = Path(path).absolute().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, **options)
    try:
        # reading the schema opens the WAL index: a missing -shm fails here, not mid-command
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        if not _complete_without_wal(path, exc):
            raise
    conn = sqlite3.connect(uri + "&immutable=1", uri=True, **options)
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return conn


def _complete_without_wal(path: str, exc: sqlite3.OperationalError) -> bool:
    """True when the -shm index cannot be made but the file alone holds every change."""
    text = str(exc).lower()
    if "readonly" not in text and "unable to open" not in text:
        return False
    wal = Path(path + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise DatabaseError(
            _("cannot open {file} read-only: its write-ahead log {wal} holds changes not yet in the file and the "
              "folder is not writable for this user; retry when no one is writing, or read a copy "
              "(sqlite3 {name} '.backup copy.db')").format(file=path, wal=wal.name, name=Path(path).name)) from None
    return os.access(path, os.R_OK)

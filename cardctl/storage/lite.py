"""The start-up path: a few named read statements on sqlite3, without importing SQLAlchemy.

``import sqlalchemy`` alone costs more than half of what ``status CARD`` or an idle cron
sweep may take from interpreter start to exit (their targets: README, "Performance"). So on an SQLite database these
two commands first try this path: the same Core statements, compiled to SQL text ahead of
time (``compiled_sql.py``, generated from ``services/statements.py`` and checked by
tests/test_startup_path.py), run through the standard library's ``sqlite3`` in one
read-only, deferred transaction. Bound values and results are converted as the
statements' column types would (``UTCDateTime``: naive UTC text at rest, aware UTC out).

It handles the plain case only. Whatever it cannot answer (a PostgreSQL URL, a missing or
busy file, a schema of another revision, another key, an operator who may not act, any
sqlite3 error) raises ``Unavailable`` before anything is printed, and the command runs on
SQLAlchemy as usual, which gives the proper message, exit code and audit record.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections import namedtuple
from datetime import date, datetime, timezone
from typing import Any, Iterator

from ..errors import CardctlError

# The text SQLAlchemy renders for an empty IN list, so that NOT IN () stays true as well
EMPTY_SET = "(SELECT 1 FROM (SELECT 1) WHERE 1!=1)"


class Unavailable(Exception):
    """This path cannot answer; run the command on SQLAlchemy instead."""


def naive_utc(value: datetime) -> datetime:
    """A bound time as it is stored: naive UTC. Shared with ``tables.UTCDateTime``."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def aware_utc(value: datetime | str | None) -> datetime | None:
    """A stored time as it is read: aware UTC. Shared with ``tables.UTCDateTime``."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc)


def _utc_text(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DATETIME storage format; comparisons on SQLite compare this text
    if value is None:
        return None
    value = naive_utc(value)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (value.year, value.month, value.day, value.hour, value.minute,
                                                   value.second, value.microsecond)


BIND = {"utc": _utc_text}
RESULT = {"utc": aware_utc, "date": lambda v: None if v is None else date.fromisoformat(v)}


def sqlite_path(raw_url: str) -> str:
    """The file of a plain path or a ``sqlite:///`` URL without options; anything else is not ours."""
    if "://" not in raw_url:
        path = raw_url
    elif raw_url.startswith("sqlite:///") and "?" not in raw_url:
        path = raw_url[len("sqlite:///"):]
    else:
        raise Unavailable(raw_url)
    if not path or path == ":memory:":
        raise Unavailable(raw_url)
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise Unavailable(path)  # the full path says what is wrong
    return path


class LiteConnection:
    """One read transaction; ``run_named`` is what ``services.reads.run`` calls."""

    is_lite = True

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def run_named(self, name: str, params: dict[str, Any]) -> list:
        from .compiled_sql import SQLITE  # data only; imported here so tables.py can share the conversions

        sql, binds, constants, columns = SQLITE[name]
        values = dict(constants)
        for key, kind in binds.items():
            value = params[key]
            if kind == "list":
                items = list(value)
                names = [f"{key}__{i}" for i in range(len(items))]
                rendered = "(" + ", ".join(f":{n}" for n in names) + ")" if items else EMPTY_SET
                sql = sql.replace(f"(__[POSTCOMPILE_{key}])", rendered)
                values.update(zip(names, items))
            else:
                values[key] = BIND[kind](value) if kind else value
        try:
            rows = self.raw.execute(sql, values).fetchall()
        except sqlite3.Error as exc:
            raise Unavailable(str(exc)) from None
        row_type = _row_type(name, tuple(column for column, _kind in columns))
        converters = [(i, RESULT[kind]) for i, (_column, kind) in enumerate(columns) if kind]
        if converters:
            rows = [list(row) for row in rows]
            for row in rows:
                for i, convert in converters:
                    row[i] = convert(row[i])
        return [row_type._make(row) for row in rows]


_ROW_TYPES: dict[str, type] = {}


def _row_type(name: str, fields: tuple[str, ...]) -> type:
    found = _ROW_TYPES.get(name)
    if found is None:
        found = _ROW_TYPES[name] = namedtuple(f"{name}_row", fields, rename=True)
    return found


class LiteDatabase:
    """The read-only face of ``storage.db.Database`` the start-up path needs."""

    is_sqlite = True
    read_only = True

    def __init__(self, raw_url: str, busy_timeout_s: float) -> None:
        self.path = sqlite_path(raw_url)
        self.display = "sqlite:///" + self.path
        self.busy_timeout_s = busy_timeout_s
        self._raw: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._raw is None:
            from .readonly import connect_read_only

            try:
                self._raw = connect_read_only(self.path, {"timeout": self.busy_timeout_s, "isolation_level": None})
            except (sqlite3.Error, CardctlError) as exc:  # the full path words it
                raise Unavailable(str(exc)) from None
        return self._raw

    @contextlib.contextmanager
    def connect_read(self) -> Iterator[LiteConnection]:
        raw = self._connection()
        try:
            raw.execute("BEGIN DEFERRED")  # one snapshot for every statement of the command
        except sqlite3.Error as exc:
            raise Unavailable(str(exc)) from None
        try:
            yield LiteConnection(raw)
        finally:
            try:
                raw.execute("ROLLBACK")  # it only read
            except sqlite3.Error:  # a connection already broken: the error that broke it is the one to see
                pass

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None

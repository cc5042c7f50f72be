"""``cardctl --version``: cardctl's, Python's, SQLAlchemy's and the database engine's versions.

Loaded only for --version. It needs no key file and never fails: a PostgreSQL server that
cannot be reached is reported as such. SQLAlchemy's version comes from the package metadata,
so nothing here imports it unless a PostgreSQL server is asked for its version.
"""

from __future__ import annotations

import platform
import sqlite3
from importlib import metadata

from .. import __version__
from ..i18n import _, localize

CONNECT_TIMEOUT_S = 3  # --version must answer quickly even when the server is down


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return localize(_("not installed"))


def lines(db: str | None) -> list[str]:
    """One line per component; ``db`` is --db / CARDCTL_DB (None: the default SQLite file)."""
    found = [f"cardctl {__version__}", f"Python {platform.python_version()} ({platform.python_implementation()})",
             f"SQLAlchemy {_package('sqlalchemy')}",
             localize(_("SQLite {version} (library)").format(version=sqlite3.sqlite_version))]
    postgresql = db is not None and "://" in db and db.split("://", 1)[0].split("+", 1)[0] == "postgresql"
    if postgresql:
        found.append(f"psycopg {_package('psycopg')}")
        found.append(localize(_server_version(db)))
    else:
        found.append(localize(_("PostgreSQL: no PostgreSQL database configured (--db / CARDCTL_DB)")))
    return found


def _server_version(url: str):
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    try:
        parsed = make_url(url)
        shown = parsed.render_as_string(hide_password=True)
        engine = create_engine(parsed, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
        try:
            with engine.connect() as conn:
                version = conn.exec_driver_sql("SHOW server_version").scalar()
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 - --version never fails; it says why it has no answer
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return _("PostgreSQL: server not reachable ({reason})").format(
            reason=reason[0] if reason else type(exc).__name__)
    return _("PostgreSQL {version} (server of {db})").format(version=version, db=shown)

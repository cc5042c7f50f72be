"""``cardctl --version``: cardctl's, Python's, SQLAlchemy's and the database engine's versions.

Loaded only for --version. It needs no key file and never fails: a PostgreSQL server that
cannot be reached is reported as such. SQLAlchemy's version comes from the package metadata,
so nothing imports it unless a PostgreSQL server is asked for its version (storage/urls.py).
"""

from __future__ import annotations

import platform
import sqlite3
from importlib import metadata

from .. import __version__
from ..i18n import _, localize


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
        from ..storage.urls import server_version

        found.append(localize(server_version(db)))
    else:
        found.append(localize(_("PostgreSQL: no PostgreSQL database configured (--db / CARDCTL_DB)")))
    return found

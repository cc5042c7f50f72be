"""What cardctl asks of a --db URL before (or without) opening the database: which SQLite file
it names, and the PostgreSQL server's version for ``--version``. Here because parsing a URL and
talking to a server is SQLAlchemy's work, which only cardctl/storage does (docs/architecture.md).

SQLAlchemy is imported inside the functions: the callers (config.py, cli/version.py) run on
paths that must not load it (tests/test_startup.py).
"""

from __future__ import annotations

from pathlib import Path

from ..i18n import _

CONNECT_TIMEOUT_S = 3  # --version must answer quickly even when the server is down


def sqlite_file(db_url: str) -> Path | None:
    """The file of an SQLite database (a plain path or a sqlite:/// URL), None for any other."""
    if "://" not in db_url:
        return Path(db_url).expanduser()
    if not db_url.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    name = make_url(db_url).database
    return None if not name or name == ":memory:" else Path(name).expanduser()


def server_version(url: str):
    """``PostgreSQL 16.4 (server of URL)``, or why there is no answer; never raises."""
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

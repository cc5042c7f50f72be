"""Create or upgrade the schema with Alembic; seed what a new database needs."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection

MIGRATIONS = Path(__file__).with_name("migrations")


# the revision that seals the holders' birth dates (migrations/versions/0003_personal_data.py)
SEALS_PERSONAL_DATA = "0003"


def alembic_config(connection: Connection | None = None, keys=None):
    """``keys`` (a ``cardctl.keys.Keys``): migrations that convert personal data need them."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    cfg.attributes["keys"] = keys
    return cfg


def upgrade(connection: Connection, keys=None) -> tuple[str | None, str]:
    """Upgrade to head on this connection; returns (revision before, revision after)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    before = MigrationContext.configure(connection).get_current_revision()
    command.upgrade(alembic_config(connection, keys), "head")
    after = MigrationContext.configure(connection).get_current_revision()
    return before, after


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def needs_scrub(before: str | None, after: str) -> bool:
    """True when this upgrade dropped clear personal data that may linger in free pages."""
    return before is not None and before < SEALS_PERSONAL_DATA <= after


def scrub(engine, is_sqlite: bool) -> None:
    """Rewrite the files after personal data was dropped, outside any transaction, so a copy
    of the database (file and WAL) holds no trace of it: SQLite keeps dropped rows in free
    pages and in the WAL, PostgreSQL in dead tuples and dropped columns (docs/security.md)."""
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        if is_sqlite:
            driver.execute("VACUUM")
            driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            driver.autocommit = True  # VACUUM refuses to run in a transaction
            try:
                driver.execute("VACUUM FULL holders")
            finally:
                driver.autocommit = False
    finally:
        raw.close()

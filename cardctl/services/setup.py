"""``cardctl init``: key file, schema (Alembic), default policy, audit head, the first admin."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from ..clock import Clock, system_clock
from ..config import Settings
from ..domain.policy import DEFAULT
from ..errors import DatabaseError, KeyFileError
from ..i18n import _
from ..keys import create_key_file, load_keys
from ..storage import schema
from ..storage.audit import Actor, AuditTrail, EventDraft, init_head
from ..storage.db import SCHEMA_REVISION, Database, _sqlite_path
from ..storage.models import Meta, Operator, Policy
from .access import acting_login, check_may_init

_DEFAULT_FIELDS = ("max_attempts", "lock_hours", "temp_loss_days", "default_pin", "minor_age")


@dataclass(frozen=True)
class InitReport:
    database: str
    key_file: str
    key_created: bool
    revision_before: str | None
    revision_after: str
    bootstrap_admin: str | None = None  # the login made admin because the database had no operator

    def record(self) -> dict:
        return {"database": self.database, "key_file": self.key_file, "key_created": self.key_created,
                "schema_before": self.revision_before, "schema": self.revision_after,
                "bootstrap_admin": self.bootstrap_admin}


def init_database(settings: Settings, clock: Clock = system_clock) -> InitReport:
    db = Database(settings.db_url, settings.busy_timeout_s)
    path = _sqlite_path(db.url)
    if path and path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(_("cannot create the folder for {path}: {error}").format(
                path=path, error=exc.strerror)) from None
    check_may_init(db, settings, clock)  # before anything is written, the key file included
    created = create_key_file(settings.key_file)
    keys = load_keys(settings.key_file)
    with db.translate_errors():
        db.enable_wal()
        with db.engine.begin() as conn:
            db.lock_writers(conn)  # two hosts running init at once: the second finds it done
            _refuse_newer(conn, db)
            before, after = schema.upgrade(conn, keys)
            if not db.is_sqlite:
                _grant_operator_groups(conn)
        if schema.needs_scrub(before, after):
            schema.scrub(db.engine, db.is_sqlite)
    if after != SCHEMA_REVISION:
        raise DatabaseError(_("schema is at {found}, this cardctl expects {expected}").format(
            found=after, expected=SCHEMA_REVISION))
    now = clock()
    with db.write() as session:
        stored = session.get(Meta, "key_fingerprint")
        if stored is None:
            session.add(Meta(key="key_fingerprint", value=keys.fingerprint))
        elif stored.value != keys.fingerprint:
            raise KeyFileError(_("key file {path} does not belong to this database").format(path=settings.key_file))
        if session.get(Policy, "") is None:
            session.add(Policy(region_prefix="", **{f: getattr(DEFAULT, f) for f in _DEFAULT_FIELDS}))
        init_head(session)
        session.flush()
        actor = Actor(settings.operator, settings.os_user, settings.channel)
        outcome = "created" if before is None else ("upgraded" if before != after else "unchanged")
        admin = _bootstrap_admin(session, db, settings, now)
        detail = {"schema": after, **({"bootstrap_admin": admin} if admin else {})}
        AuditTrail(keys.audit_key, actor).append(session, [EventDraft("db.init", outcome, detail=detail)], now)
    return InitReport(db.display, str(settings.key_file), created, before, after, admin)


def _bootstrap_admin(session, db: Database, settings: Settings, now) -> str | None:
    """A database without operators makes whoever runs init its admin (on PostgreSQL: the login)."""
    if session.execute(select(Operator.login).limit(1)).first() is not None:
        return None
    login = acting_login(db, settings, session.connection())
    session.add(Operator(login=login, role="admin", created_at=now, created_by=login))
    return login


def _grant_operator_groups(conn) -> None:
    """PostgreSQL: the schema owner (re)grants the operator groups' privileges at every init."""
    from ..storage import pg_access

    if pg_access.owns_schema(conn):
        pg_access.ensure_groups(conn)


def _refuse_newer(conn, db: Database) -> None:
    # Alembic would fail on a revision it does not know, with a traceback-shaped message
    from alembic.runtime.migration import MigrationContext

    found = MigrationContext.configure(conn).get_current_revision()
    if found is not None and found > SCHEMA_REVISION:
        raise DatabaseError(_("database schema {found} is newer than this cardctl ({expected}); upgrade cardctl")
                            .format(found=found, expected=SCHEMA_REVISION))

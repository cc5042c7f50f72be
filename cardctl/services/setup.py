"""``cardctl init``: key file, schema (Alembic), default policy, audit head, the first admin.

Files it creates are private (0600; 0640/0660 for ``CARDCTL_GROUP``, README "Files and keys"):
the SQLite file (its -wal and -shm take the database file's mode), the master key file and,
for a new key, the Ed25519 signing key beside it. A database that records a key fingerprint
never gets a new key: without its key file init says to restore it (docs/security.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from ..clock import Clock, system_clock
from ..config import Settings
from ..domain.policy import DEFAULT
from ..errors import DatabaseError, KeyFileError
from ..i18n import _
from ..keys import create_key_file, load_keys, operators_group
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
    signing_key: str | None = None  # created with a new key: the signing key file and its public key id
    signing_key_id: str | None = None

    def record(self) -> dict:
        return {"database": self.database, "key_file": self.key_file, "key_created": self.key_created,
                "schema_before": self.revision_before, "schema": self.revision_after,
                "bootstrap_admin": self.bootstrap_admin, "signing_key": self.signing_key,
                "signing_key_id": self.signing_key_id}


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
    recorded = _recorded_fingerprint(db)
    if recorded is not None and not settings.key_file.exists():
        from .context import raise_key_missing

        raise_key_missing(settings, db.display, recorded)
    created = create_key_file(settings.key_file)
    keys = load_keys(settings.key_file)
    if keys.master is None:
        raise KeyFileError(_("init needs the master key file; {path} is a role key file").format(path=settings.key_file))
    if recorded is not None and recorded != keys.fingerprint:
        raise KeyFileError(_("key file {path} does not belong to this database (fingerprint {fingerprint}, "
                             "database expects {expected})").format(
            path=settings.key_file, fingerprint=keys.fingerprint, expected=recorded))
    signing, signing_id = _new_signing_key(settings) if created else (None, None)
    if path and path != ":memory:":
        _create_private_database(Path(path))
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
        if not db.is_sqlite:
            _store_chain_key(session.connection(), keys.audit_key)  # only once the key is known to belong
        if session.get(Policy, "") is None:
            session.add(Policy(region_prefix="", **{f: getattr(DEFAULT, f) for f in _DEFAULT_FIELDS}))
        init_head(session)
        session.flush()
        actor = Actor(settings.operator, settings.os_user, settings.channel)
        outcome = "created" if before is None else ("upgraded" if before != after else "unchanged")
        admin = _bootstrap_admin(session, db, settings, now)
        detail = {"schema": after, **({"bootstrap_admin": admin} if admin else {})}
        AuditTrail(keys.audit_key, actor).append(session, [EventDraft("db.init", outcome, detail=detail)], now)
    return InitReport(db.display, str(settings.key_file), created, before, after, admin, signing, signing_id)


def _recorded_fingerprint(db: Database) -> str | None:
    """The key fingerprint an existing database records, if any (None for a new one)."""
    if not db.exists():
        return None
    from sqlalchemy import inspect

    from .reads import scalar

    with db.translate_errors(), db.engine.execution_options(cardctl_begin="DEFERRED").connect() as conn:
        if "meta" not in inspect(conn).get_table_names():
            return None
        return scalar(conn, "key_fingerprint")


def _new_signing_key(settings: Settings) -> tuple[str | None, str | None]:
    """With a new master key, a new signing key beside it, unless one is there already."""
    from ..storage.signing import create_signing_key, key_id, signing_key_path

    path = signing_key_path(settings)
    public = create_signing_key(path)
    return (str(path), key_id(public)) if public is not None else (None, None)


def _create_private_database(path: Path) -> None:
    """An empty file is an empty SQLite database: made here with the private mode, SQLite's -wal and
    -shm take the same (SQLite copies the database file's permissions to them)."""
    gid = operators_group()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise DatabaseError(_("cannot create database {path}: {error}").format(path=path, error=exc.strerror)) from None
    try:
        if gid is not None:
            os.fchown(fd, -1, gid)
        os.fchmod(fd, 0o600 if gid is None else 0o660)
    finally:
        os.close(fd)


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


def _store_chain_key(conn, audit_key: bytes) -> None:
    """PostgreSQL: the refusal function hashes with the audit key, which the owner keeps in a
    table only it can read (docs/security.md)."""
    from ..storage import pg_access

    if pg_access.owns_schema(conn):
        pg_access.store_chain_key(conn, audit_key)


def _refuse_newer(conn, db: Database) -> None:
    # Alembic would fail on a revision it does not know, with a traceback-shaped message
    from alembic.runtime.migration import MigrationContext

    found = MigrationContext.configure(conn).get_current_revision()
    if found is not None and found > SCHEMA_REVISION:
        raise DatabaseError(_("database schema {found} is newer than this cardctl ({expected}); upgrade cardctl")
                            .format(found=found, expected=SCHEMA_REVISION))

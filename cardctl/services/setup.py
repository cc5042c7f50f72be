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

from ..clock import Clock, system_clock
from ..config import Settings
from ..domain import hashing
from ..domain.events import Action, Outcome
from ..domain.policy import DEFAULT
from ..domain.roles import Role
from ..errors import DatabaseError, KeyFileError
from ..i18n import _
from ..keys import create_key_file, load_keys, operators_group
from ..storage.audit import Actor, AuditTrail, EventDraft
from ..storage.db import SCHEMA_REVISION, Database, _sqlite_path
from ..storage.stores import direct
from ..storage.stores.meta import KEY_FINGERPRINT
from .access import acting_login, check_may_init


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
    recorded = _recorded_fingerprint(db, clock)
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
    before, after = direct.upgrade_schema(db, keys)
    if after != SCHEMA_REVISION:
        raise DatabaseError(_("schema is at {found}, this cardctl expects {expected}").format(
            found=after, expected=SCHEMA_REVISION))
    now = clock()
    trail = AuditTrail(keys.audit_key, Actor(settings.operator, settings.os_user, settings.channel))
    with direct.write(db, lambda: now, trail) as tx:
        stored = tx.meta.get(KEY_FINGERPRINT)
        if stored is None:
            tx.meta.add(KEY_FINGERPRINT, keys.fingerprint)
        elif stored != keys.fingerprint:
            raise KeyFileError(_("key file {path} does not belong to this database").format(path=settings.key_file))
        if not db.is_sqlite:
            tx.meta.store_chain_key(keys.audit_key)  # only once the key is known to belong
        if before is None:  # an older database without it means the default (docs/security.md)
            tx.meta.add(hashing.SETTING, str(hashing.DEFAULT_COST))
        if tx.policies.get("") is None:
            tx.policies.add("", DEFAULT)
        tx.trail.init_head()
        outcome = Outcome.CREATED if before is None else (Outcome.UPGRADED if before != after else Outcome.UNCHANGED)
        admin = _bootstrap_admin(tx, settings, now)
        detail = {"schema": after, **({"bootstrap_admin": admin} if admin else {})}
        tx.record([EventDraft(Action.DB_INIT, outcome, detail=detail)])
    return InitReport(db.display, str(settings.key_file), created, before, after, admin, signing, signing_id)


def _recorded_fingerprint(db: Database, clock: Clock) -> str | None:
    """The key fingerprint an existing database records, if any (None for a new one)."""
    if not db.exists():
        return None
    with direct.probe(db, clock) as tx:
        if "meta" not in tx.meta.table_names():
            return None
        return tx.meta.get(KEY_FINGERPRINT)


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


def _bootstrap_admin(tx, settings: Settings, now) -> str | None:
    """A database without operators makes whoever runs init its admin (on PostgreSQL: the login)."""
    if tx.operators.any():
        return None
    login = acting_login(tx, settings)
    tx.operators.add(login, Role.ADMIN, now, login)
    return login

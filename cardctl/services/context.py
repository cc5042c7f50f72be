"""What every use case needs: the database, the keys, who is acting, and the clock.

Imports no SQLAlchemy: ``open_quick`` serves ``status CARD`` and the idle cron sweep on
the sqlite3 start-up path (``storage/lite.py``); ``open`` is everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ..clock import Clock, system_clock
from ..config import Settings
from ..domain import policy as policy_rules
from ..domain.policy import Policy
from ..domain.roles import Role
from ..errors import CardctlError, DatabaseError, KeyFileError
from ..i18n import _
from ..keys import KeyFileMissing, Keys, load_keys
from .reads import run, scalar, standing_of

if TYPE_CHECKING:
    from ..storage.audit import AuditTrail
    from ..storage.db import Database
    from ..storage.lite import LiteDatabase

POLICY_FIELDS = ("max_attempts", "lock_hours", "temp_loss_days", "default_pin", "minor_age")


@dataclass
class Context:
    db: Database | LiteDatabase
    keys: Keys
    settings: Settings
    clock: Clock = system_clock
    _policies: dict[str, Policy] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, clock: Clock = system_clock, read_only: bool = False) -> "Context":
        """Open an initialised database with the key that belongs to it."""
        from ..storage.db import Database

        db = Database(settings.db_url, settings.busy_timeout_s, read_only=read_only)
        db.require_ready()
        try:
            keys = load_keys(settings.key_file)
        except KeyFileMissing:
            with db.connect_read() as conn:
                raise_key_missing(settings, db.display, scalar(conn, "key_fingerprint"))
            raise
        ctx = cls(db, keys, settings, clock)
        ctx.check_key()
        return ctx

    @classmethod
    def open_quick(cls, settings: Settings, clock: Clock, needed: Role) -> "Context | None":
        """The context of the sqlite3 start-up path (read-only), or None where it cannot serve:
        not an SQLite file, another schema revision or key, an operator without ``needed``, or any
        error. The caller then opens the database the usual way, which says what is wrong."""
        from ..storage import SCHEMA_REVISION
        from ..storage.lite import LiteDatabase, Unavailable

        try:
            db = LiteDatabase(settings.db_url, settings.busy_timeout_s)
            keys = load_keys(settings.key_file)
            with db.connect_read() as conn:
                ready = (scalar(conn, "schema_revision") == SCHEMA_REVISION
                         and scalar(conn, "key_fingerprint") == keys.fingerprint
                         and standing_of(conn, settings.os_user).allows(needed))
        except (Unavailable, CardctlError):
            return None
        return cls(db, keys, settings, clock) if ready else None

    def now(self) -> datetime:
        return self.clock()

    @property
    def audit(self) -> AuditTrail:
        from ..storage.audit import Actor, AuditTrail

        actor = Actor(self.settings.operator, self.settings.os_user, self.settings.channel)
        return AuditTrail(self.keys.audit_key, actor)

    def check_key(self) -> None:
        with self.db.connect_read() as conn:
            stored = scalar(conn, "key_fingerprint")
        if stored is None:  # init commits the schema, then the rest: it was cut short in between
            raise DatabaseError(_("database {db} is not fully initialised; run 'cardctl init'").format(
                db=self.db.display))
        if stored != self.keys.fingerprint:
            raise KeyFileError(_("key file {path} does not belong to this database (fingerprint {fingerprint}, "
                                 "database expects {expected})").format(
                path=self.settings.key_file, fingerprint=self.keys.fingerprint, expected=stored))

    def policies(self, session) -> dict[str, Policy]:
        """Every region's policy, read once (``session``: an ORM Session or a Core Connection)."""
        if self._policies is None:
            rows = run(session, "policies")
            self._policies = {
                row.region_prefix: Policy(**{f: getattr(row, f) for f in POLICY_FIELDS}) for row in rows
            }
        return self._policies

    def policy_for(self, session, region: str) -> Policy:
        return policy_rules.resolve(self.policies(session), region)


def raise_key_missing(settings: Settings, db: str, fingerprint: str | None) -> None:
    """A database that has a key: its key file must be restored, never replaced by a new one."""
    if fingerprint is None:
        return
    raise KeyFileMissing(_("key file {path} not found; database {db} has a key (fingerprint {fingerprint}): "
                           "restore that key file from backup, or give its path with --key-file / CARDCTL_KEY_FILE "
                           "('cardctl init' never makes a new key for a database that has one)").format(
        path=settings.key_file, db=db, fingerprint=fingerprint))

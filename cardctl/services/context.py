"""What every use case needs: the database, the keys, who is acting, and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from ..clock import Clock, system_clock
from ..config import Settings
from ..domain import policy as policy_rules
from ..domain.policy import Policy
from ..errors import DatabaseError, KeyFileError
from ..i18n import _
from ..keys import Keys, load_keys
from ..storage import tables
from ..storage.audit import Actor, AuditTrail
from ..storage.db import Database

POLICY_FIELDS = ("max_attempts", "lock_hours", "temp_loss_days", "default_pin", "minor_age")


@dataclass
class Context:
    db: Database
    keys: Keys
    settings: Settings
    clock: Clock = system_clock
    _policies: dict[str, Policy] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, clock: Clock = system_clock, read_only: bool = False) -> "Context":
        """Open an initialised database with the key that belongs to it."""
        db = Database(settings.db_url, settings.busy_timeout_s, read_only=read_only)
        db.require_ready()
        keys = load_keys(settings.key_file)
        ctx = cls(db, keys, settings, clock)
        ctx.check_key()
        return ctx

    def now(self) -> datetime:
        return self.clock()

    @property
    def audit(self) -> AuditTrail:
        actor = Actor(self.settings.operator, self.settings.os_user, self.settings.channel)
        return AuditTrail(self.keys.audit_key, actor)

    def check_key(self) -> None:
        with self.db.connect_read() as conn:
            stored = conn.scalar(select(tables.meta.c.value).where(tables.meta.c.key == "key_fingerprint"))
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
            rows = session.execute(select(tables.policies)).all()
            self._policies = {
                row.region_prefix: Policy(**{f: getattr(row, f) for f in POLICY_FIELDS}) for row in rows
            }
        return self._policies

    def policy_for(self, session, region: str) -> Policy:
        return policy_rules.resolve(self.policies(session), region)

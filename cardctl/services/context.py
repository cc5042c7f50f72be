"""What every use case needs: the database, the keys, who is acting, and the clock.

Imports no SQLAlchemy. This is where a command's read store (``storage/reads.py``) is chosen,
once: ``open_quick`` gives ``status CARD`` and the idle cron sweep the sqlite3 start-up path
(``storage/lite.py``) with a way back to the full path; ``open`` is SQLAlchemy Core for
everything else. ``reading`` runs a read on the chosen store, and on the full path again
where the start-up path cannot answer: no command handles that itself.

"Now" comes from one clock (clock.py, docs/security.md "A wrong clock"): with this
machine's clock on PostgreSQL, the server's time, read when the context opens (for reads)
and again by every write once it holds the write lock, which refuses a host clock off by
more than the tolerance and then uses the server's time throughout the transaction.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable, Iterator, TypeVar

from ..clock import Clock, check_not_back, check_skew, is_host_clock, system_clock
from ..config import Settings
from ..domain import hashing
from ..domain import policy as policy_rules
from ..domain.policy import Policy
from ..domain.roles import Role
from ..errors import CardctlError, DatabaseError, KeyFileError
from ..i18n import _
from ..keys import KeyFileMissing, Keys, load_keys
from ..storage.reads import POLICY_FIELDS, PolicySource, ReadSource, ReadStore, Unavailable

if TYPE_CHECKING:
    from ..storage.audit import AuditTrail
    from ..storage.db import Database
    from ..storage.lite import LiteDatabase
    from ..storage.stores import Tx

__all__ = ["POLICY_FIELDS", "Context", "raise_key_missing"]

T = TypeVar("T")


@dataclass
class Context:
    db: Database | LiteDatabase
    keys: Keys
    settings: Settings
    clock: Clock = system_clock
    # where read transactions come from: Core, or the start-up path (``reading``)
    source: ReadSource | None = field(default=None, repr=False)
    # the start-up path's way back: opens the full context of the same command and role
    fallback: Callable[[], "Context"] | None = field(default=None, repr=False)
    _policies: dict[str, Policy] | None = field(default=None, repr=False)
    # PostgreSQL with this machine's clock: the server's time minus the host's, and the
    # server's time of the write transaction in progress
    _server_offset: timedelta | None = field(default=None, repr=False)
    _write_now: datetime | None = field(default=None, repr=False)
    _database_cost: int | None = field(default=None, repr=False)  # the database's bcrypt cost, read when first needed
    # the batch run in progress (services/runs.py): written on every event while it is set
    run_id: str | None = None

    @classmethod
    def open(cls, settings: Settings, clock: Clock = system_clock, read_only: bool = False) -> "Context":
        """Open an initialised database with the key that belongs to it."""
        from ..storage.db import Database
        from ..storage.stores.reads import CoreSource

        db = Database(settings.db_url, settings.busy_timeout_s, read_only=read_only)
        db.require_ready()
        source = CoreSource(db)
        try:
            keys = load_keys(settings.key_file)
        except KeyFileMissing:
            with source.read_store() as store:
                raise_key_missing(settings, db.display, store.key_fingerprint())
            raise
        ctx = cls(db, keys, settings, clock, source)
        ctx.check_key()
        if is_host_clock(clock):
            db.write_guard = ctx._write_clock
        return ctx

    @classmethod
    def open_quick(cls, settings: Settings, clock: Clock, needed: Role,
                   fallback: Callable[[], "Context"] | None = None) -> "Context | None":
        """The context of the sqlite3 start-up path (read-only), or None where it cannot serve:
        not an SQLite file, another schema revision or key, an operator without ``needed``, or any
        error. The caller then opens the database the usual way, which says what is wrong.
        ``fallback`` opens that usual context should a later read meet what this path cannot
        answer (``reading``)."""
        from ..storage import SCHEMA_REVISION
        from ..storage.lite import LiteDatabase

        try:
            db = LiteDatabase(settings.db_url, settings.busy_timeout_s)
            keys = load_keys(settings.key_file)
            with db.read_store() as store:
                ready = (store.schema_revision() == SCHEMA_REVISION
                         and store.key_fingerprint() == keys.fingerprint
                         and store.operator_standing(settings.os_user).allows(needed))
        except (Unavailable, CardctlError):
            return None
        return cls(db, keys, settings, clock, db, fallback) if ready else None

    def reading(self, use: Callable[[ReadStore], T]) -> T:
        """``use(store)`` in one read transaction (one snapshot) of this context's read store.

        Where the start-up path meets what it cannot answer (a sqlite3 error mid-command) and
        nothing has been shown yet, the whole read runs again on the full context."""
        try:
            with self.source.read_store() as store:
                return use(store)
        except Unavailable:
            if self.fallback is None:
                raise
        return self.fallback().reading(use)

    def now(self) -> datetime:
        if self._write_now is not None:
            return self._write_now
        if self._server_offset is not None:
            return self.clock() + self._server_offset
        return self.clock()

    @contextlib.contextmanager
    def _write_clock(self, conn, server_now: datetime | None):
        """Every write, once it holds the write lock: refuse a wrong host clock before anything is
        written; on PostgreSQL the server's time is "now" until the transaction ends."""
        host, tolerance = self.clock(), self.settings.clock_tolerance_s
        if server_now is None:
            check_not_back(host, self.db.newest_event_time(conn), tolerance)
            yield
            return
        check_skew(host, server_now, tolerance)
        self._server_offset, self._write_now = server_now - host, server_now
        try:
            yield
        finally:
            self._write_now = None

    @contextlib.contextmanager
    def write(self) -> Iterator[Tx]:
        """One write transaction (BEGIN IMMEDIATE on SQLite, the advisory write lock on
        PostgreSQL) and its stores; commits on success, rolls back on any error."""
        from ..storage.stores import Tx

        with self.db.connect_write() as conn:
            yield Tx(conn, self.now, self.audit)

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        """One read transaction: one snapshot, no write lock."""
        from ..storage.stores import Tx

        with self.db.connect_read() as conn:
            yield Tx(conn, self.now, None)

    @property
    def audit(self) -> AuditTrail:
        from ..storage.audit import Actor, AuditTrail

        actor = Actor(self.settings.operator, self.settings.os_user, self.settings.channel,
                      self.settings.terminal, self.run_id)
        return AuditTrail(self.keys.audit_key, actor)

    def check_key(self) -> None:
        with self.source.read_store() as store:
            stored = store.key_fingerprint()
            if not self.db.is_sqlite and is_host_clock(self.clock):
                # a host with a wrong clock is refused from the start, and reads decide "is it
                # locked" by the server's time too
                before = self.clock()
                server = store.server_time()
                host = before + (self.clock() - before) / 2
                check_skew(host, server, self.settings.clock_tolerance_s)
                self._server_offset = server - host
        if stored is None:  # init commits the schema, then the rest: it was cut short in between
            raise DatabaseError(_("database {db} is not fully initialised; run 'cardctl init'").format(
                db=self.db.display))
        if stored != self.keys.fingerprint:
            raise KeyFileError(_("key file {path} does not belong to this database (fingerprint {fingerprint}, "
                                 "database expects {expected})").format(
                path=self.settings.key_file, fingerprint=self.keys.fingerprint, expected=stored))

    @property
    def bcrypt_cost(self) -> int:
        """The cost new PIN hashes get: the database's setting, which CARDCTL_BCRYPT_COST may only
        raise (domain/hashing.py, docs/security.md "The PIN hashing cost"); read when first needed."""
        if self._database_cost is None:
            with self.read() as tx:
                self._database_cost = hashing.stored_cost(tx.meta.get(hashing.SETTING))
        return hashing.effective_cost(self._database_cost, self.settings.bcrypt_cost, self.settings.test_low_cost)

    def policies(self, source: PolicySource) -> dict[str, Policy]:
        """Every region's policy, read once: from a read store, or a transaction (``stores.Tx``)."""
        if self._policies is None:
            self._policies = source.policies_by_region()
        return self._policies

    def policy_for(self, source: PolicySource, region: str) -> Policy:
        return policy_rules.resolve(self.policies(source), region)


def raise_key_missing(settings: Settings, db: str, fingerprint: str | None) -> None:
    """A database that has a key: its key file must be restored, never replaced by a new one."""
    if fingerprint is None:
        return
    raise KeyFileMissing(_("key file {path} not found; database {db} has a key (fingerprint {fingerprint}): "
                           "restore that key file from backup, or give its path with --key-file / CARDCTL_KEY_FILE "
                           "('cardctl init' never makes a new key for a database that has one)").format(
        path=settings.key_file, db=db, fingerprint=fingerprint))

"""``cardctl init``: key file, schema (Alembic), default policy, audit head."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..clock import Clock, system_clock
from ..config import Settings
from ..domain.policy import DEFAULT
from ..errors import DatabaseError, KeyFileError
from ..keys import create_key_file, load_keys
from ..storage import schema
from ..storage.audit import Actor, AuditTrail, EventDraft, init_head
from ..storage.db import SCHEMA_REVISION, Database, _sqlite_path
from ..storage.models import Meta, Policy

_DEFAULT_FIELDS = ("max_attempts", "lock_hours", "temp_loss_days", "default_pin", "minor_age")


@dataclass(frozen=True)
class InitReport:
    database: str
    key_file: str
    key_created: bool
    revision_before: str | None
    revision_after: str

    def record(self) -> dict:
        return {"database": self.database, "key_file": self.key_file, "key_created": self.key_created,
                "schema_before": self.revision_before, "schema": self.revision_after}


def init_database(settings: Settings, clock: Clock = system_clock) -> InitReport:
    db = Database(settings.db_url, settings.busy_timeout_s)
    path = _sqlite_path(db.url)
    if path and path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create the folder for {path}: {exc.strerror}") from None
    created = create_key_file(settings.key_file)
    keys = load_keys(settings.key_file)
    with db.translate_errors():
        db.enable_wal()
        with db.engine.begin() as conn:
            before, after = schema.upgrade(conn)
    if after != SCHEMA_REVISION:
        raise DatabaseError(f"schema is at {after}, this cardctl expects {SCHEMA_REVISION}")
    now = clock()
    with db.write() as session:
        stored = session.get(Meta, "key_fingerprint")
        if stored is None:
            session.add(Meta(key="key_fingerprint", value=keys.fingerprint))
        elif stored.value != keys.fingerprint:
            raise KeyFileError(f"key file {settings.key_file} does not belong to this database")
        if session.get(Policy, "") is None:
            session.add(Policy(region_prefix="", **{f: getattr(DEFAULT, f) for f in _DEFAULT_FIELDS}))
        init_head(session)
        session.flush()
        actor = Actor(settings.operator, settings.os_user, settings.channel)
        outcome = "created" if before is None else ("upgraded" if before != after else "unchanged")
        AuditTrail(keys.audit_key, actor).append(
            session, [EventDraft("db.init", outcome, detail={"schema": after})], now)
    return InitReport(db.display, str(settings.key_file), created, before, after)

"""Tables of cardctl as SQLAlchemy Core ``Table`` objects, declared once for SQLite and PostgreSQL.

The single declaration of the schema: the migrations' target metadata and every Core
statement of the stores (``storage/stores``); cardctl uses no ORM.

Times are stored as naive UTC (``UTCDateTime``) so the same bound values
compare correctly on both engines; money is integer fen.

Partial indexes live in the migrations only (0001): ``uq_cards_live_holder`` (one
live card per holder), ``ix_locks_card_open`` and ``ix_locks_pin_due``; ``ix_events_batches``
(0006, the batch runs' start and end events). Declaring them
here needs ``postgresql_where=``, which loads the PostgreSQL dialect on every start-up,
even on SQLite; tests/test_schema.py checks the database has them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator

from .lite import aware_utc, naive_utc

# 64-bit ids on PostgreSQL; SQLite needs plain INTEGER for a rowid primary key
BigId = BigInteger().with_variant(Integer, "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, naive UTC at rest."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect) -> Optional[datetime]:
        return None if value is None else naive_utc(value)

    def process_result_value(self, value, dialect) -> Optional[datetime]:
        return aware_utc(value)  # a str: raw text written by another tool


metadata = MetaData(naming_convention=NAMING)


def _required(name: str, type_, **kwargs) -> Column:
    return Column(name, type_, nullable=False, **kwargs)


def _optional(name: str, type_, **kwargs) -> Column:
    return Column(name, type_, nullable=True, **kwargs)


# Key/value facts about this database, e.g. the key fingerprint.
meta = Table(
    "meta", metadata,
    _required("key", String(64), primary_key=True),
    _required("value", Text),
)

# Per-region settings; '' is the default, longer prefixes win.
policies = Table(
    "policies", metadata,
    _required("region_prefix", String(6), primary_key=True),
    _required("max_attempts", Integer),
    _required("lock_hours", Integer),
    _required("temp_loss_days", Integer),
    _required("default_pin", String(6)),
    _required("minor_age", Integer),
    # escalation to a counter visit (migration 0006): the Nth PIN lock within the window does
    # not end by itself; 0 is off (docs/domain.md, "Escalation to a counter visit")
    _required("escalate_after", Integer, server_default="0"),
    _required("escalate_window_days", Integer, server_default="30"),
)

# An insured person (参保人). The ID number is kept only keyed-hashed and masked; nothing
# else derived from it is in clear (docs/security.md, "A copy of the database").
holders = Table(
    "holders", metadata,
    _required("id", Integer, primary_key=True),
    _required("id_hash", String(64), unique=True),
    _required("id_masked", String(18)),
    # keyed hash of the ID number's last 6 characters, to refuse them as a PIN later
    _required("id_tail_hash", String(64)),
    _required("name", Text),
    # AES-GCM under the data key, bound to id_hash (domain/sealed.py): the weak-PIN rule needs it
    _required("birth_sealed", LargeBinary(64)),
)

cards = Table(
    "cards", metadata,
    _required("card_no", String(9), primary_key=True),
    _required("holder_id", ForeignKey("holders.id"), index=True),
    _required("region", String(6), index=True),
    _required("insurance_type", String(10)),
    _required("issuer", String(64)),
    _optional("unit", String(18), index=True),
    _required("status", String(8), index=True),
    _required("failures", Integer, default=0),
    _optional("pin_hash", String(80)),
    _optional("pin_scheme", String(16)),
    _required("issued_at", UTCDateTime),
    _optional("activated_at", UTCDateTime),
    _optional("loss_kind", String(10)),
    _optional("lost_at", UTCDateTime),
    _optional("loss_lapses_at", UTCDateTime),
    _optional("void_reason", Text),
    _optional("replaced_by", String(9)),
    _optional("replaces", String(9)),
)

# One lock on one card. Never deleted: ending it fills ``ended_at``.
locks = Table(
    "locks", metadata,
    _required("id", BigId, primary_key=True),
    _required("card_no", ForeignKey("cards.card_no")),
    _required("kind", String(8)),
    _required("reason", Text),
    _required("started_at", UTCDateTime),
    _optional("ends_at", UTCDateTime),
    _optional("ended_at", UTCDateTime),
    _optional("end_cause", String(16)),
    _optional("ended_by", Text),
    _required("created_by", Text),
    # a PIN lock that escalated to a counter visit (migration 0006): only an identity check ends it
    _required("escalated", Boolean, server_default=false()),
    # open locks by card and due PIN locks by end time: partial indexes, see above
    Index("ix_locks_card_all", "card_no", "started_at"),
)

# Ledger of debts (+) and payments (-) in fen, per holder or per employer unit.
arrears = Table(
    "arrears", metadata,
    _required("id", BigId, primary_key=True),
    _optional("holder_id", ForeignKey("holders.id"), index=True),
    _optional("unit", String(18), index=True),
    _required("amount_fen", BigInteger),
    _optional("period", String(7)),
    _optional("receipt", Text),
    _required("at", UTCDateTime),
    _required("operator", Text),
)

# Append-only audit event, chained by a keyed hash over its content and the previous hash.
events = Table(
    "events", metadata,
    _required("seq", BigInteger, primary_key=True, autoincrement=False),
    _required("at", UTCDateTime, index=True),
    _required("recorded_at", UTCDateTime),
    _required("operator", Text),
    _required("os_user", Text),
    _required("channel", String(16)),
    _required("action", String(32)),
    _optional("card_no", String(9), index=True),
    _required("outcome", String(32)),
    _optional("reason", Text),
    _optional("detail", Text),
    # who really acted, as the system established it: the database login on PostgreSQL (its
    # trigger writes it, whatever the client sent), the OS user on SQLite; NULL before 0004
    _optional("actor", Text),
    # where a PIN was tried (verify/change-pin --terminal) and the batch run an event belongs to
    # (migration 0006); hashed after the actor when either is set (storage/audit.py)
    _optional("terminal", String(64)),
    _optional("run_id", String(40), index=True),
    _required("prev_hash", String(64)),
    _required("hash", String(64)),
)

# Single row holding the chain's last seq and hash; writers lock it to append in order.
audit_head = Table(
    "audit_head", metadata,
    _required("id", Integer, primary_key=True),
    _required("seq", BigInteger),
    _required("hash", String(64)),
)

# Who may use cardctl and as what: an OS login on SQLite, a database login on PostgreSQL.
# Never deleted: disabling fills ``disabled_at``, so the trail's names stay explainable.
operators = Table(
    "operators", metadata,
    _required("login", String(64), primary_key=True),
    _required("role", String(8)),
    _required("created_at", UTCDateTime),
    _required("created_by", Text),
    _optional("disabled_at", UTCDateTime),
)

# Chain heads signed with the Ed25519 signing key (storage/signing.py): append only, like events.
signed_heads = Table(
    "signed_heads", metadata,
    _required("seq", BigInteger, primary_key=True, autoincrement=False),
    _required("key_id", String(16), primary_key=True),  # which public key verifies it
    _required("hash", String(64)),
    _required("signed_at", UTCDateTime),
    _required("signature", String(128)),
)

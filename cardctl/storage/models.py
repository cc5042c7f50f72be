"""Tables of cardctl, declared once for SQLite and PostgreSQL alike.

Times are stored as naive UTC (``UTCDateTime``) so the same bound values
compare correctly on both engines; money is integer fen.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Optional

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

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
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect) -> Optional[datetime]:
        if value is None:
            return None
        if isinstance(value, str):  # raw text written by another tool
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Meta(Base):
    """Key/value facts about this database, e.g. the key fingerprint."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Policy(Base):
    """Per-region settings; '' is the default, longer prefixes win."""

    __tablename__ = "policies"
    region_prefix: Mapped[str] = mapped_column(String(6), primary_key=True)
    max_attempts: Mapped[int] = mapped_column(Integer)
    lock_hours: Mapped[int] = mapped_column(Integer)
    temp_loss_days: Mapped[int] = mapped_column(Integer)
    default_pin: Mapped[str] = mapped_column(String(6))
    minor_age: Mapped[int] = mapped_column(Integer)


class Holder(Base):
    """An insured person (参保人). The ID number is kept only keyed-hashed and masked."""

    __tablename__ = "holders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    id_masked: Mapped[str] = mapped_column(String(18))
    # keyed hash of the ID number's last 6 characters, to refuse them as a PIN later
    id_tail_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text)
    birth_date: Mapped[date] = mapped_column(Date)


class Card(Base):
    __tablename__ = "cards"
    card_no: Mapped[str] = mapped_column(String(9), primary_key=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), index=True)
    region: Mapped[str] = mapped_column(String(6), index=True)
    insurance_type: Mapped[str] = mapped_column(String(10))
    issuer: Mapped[str] = mapped_column(String(64))
    unit: Mapped[Optional[str]] = mapped_column(String(18), index=True)
    status: Mapped[str] = mapped_column(String(8), index=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    pin_hash: Mapped[Optional[str]] = mapped_column(String(80))
    pin_scheme: Mapped[Optional[str]] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    loss_kind: Mapped[Optional[str]] = mapped_column(String(10))
    lost_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    loss_lapses_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    void_reason: Mapped[Optional[str]] = mapped_column(Text)
    replaced_by: Mapped[Optional[str]] = mapped_column(String(9))
    replaces: Mapped[Optional[str]] = mapped_column(String(9))

    # Partial indexes live in the migrations only (0001): uq_cards_live_holder (one
    # live card per holder), ix_locks_card_open and ix_locks_pin_due. Declaring them
    # here needs postgresql_where=, which loads the PostgreSQL dialect on every
    # start-up, even on SQLite; tests/test_schema.py checks the database has them.


class Lock(Base):
    """One lock on one card. Never deleted: ending it fills ``ended_at``."""

    __tablename__ = "locks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    card_no: Mapped[str] = mapped_column(ForeignKey("cards.card_no"))
    kind: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    ended_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    end_cause: Mapped[Optional[str]] = mapped_column(String(16))
    ended_by: Mapped[Optional[str]] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)

    # open locks by card and due PIN locks by end time: partial indexes, see Card
    __table_args__ = (Index("ix_locks_card_all", "card_no", "started_at"),)


class Arrears(Base):
    """Ledger of debts (+) and payments (-) in fen, per holder or per employer unit."""

    __tablename__ = "arrears"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    holder_id: Mapped[Optional[int]] = mapped_column(ForeignKey("holders.id"), index=True)
    unit: Mapped[Optional[str]] = mapped_column(String(18), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    period: Mapped[Optional[str]] = mapped_column(String(7))
    receipt: Mapped[Optional[str]] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    operator: Mapped[str] = mapped_column(Text)


class Event(Base):
    """Append-only audit event, chained by a keyed hash over its content and the previous hash."""

    __tablename__ = "events"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    operator: Mapped[str] = mapped_column(Text)
    os_user: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    card_no: Mapped[Optional[str]] = mapped_column(String(9), index=True)
    outcome: Mapped[str] = mapped_column(String(32))
    reason: Mapped[Optional[str]] = mapped_column(Text)
    detail: Mapped[Optional[str]] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """Single row holding the chain's last seq and hash; writers lock it to append in order."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class Operator(Base):
    """Who may use cardctl and as what: an OS login on SQLite, a database login on PostgreSQL.

    Never deleted: disabling fills ``disabled_at``, so the trail's names stay explainable.
    """

    __tablename__ = "operators"
    login: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(Text)
    disabled_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

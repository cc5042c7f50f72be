"""The tests' own view of the database: ORM classes over cardctl's Core tables, and sessions.

cardctl itself touches the database only through its stores (SQLAlchemy Core); the tests
inspect and arrange rows behind its back, as someone with their own SQL client would,
and the ORM keeps those checks short.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterator, Optional

import contextlib

from sqlalchemy.orm import DeclarativeBase, Mapped, Session

from cardctl.storage import tables


class Base(DeclarativeBase):
    metadata = tables.metadata


class Meta(Base):
    """Key/value facts about this database, e.g. the key fingerprint."""

    __table__ = tables.meta
    key: Mapped[str]
    value: Mapped[str]


class Policy(Base):
    """Per-region settings; '' is the default, longer prefixes win."""

    __table__ = tables.policies
    region_prefix: Mapped[str]
    max_attempts: Mapped[int]
    lock_hours: Mapped[int]
    temp_loss_days: Mapped[int]
    default_pin: Mapped[str]
    minor_age: Mapped[int]


class Holder(Base):
    """An insured person (参保人). The ID number is kept only keyed-hashed and masked."""

    __table__ = tables.holders
    id: Mapped[int]
    id_hash: Mapped[str]
    id_masked: Mapped[str]
    id_tail_hash: Mapped[str]
    name: Mapped[str]
    birth_sealed: Mapped[bytes]


class Card(Base):
    __table__ = tables.cards
    card_no: Mapped[str]
    holder_id: Mapped[int]
    region: Mapped[str]
    insurance_type: Mapped[str]
    issuer: Mapped[str]
    unit: Mapped[Optional[str]]
    status: Mapped[str]
    failures: Mapped[int]
    pin_hash: Mapped[Optional[str]]
    pin_scheme: Mapped[Optional[str]]
    issued_at: Mapped[datetime]
    activated_at: Mapped[Optional[datetime]]
    loss_kind: Mapped[Optional[str]]
    lost_at: Mapped[Optional[datetime]]
    loss_lapses_at: Mapped[Optional[datetime]]
    void_reason: Mapped[Optional[str]]
    replaced_by: Mapped[Optional[str]]
    replaces: Mapped[Optional[str]]


class Lock(Base):
    """One lock on one card. Never deleted: ending it fills ``ended_at``."""

    __table__ = tables.locks
    id: Mapped[int]
    card_no: Mapped[str]
    kind: Mapped[str]
    reason: Mapped[str]
    started_at: Mapped[datetime]
    ends_at: Mapped[Optional[datetime]]
    ended_at: Mapped[Optional[datetime]]
    end_cause: Mapped[Optional[str]]
    ended_by: Mapped[Optional[str]]
    created_by: Mapped[str]


class Arrears(Base):
    """Ledger of debts (+) and payments (-) in fen, per holder or per employer unit."""

    __table__ = tables.arrears
    id: Mapped[int]
    holder_id: Mapped[Optional[int]]
    unit: Mapped[Optional[str]]
    amount_fen: Mapped[int]
    period: Mapped[Optional[str]]
    receipt: Mapped[Optional[str]]
    at: Mapped[datetime]
    operator: Mapped[str]


class Event(Base):
    """Append-only audit event, chained by a keyed hash over its content and the previous hash."""

    __table__ = tables.events
    seq: Mapped[int]
    at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    operator: Mapped[str]
    os_user: Mapped[str]
    channel: Mapped[str]
    action: Mapped[str]
    card_no: Mapped[Optional[str]]
    outcome: Mapped[str]
    reason: Mapped[Optional[str]]
    detail: Mapped[Optional[str]]
    actor: Mapped[Optional[str]]
    prev_hash: Mapped[str]
    hash: Mapped[str]


class AuditHead(Base):
    """Single row holding the chain's last seq and hash; writers lock it to append in order."""

    __table__ = tables.audit_head
    id: Mapped[int]
    seq: Mapped[int]
    hash: Mapped[str]


class Operator(Base):
    """Who may use cardctl and as what (see ``tables.operators``)."""

    __table__ = tables.operators
    login: Mapped[str]
    role: Mapped[str]
    created_at: Mapped[datetime]
    created_by: Mapped[str]
    disabled_at: Mapped[Optional[datetime]]


@contextlib.contextmanager
def orm_write(db) -> Iterator[Session]:
    """A write transaction of ``db`` (a ``storage.db.Database``) as an ORM session: the same
    write lock as cardctl's writers; commits on success."""
    with db.connect_write() as conn:
        with Session(conn, expire_on_commit=False) as session:
            yield session
            session.flush()


@contextlib.contextmanager
def orm_read(db) -> Iterator[Session]:
    """A read transaction of ``db`` as an ORM session: one snapshot, no write lock."""
    with db.connect_read() as conn:
        with Session(conn, expire_on_commit=False) as session:
            yield session

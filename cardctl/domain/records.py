"""Rows as the stores hand them to the use cases: frozen, plain values, no database in sight.

A use case reads a record, decides by the rules, and tells the store what to change; it
never holds a live database object that changes under it (``storage/stores``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CardRecord:
    card_no: str
    holder_id: int
    region: str
    insurance_type: str
    issuer: str
    unit: str | None
    status: str
    failures: int
    pin_hash: str | None
    pin_scheme: str | None
    issued_at: datetime
    activated_at: datetime | None
    loss_kind: str | None
    lost_at: datetime | None
    loss_lapses_at: datetime | None
    void_reason: str | None
    replaced_by: str | None
    replaces: str | None


@dataclass(frozen=True)
class HolderRecord:
    id: int
    id_hash: str
    id_masked: str
    id_tail_hash: str
    name: str
    birth_sealed: bytes


@dataclass(frozen=True)
class LockRecord:
    id: int
    card_no: str
    kind: str
    reason: str
    started_at: datetime
    ends_at: datetime | None
    ended_at: datetime | None
    end_cause: str | None
    ended_by: str | None
    created_by: str
    escalated: bool = False  # only an identity check ends it (docs/domain.md, escalation)


@dataclass(frozen=True)
class OperatorRecord:
    login: str
    role: str
    created_at: datetime
    created_by: str
    disabled_at: datetime | None


@dataclass(frozen=True)
class CardState:
    """The columns of a card that decide whether an unlock may clear it; ``region`` and
    ``id_hash`` (its holder's keyed ID hash) only where the holder's identity is checked."""

    card_no: str
    status: str
    loss_kind: str | None
    loss_lapses_at: datetime | None
    region: str | None = None
    id_hash: str | None = None

@dataclass(frozen=True)
class EventRecord:
    """An audit event as ``audit log`` lists it. A field damaged behind cardctl's back (a time
    that is no time, bytes that are no text) holds what was stored, as text, and is named in
    ``damaged``: the listing shows it flagged instead of stopping (docs/security.md)."""

    seq: int | None
    at: datetime | str | None
    recorded_at: datetime | str | None
    operator: str | None
    os_user: str | None
    channel: str | None
    action: str | None
    card_no: str | None
    outcome: str | None
    reason: str | None
    detail: str | None
    actor: str | None
    terminal: str | None = None  # where a PIN was tried (migration 0006)
    run_id: str | None = None  # the batch run it belongs to
    damaged: tuple[str, ...] = ()


@dataclass(frozen=True)
class SignedHeadRecord:
    """A chain head signed with the Ed25519 signing key (docs/security.md, "Signed heads")."""

    seq: int
    key_id: str
    hash: str
    signed_at: datetime
    signature: str

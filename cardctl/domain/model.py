"""Domain vocabulary and the plain result objects every renderer prints.

Nothing here touches the database or the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .money import format_fen
from . import reasons
from .times import iso_utc


class LockKind(StrEnum):
    PIN = "pin"
    ARREARS = "arrears"
    ADMIN = "admin"


class CardStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    LOST = "lost"
    VOID = "void"


class LossKind(StrEnum):
    TEMPORARY = "temporary"  # 临时挂失: withdrawable, lapses by itself
    FORMAL = "formal"  # 正式挂失: voids the card


class EndCause(StrEnum):
    EXPIRED = "expired"
    UNLOCKED = "unlocked"
    RESET = "reset"
    PAID = "paid"
    REPLACED = "replaced"  # the card was reissued; what still binds moved to the new card


def effective_status(status: str, loss_kind: str | None, loss_lapses_at: datetime | None,
                     now: datetime) -> str:
    """The status a card has at ``now``: a temporary loss report past its lapse time no
    longer binds, so the card is active again.

    Decided here on every read, like PIN-lock expiry, so a lapsed report is never
    enforced even if the cron sweep has not recorded the lapse yet.
    """
    if (status == CardStatus.LOST and loss_kind == LossKind.TEMPORARY
            and loss_lapses_at is not None and loss_lapses_at <= now):
        return CardStatus.ACTIVE.value
    return str(status)


def lock_is_effective(ends_at: datetime | None, ended_at: datetime | None, now: datetime) -> bool:
    """A lock binds until it is ended, or until its end time passes, whichever is first.

    Expiry is decided here on every read, so a lock past its end is never
    enforced even if the cron sweep has not recorded it yet.
    """
    if ended_at is not None:
        return False
    return ends_at is None or ends_at > now


def iso(moment: datetime | None) -> str | None:
    """A moment in records: one format for every machine output (``domain.times.iso_utc``)."""
    return iso_utc(moment)


@dataclass(frozen=True)
class LockView:
    kind: str
    reason: str
    since: datetime
    until: datetime | None
    now: datetime
    # only an identity check ends it (docs/domain.md, "Escalation to a counter visit")
    escalated: bool = False

    def __post_init__(self) -> None:
        # the flag or the reason cardctl writes with it: a row whose flag was cleared behind
        # cardctl's back still needs the counter visit its reason names
        if not self.escalated and reasons.is_escalated(self.reason):
            object.__setattr__(self, "escalated", True)

    @property
    def remaining_s(self) -> int | None:
        if self.until is None:
            return None
        return max(0, int((self.until - self.now).total_seconds()))

    def record(self) -> dict[str, Any]:
        found = {"kind": self.kind, "reason": reasons.for_record(self.reason), "since": iso(self.since),
                 "until": iso(self.until), "remaining_s": self.remaining_s}
        if self.escalated:  # only then: a lock record reads as it always did
            found["escalated"] = True
        return found


@dataclass(frozen=True)
class CardView:
    card_no: str
    holder_name: str
    id_masked: str
    region: str
    status: str
    failures: int
    max_attempts: int
    locks: list[LockView] = field(default_factory=list)
    insurance_type: str = ""
    unit: str | None = None
    owed_fen: int = 0  # the holder's own unpaid contributions
    unit_owed_fen: int = 0  # the employer unit's, which lock this card too
    loss_kind: str | None = None
    lost_at: datetime | None = None
    loss_lapses_at: datetime | None = None
    void_reason: str | None = None
    replaced_by: str | None = None
    replaces: str | None = None

    @property
    def usable(self) -> bool:
        return self.status == CardStatus.ACTIVE and not self.locks

    @property
    def attempts_left(self) -> int:
        return max(0, self.max_attempts - self.failures)

    def record(self) -> dict[str, Any]:
        return {
            "card_no": self.card_no, "holder_name": self.holder_name, "id_number": self.id_masked,
            "region": self.region, "type": self.insurance_type, "unit": self.unit,
            "status": self.status, "usable": self.usable, "failures": self.failures,
            "attempts_left": self.attempts_left, "locks": [lock.record() for lock in self.locks],
            "owed": format_fen(self.owed_fen),
            "unit_owed": format_fen(self.unit_owed_fen) if self.unit else None,
            "loss_kind": self.loss_kind, "lost_at": iso(self.lost_at),
            "loss_lapses_at": iso(self.loss_lapses_at), "void_reason": reasons.for_record(self.void_reason),
            "replaced_by": self.replaced_by, "replaces": self.replaces,
        }


@dataclass(frozen=True)
class CardState:
    """What decides whether a card can be used, beside its locks: the fields ``status`` shows."""

    status: str  # effective: a lapsed temporary loss report no longer counts
    loss_kind: str | None = None
    loss_lapses_at: datetime | None = None
    void_reason: str | None = None
    replaced_by: str | None = None
    has_pin: bool = True


@dataclass(frozen=True)
class VerifyResult:
    card_no: str
    result: str  # ok | wrong_pin | locked | unusable
    attempts_left: int
    locks: list[LockView]
    state: CardState | None = None

    @property
    def reason(self) -> str | None:
        """Why the card cannot be used now: its status (pending, lost, void), ``no_pin`` for an
        active card without a PIN, or ``locked`` (the locks say which); None when it can."""
        state = self.state
        if state is not None and state.status != CardStatus.ACTIVE:
            return state.status
        if state is not None and not state.has_pin:
            return "no_pin"
        return "locked" if self.locks else None

    def record(self) -> dict[str, Any]:
        state = self.state or CardState(CardStatus.ACTIVE.value)
        return {"card_no": self.card_no, "result": self.result, "attempts_left": self.attempts_left,
                "reason": self.reason, "status": state.status, "locks": [lock.record() for lock in self.locks],
                "loss_kind": state.loss_kind, "loss_lapses_at": iso(state.loss_lapses_at),
                "void_reason": reasons.for_record(state.void_reason), "replaced_by": state.replaced_by}


@dataclass(frozen=True)
class ItemResult:
    """One row of a batch: what happened to one card."""

    card_no: str
    result: str
    detail: str = ""
    line: int | None = None  # where the item came from, for file input
    kept: list[LockView] | None = None  # unlock: the locks in force that it does not clear

    def record(self) -> dict[str, Any]:
        from .identity import mask_id_shapes  # every batch row passes here: no full ID number in one

        found = {"card_no": mask_id_shapes(self.card_no), "result": self.result,
                 "detail": mask_id_shapes(self.detail)}
        if self.kept is not None:
            found["kept"] = [lock.record() for lock in self.kept]
        return found if self.line is None else {"line": self.line, **found}

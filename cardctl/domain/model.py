"""Domain vocabulary and the plain result objects every renderer prints.

Nothing here touches the database or the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class LockKind(StrEnum):
    PIN = "pin"
    ARREARS = "arrears"
    ADMIN = "admin"


class CardStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    LOST = "lost"
    VOID = "void"


class EndCause(StrEnum):
    EXPIRED = "expired"
    UNLOCKED = "unlocked"
    RESET = "reset"
    PAID = "paid"


def lock_is_effective(ends_at: datetime | None, ended_at: datetime | None, now: datetime) -> bool:
    """A lock binds until it is ended, or until its end time passes, whichever is first.

    Expiry is decided here on every read, so a lock past its end is never
    enforced even if the cron sweep has not recorded it yet.
    """
    if ended_at is not None:
        return False
    return ends_at is None or ends_at > now


def unlock_may_clear(kind: LockKind, requested: LockKind) -> bool:
    """``unlock`` clears PIN locks, admin locks only when asked by kind, arrears never."""
    if kind is LockKind.ARREARS:
        return False
    return kind is requested


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


@dataclass(frozen=True)
class LockView:
    kind: str
    reason: str
    since: datetime
    until: datetime | None
    now: datetime

    @property
    def remaining_s(self) -> int | None:
        if self.until is None:
            return None
        return max(0, int((self.until - self.now).total_seconds()))

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind, "reason": self.reason, "since": iso(self.since),
                "until": iso(self.until), "remaining_s": self.remaining_s}


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
        }


@dataclass(frozen=True)
class VerifyResult:
    card_no: str
    result: str  # ok | wrong_pin | locked | unusable
    attempts_left: int
    locks: list[LockView]

    def record(self) -> dict[str, Any]:
        return {"card_no": self.card_no, "result": self.result, "attempts_left": self.attempts_left,
                "locks": [lock.record() for lock in self.locks]}


@dataclass(frozen=True)
class ItemResult:
    """One row of a batch: what happened to one card."""

    card_no: str
    result: str
    detail: str = ""
    line: int | None = None  # where the item came from, for file input

    def record(self) -> dict[str, Any]:
        found = {"card_no": self.card_no, "result": self.result, "detail": self.detail}
        return found if self.line is None else {"line": self.line, **found}

"""What each command family reports per card (or per login, per region): one enum each, whose
value is THE spelling in every format — JSON, JSON lines, CSV and the table's English — as
scripts parse it and README and examples/ document it.

A result that is also recorded in the audit trail may be spelled differently there (the trail's
outcomes use underscores: unlock's ``not locked`` is the outcome ``not_locked``); ``outcome``
gives that correspondence, so no code converts one spelling into the other. ``term`` is the
English a table translates (verify's ``wrong_pin`` reads 'wrong pin'). Which exit code a result
means is cardctl/errors.py's business (its map is keyed by these members).
"""

from __future__ import annotations

from enum import StrEnum

from ..i18n import N_
from .events import Outcome


class _Result(StrEnum):
    @property
    def term(self) -> str:
        """The English a table shows, translated (marked in ``TERM_OF`` when it differs)."""
        return TERM_OF.get(self.value, self.value)

    @property
    def outcome(self) -> Outcome | None:
        """The audit outcome this result is recorded with; None when it records no event."""
        return OUTCOME_OF.get((type(self).__name__, self.value))


class PinResult(_Result):
    """``verify`` (and the current PIN checked by ``change-pin``)."""

    OK = N_("ok")
    WRONG_PIN = "wrong_pin"
    LOCKED = N_("locked")
    UNUSABLE = N_("unusable")


class UnlockResult(_Result):
    """``unlock`` of named cards, one row each."""

    UNLOCKED = N_("unlocked")
    NOT_LOCKED = N_("not locked")
    NOT_FOUND = N_("not found")
    REFUSED = N_("refused")
    INVALID = N_("invalid")
    WOULD_UNLOCK = N_("would unlock")  # --dry-run


class SweepResult(_Result):
    """``unlock --expired``, the cron sweep: a PIN lock past its end, a temporary loss report past its lapse."""

    EXPIRED = N_("expired")
    LAPSED = N_("lapsed")
    WOULD_EXPIRE = N_("would expire")  # --dry-run
    WOULD_LAPSE = N_("would lapse")


class IssueResult(_Result):
    """``issue`` and ``import``, one row per card."""

    ISSUED = N_("issued")
    ALREADY_ISSUED = N_("already issued")
    REFUSED = N_("refused")
    INVALID = N_("invalid")


class LifecycleResult(_Result):
    """The counter's lifecycle commands: activate, reset-pin, change-pin, report-loss, cancel-loss, reissue."""

    ACTIVATED = N_("activated")
    RESET = N_("reset")
    CHANGED = N_("changed")
    REPORTED = N_("reported")
    WITHDRAWN = N_("withdrawn")
    REISSUED = N_("reissued")


class LockResult(_Result):
    """``lock``: an admin lock set, or one already in force."""

    LOCKED = N_("locked")
    ALREADY_LOCKED = N_("already locked")


class OperatorResult(_Result):
    """``operator add``, ``set-role`` and ``disable``."""

    ADDED = N_("added")
    RE_ENABLED = N_("re-enabled")
    ROLE_CHANGED = N_("role changed")
    UNCHANGED = N_("unchanged")
    DISABLED = N_("disabled")


class PolicyResult(_Result):
    """``policy set``."""

    CREATED = N_("created")
    CHANGED = N_("changed")
    UNCHANGED = N_("unchanged")


class ArrearsEntry(_Result):
    """``add-arrears`` and ``pay-arrears``: which entry was recorded."""

    DEBT = N_("debt")
    PAYMENT = N_("payment")


FAMILIES: tuple[type[_Result], ...] = (PinResult, UnlockResult, SweepResult, IssueResult, LifecycleResult,
                                       LockResult, OperatorResult, PolicyResult, ArrearsEntry)

TERM_OF = {"wrong_pin": N_("wrong pin")}

# (family, result) -> the outcome its event is stored with; a result not here records none
OUTCOME_OF: dict[tuple[str, str], Outcome] = {
    ("PinResult", "ok"): Outcome.OK,
    ("PinResult", "wrong_pin"): Outcome.WRONG_PIN,
    ("PinResult", "locked"): Outcome.REFUSED_LOCKED,  # refused, not counted: the PIN was not checked
    ("PinResult", "unusable"): Outcome.REFUSED_UNUSABLE,
    ("UnlockResult", "unlocked"): Outcome.UNLOCKED,
    ("UnlockResult", "not locked"): Outcome.NOT_LOCKED,
    ("UnlockResult", "not found"): Outcome.NOT_FOUND,
    ("UnlockResult", "refused"): Outcome.REFUSED,
    ("IssueResult", "issued"): Outcome.ISSUED,
    ("LifecycleResult", "activated"): Outcome.ACTIVATED,
    ("LifecycleResult", "reset"): Outcome.RESET,
    ("LifecycleResult", "changed"): Outcome.CHANGED,
    ("LifecycleResult", "withdrawn"): Outcome.WITHDRAWN,
    ("LifecycleResult", "reissued"): Outcome.REISSUED,
    ("LockResult", "locked"): Outcome.LOCKED,
    ("LockResult", "already locked"): Outcome.ALREADY_LOCKED,
    ("SweepResult", "expired"): Outcome.ENDED,  # lock.expire
    ("SweepResult", "lapsed"): Outcome.LAPSED,  # loss.lapse
    ("OperatorResult", "added"): Outcome.ADDED,
    ("OperatorResult", "re-enabled"): Outcome.RE_ENABLED,
    ("OperatorResult", "role changed"): Outcome.CHANGED,
    ("OperatorResult", "disabled"): Outcome.DISABLED,
    ("PolicyResult", "created"): Outcome.CREATED,
    ("PolicyResult", "changed"): Outcome.CHANGED,
    ("PolicyResult", "unchanged"): Outcome.UNCHANGED,
}

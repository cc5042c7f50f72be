"""The one error hierarchy of cardctl, and the one map from condition to exit code.

Every expected failure is a ``CardctlError`` naming its ``Condition``; ``EXIT_CODE`` alone
decides the exit code of each condition, for every command (README's exit-code table is
checked against it by tests/test_exit_codes.py). Batch rows map through the same table:
``ROW_CONDITION`` names the condition of each row result, and a row is a failure when its
condition's code is not 0. Only the CLI edge turns errors into a one-line message and
``typer.Exit``; below it nothing calls ``sys.exit``. Messages are ``i18n._`` templates:
English in the audit trail and in machine output, the operator's language on screen.
"""

from __future__ import annotations

from enum import Enum

from .domain.results import IssueResult, PinResult, UnlockResult
from .i18n import _, term

OK = 0
INTERNAL = 1
USAGE = 2
WRONG_PIN = 3
LOCKED = 4
NOT_FOUND = 5
REFUSED = 6
PARTIAL = 7


class Condition(str, Enum):
    """What went wrong, in the words of README's exit-code table."""

    INTERNAL = "internal error"
    DATABASE = "database unavailable"  # missing, not initialised, busy past the timeout, newer
    KEY_FILE = "key file"  # missing, unreadable, not this database's
    WRONG_CLOCK = "wrong clock"  # off from the PostgreSQL server's, or gone back behind the trail
    USAGE = "usage"  # unknown command or option, bad option value, missing argument
    INVALID_INPUT = "invalid input"  # malformed ID or card number, PIN of the wrong length, file
    WRONG_PIN = "wrong PIN"
    LOCKED = "locked"  # a PIN use of a card that is locked or not usable
    NOT_FOUND = "not found"
    IDENTITY_MISMATCH = "identity mismatch"
    WEAK_PIN = "weak PIN"
    NOT_ALLOWED = "not allowed in this state"
    CONFLICT = "conflict"  # card number taken, holder has a live card, already an operator
    ACCESS_REFUSED = "access refused"
    CHAIN_BROKEN = "audit chain broken"
    REFUSED = "refused"  # any other refusal (the last admin, an overpayment, ...)
    ALREADY_ISSUED = "already issued"  # the card is on record exactly as asked: nothing to do
    NOT_LOCKED = "not locked"
    BATCH_FAILED = "batch partly failed"
    CANCELLED = "cancelled"  # Ctrl-C at a prompt, or a question answered no: nothing changed


EXIT_CODE: dict[Condition, int] = {
    Condition.INTERNAL: INTERNAL, Condition.DATABASE: INTERNAL, Condition.KEY_FILE: INTERNAL,
    Condition.WRONG_CLOCK: INTERNAL,
    Condition.USAGE: USAGE, Condition.INVALID_INPUT: USAGE,
    Condition.WRONG_PIN: WRONG_PIN,
    Condition.LOCKED: LOCKED,
    Condition.NOT_FOUND: NOT_FOUND,
    Condition.IDENTITY_MISMATCH: REFUSED, Condition.WEAK_PIN: REFUSED, Condition.NOT_ALLOWED: REFUSED,
    Condition.CONFLICT: REFUSED, Condition.ACCESS_REFUSED: REFUSED, Condition.CHAIN_BROKEN: REFUSED,
    Condition.REFUSED: REFUSED,
    Condition.ALREADY_ISSUED: OK, Condition.NOT_LOCKED: OK,
    Condition.BATCH_FAILED: PARTIAL,
    Condition.CANCELLED: 130,  # as a shell reports a command ended by Ctrl-C (128 + SIGINT)
}

# The result a command reports for one card -> its condition: a row of a batch (unlock, import,
# the expiry sweep) and verify's answer. A result not named here ("ok", "unlocked", ...) is a success.
ROW_CONDITION: dict[str, Condition] = {
    UnlockResult.NOT_FOUND: Condition.NOT_FOUND, UnlockResult.REFUSED: Condition.REFUSED,
    UnlockResult.INVALID: Condition.INVALID_INPUT, IssueResult.ALREADY_ISSUED: Condition.ALREADY_ISSUED,
    UnlockResult.NOT_LOCKED: Condition.NOT_LOCKED,
    PinResult.WRONG_PIN: Condition.WRONG_PIN, PinResult.LOCKED: Condition.LOCKED, PinResult.UNUSABLE: Condition.LOCKED,
}


def exit_code(condition: Condition | None) -> int:
    """The exit code of ``condition``; None means success."""
    return OK if condition is None else EXIT_CODE[condition]


def result_exit_code(result: str) -> int:
    """The exit code of a command that reports ``result`` for its one card (``verify``)."""
    return exit_code(ROW_CONDITION.get(result))


def row_failed(result: str) -> bool:
    """Whether a batch row counts as failed: its condition exits non-zero on its own."""
    return result_exit_code(result) != OK


class CardctlError(Exception):
    """Base of every expected failure; its ``condition`` fixes the exit code (``EXIT_CODE``)."""

    condition = Condition.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def exit_code(self) -> int:
        return EXIT_CODE[self.condition]


class DatabaseError(CardctlError):
    """Missing, busy, uninitialised or too-new database (exit 1)."""

    condition = Condition.DATABASE


class KeyFileError(CardctlError):
    """Missing, unreadable or wrong secret key file (exit 1)."""

    condition = Condition.KEY_FILE


class WrongClock(CardctlError):
    """This machine's clock is too far from the server's, or went back behind the trail (exit 1)."""

    condition = Condition.WRONG_CLOCK


class InvalidInput(CardctlError):
    """Malformed ID number, card number, PIN, amount, file or option value (exit 2)."""

    condition = Condition.INVALID_INPUT


class UsageError(InvalidInput):
    """The command line itself: unknown command or option, bad choice, missing argument (exit 2).
    ``hint`` is a second line: which --help to read."""

    condition = Condition.USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class WrongPin(CardctlError):
    condition = Condition.WRONG_PIN


class CardLocked(CardctlError):
    """The card has an effective lock or is not usable (exit 4)."""

    condition = Condition.LOCKED


class NotFound(CardctlError):
    """A card, operator or other record that is not there (exit 5)."""

    condition = Condition.NOT_FOUND


class CardNotFound(NotFound):
    def __init__(self, card_no: str) -> None:
        super().__init__(_("card {card} not found").format(card=card_no))
        self.card_no = card_no


class Refused(CardctlError):
    """An action refused: identity mismatch, weak PIN, not allowed in this state, ... (exit 6)."""

    condition = Condition.REFUSED


class IdentityMismatch(Refused):
    """The ID number presented is not the holder's of ``card_no``; ``action`` (an ``N_`` term such
    as "PIN reset") is what was refused. Raised as ``IdentityMismatch(card_no, action)``."""

    condition = Condition.IDENTITY_MISMATCH

    def __init__(self, card_no: str, action: str) -> None:
        super().__init__(_("the ID number given does not match the holder of card {card}; {action} refused").format(
            card=card_no, action=term(action)))
        self.card_no = card_no
        self.action = action


class WeakPin(Refused):
    condition = Condition.WEAK_PIN


class NotAllowed(Refused):
    """The card's (or operator's) state does not allow the action."""

    condition = Condition.NOT_ALLOWED


class Conflict(Refused):
    """What would be created exists already in another form."""

    condition = Condition.CONFLICT


class ChainBroken(Refused):
    """The audit chain (or an export of it) does not verify."""

    condition = Condition.CHAIN_BROKEN


class BatchFailed(CardctlError):
    """A batch finished but some of its items failed (exit 7)."""

    condition = Condition.BATCH_FAILED


class RowFailed(CardctlError):
    """The one card of a command that reports per card (``unlock CARD``) failed: it exits with
    its row's condition, as a command on one card does, not as a batch."""

    def __init__(self, item) -> None:  # a domain.model.ItemResult
        super().__init__(_("card {card}: {detail}").format(card=item.card_no, detail=item.detail or term(item.result)))
        self.condition = ROW_CONDITION[item.result]


class AccessRefused(Refused):
    """The acting login is not an operator, is disabled, or holds too low a role (exit 6)."""

    condition = Condition.ACCESS_REFUSED

    def __init__(self, message: str, login: str | None = None) -> None:
        super().__init__(message)
        self.login = login


class Cancelled(CardctlError):
    """Ctrl-C at a prompt, or a question answered no: nothing was changed (exit 130)."""

    condition = Condition.CANCELLED

    def __init__(self) -> None:
        super().__init__(_("cancelled; nothing changed"))


class Interrupted(CardctlError):
    """Ctrl-C while a command ran: the transaction in flight was rolled back, so nothing of it
    changed (exit 130, as ``Cancelled``)."""

    condition = Condition.CANCELLED

    def __init__(self) -> None:
        super().__init__(_("interrupted; the transaction in flight was rolled back"))


class InternalError(CardctlError):
    """A bug: an exception nobody expected, caught at the CLI edge so no traceback shows (exit 1)."""

    condition = Condition.INTERNAL

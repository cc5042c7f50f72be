"""The one error hierarchy of cardctl.

Every expected failure is a ``CardctlError`` whose class fixes the exit code.
Only the CLI edge turns them into a one-line message and ``typer.Exit``; below
it nothing calls ``sys.exit``. Messages are ``i18n._`` templates: English in
the audit trail and in machine output, the operator's language on screen.
"""

from __future__ import annotations

from .i18n import _

OK = 0
INTERNAL = 1
USAGE = 2
WRONG_PIN = 3
LOCKED = 4
NOT_FOUND = 5
REFUSED = 6
PARTIAL = 7


class CardctlError(Exception):
    """Base of every expected failure; ``exit_code`` is stable and documented."""

    exit_code = INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DatabaseError(CardctlError):
    """Missing, busy, uninitialised or too-new database (exit 1)."""


class KeyFileError(CardctlError):
    """Missing, unreadable or wrong secret key file (exit 1)."""


class InvalidInput(CardctlError):
    """Malformed ID number, card number, PIN, amount, file or option (exit 2)."""

    exit_code = USAGE


class WrongPin(CardctlError):
    exit_code = WRONG_PIN


class CardLocked(CardctlError):
    """The card has an effective lock or is not usable (exit 4)."""

    exit_code = LOCKED


class CardNotFound(CardctlError):
    exit_code = NOT_FOUND

    def __init__(self, card_no: str) -> None:
        super().__init__(_("card {card} not found").format(card=card_no))
        self.card_no = card_no


class Refused(CardctlError):
    """Identity mismatch, weak PIN, or an action not allowed in this state (exit 6)."""

    exit_code = REFUSED


class BatchFailed(CardctlError):
    """A batch finished but some of its items failed (exit 7)."""

    exit_code = PARTIAL


class AccessRefused(Refused):
    """The acting login is not an operator, is disabled, or holds too low a role (exit 6)."""

    def __init__(self, message: str, login: str | None = None) -> None:
        super().__init__(message)
        self.login = login


INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C (128 + SIGINT)


class Cancelled(CardctlError):
    """Ctrl-C at a prompt, or a question answered no: nothing was changed (exit 130)."""

    exit_code = INTERRUPTED

    def __init__(self) -> None:
        super().__init__(_("cancelled; nothing changed"))

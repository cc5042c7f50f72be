"""Which lifecycle step a card may take, and who may ask for it.

Each function returns why a step is refused, or None. They are given the card's
*effective* status (see ``model.effective_status``), so a lapsed temporary loss
report is already treated as an active card here.
"""

from __future__ import annotations

from ..i18n import _, term
from .model import CardStatus, LossKind

# 民法典 art. 17: 18 is full age; an agent or guardian acts for someone else and must be of it.
ADULT_AGE = 18


def pin_reset_problem(status: str) -> str | None:
    if status == CardStatus.ACTIVE:
        return None
    if status == CardStatus.PENDING:
        return _("card is pending; a new card gets its first PIN with activate")
    return _("card is {status}; the PIN of a {status} card cannot be reset").format(status=term(status))


def loss_report_problem(status: str, temporary: bool) -> str | None:
    """Active cards may be reported lost; a temporary report may be made formal."""
    if status == CardStatus.ACTIVE:
        return None
    if status == CardStatus.LOST:
        if temporary:
            return _("card is already reported lost (temporary); report it without --temporary "
                     "to make it formal, or withdraw it with cancel-loss")
        return None
    if status == CardStatus.PENDING:
        # a pending card has never been usable; replacing it is the whole remedy
        return _("card is pending (never activated); replace it with reissue --damaged")
    return _("card is void; there is nothing left to block")


def cancel_loss_problem(status: str, loss_kind: str | None) -> str | None:
    if status == CardStatus.LOST and loss_kind == LossKind.TEMPORARY:
        return None
    if status == CardStatus.VOID and loss_kind == LossKind.FORMAL:
        return _("a formal loss report cannot be withdrawn; the card is void (reissue it)")
    return _("card is {status}; there is no loss report to withdraw").format(status=term(status))


def reissue_problem(status: str, loss_kind: str | None, replaced_by: str | None,
                    damaged: bool) -> str | None:
    """A lost card (temporary or formal) is reissued; a live one only when it is damaged."""
    if replaced_by:
        return _("card was already replaced by {card}").format(card=replaced_by)
    if status == CardStatus.LOST:
        return None
    if status == CardStatus.VOID:
        return None if loss_kind == LossKind.FORMAL else _("card is void")
    if damaged:
        return None
    return _("card is {status}; report it lost first, or pass --damaged for a damaged card").format(
        status=term(status))


def representation_problem(holder_age: int, minor_age: int, agent_age: int | None,
                           agent_is_holder: bool) -> str | None:
    """A minor's card is handled by a guardian; any agent must be an adult other than the holder."""
    if agent_age is None:
        if holder_age < minor_age:
            return _("the holder is {age}, under the region's minor age of {minor_age}; a guardian must act "
                     "(--agent-id-number and --agent-name)").format(age=holder_age, minor_age=minor_age)
        return None
    if agent_is_holder:
        return _("the agent's ID number is the holder's own; an agent is someone else")
    if agent_age < ADULT_AGE:
        return _("the agent is {age}; an agent or guardian must be {adult_age} or older").format(
            age=agent_age, adult_age=ADULT_AGE)
    return None

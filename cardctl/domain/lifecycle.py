"""Which lifecycle step a card may take, and who may ask for it.

Each function returns why a step is refused, or None. They are given the card's
*effective* status (see ``model.effective_status``), so a lapsed temporary loss
report is already treated as an active card here.
"""

from __future__ import annotations

from .model import CardStatus, LossKind

# 民法典 art. 17: 18 is full age; an agent or guardian acts for someone else and must be of it.
ADULT_AGE = 18


def pin_reset_problem(status: str) -> str | None:
    if status == CardStatus.ACTIVE:
        return None
    if status == CardStatus.PENDING:
        return "card is pending; a new card gets its first PIN with activate"
    return f"card is {status}; the PIN of a {status} card cannot be reset"


def loss_report_problem(status: str, temporary: bool) -> str | None:
    """Active cards may be reported lost; a temporary report may be made formal."""
    if status == CardStatus.ACTIVE:
        return None
    if status == CardStatus.LOST:
        if temporary:
            return ("card is already reported lost (temporary); report it without --temporary "
                    "to make it formal, or withdraw it with cancel-loss")
        return None
    if status == CardStatus.PENDING:
        # a pending card has never been usable; replacing it is the whole remedy
        return "card is pending (never activated); replace it with reissue --damaged"
    return "card is void; there is nothing left to block"


def cancel_loss_problem(status: str, loss_kind: str | None) -> str | None:
    if status == CardStatus.LOST and loss_kind == LossKind.TEMPORARY:
        return None
    if status == CardStatus.VOID and loss_kind == LossKind.FORMAL:
        return "a formal loss report cannot be withdrawn; the card is void (reissue it)"
    return f"card is {status}; there is no loss report to withdraw"


def reissue_problem(status: str, loss_kind: str | None, replaced_by: str | None,
                    damaged: bool) -> str | None:
    """A lost card (temporary or formal) is reissued; a live one only when it is damaged."""
    if replaced_by:
        return f"card was already replaced by {replaced_by}"
    if status == CardStatus.LOST:
        return None
    if status == CardStatus.VOID:
        return None if loss_kind == LossKind.FORMAL else "card is void"
    if damaged:
        return None
    return f"card is {status}; report it lost first, or pass --damaged for a damaged card"


def representation_problem(holder_age: int, minor_age: int, agent_age: int | None,
                           agent_is_holder: bool) -> str | None:
    """A minor's card is handled by a guardian; any agent must be an adult other than the holder."""
    if agent_age is None:
        if holder_age < minor_age:
            return (f"the holder is {holder_age}, under the region's minor age of {minor_age}; "
                    "a guardian must act (--agent-id-number and --agent-name)")
        return None
    if agent_is_holder:
        return "the agent's ID number is the holder's own; an agent is someone else"
    if agent_age < ADULT_AGE:
        return f"the agent is {agent_age}; an agent or guardian must be {ADULT_AGE} or older"
    return None

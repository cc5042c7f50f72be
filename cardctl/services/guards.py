"""The checks every counter use case makes before it changes a card: the card exists, the
ID number presented is its holder's, the right person acts for the holder (docs/domain.md,
identity and guardians), a new PIN is not weak; and the refusal that is audited on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..domain import pins
from ..domain.identity import IdNumber, birth_date_pins
from ..domain.lifecycle import representation_problem
from ..domain.events import Outcome
from ..domain.records import CardRecord, HolderRecord
from ..domain.sealed import SealBroken, open_birth_date
from ..errors import CardctlError, CardNotFound, DatabaseError, IdentityMismatch, Refused, WeakPin
from ..i18n import _
from ..storage.audit import EventDraft
from .context import Context

if TYPE_CHECKING:
    from ..storage.stores import Tx


@dataclass(frozen=True)
class Agent:
    """Someone acting for the holder (委托代办), or a minor's guardian; both ID numbers are recorded."""

    id_number: IdNumber
    name: str


def load_card(tx: Tx, card_no: str, for_update: bool = False) -> CardRecord:
    """The card (under its row lock with ``for_update``), or CardNotFound."""
    card = tx.cards.get(card_no, for_update=for_update)
    if card is None:
        raise CardNotFound(card_no)
    return card


def check_identity(ctx: Context, tx: Tx, card: CardRecord, id_number: IdNumber, action: str) -> HolderRecord:
    """The ID number presented must be the card holder's; a mismatch is audited and refused.
    Returns the holder, read once for the checks that follow."""
    holder = tx.cards.holder(card.holder_id)
    if holder.id_hash != ctx.keys.id_hash(id_number.value):
        raise IdentityMismatch(card.card_no, action)
    return holder


def check_representation(ctx: Context, tx, card, person: IdNumber, agent: Agent | None) -> dict[str, Any]:
    """Refuse a minor without a guardian, or an agent who may not act; returns the event detail.

    ``person`` has already been matched to the card's holder; ``card`` needs only its region.
    """
    today = ctx.now().date()
    minor_age = ctx.policy_for(tx, card.region).minor_age
    holder_age = person.age(today)
    problem = representation_problem(
        holder_age, minor_age, agent.id_number.age(today) if agent else None,
        agent is not None and agent.id_number.value == person.value)
    if problem:
        raise RepresentationRefused(problem)
    if agent is None:
        return {}
    # No "guardian" flag and no age: either says the holder is a minor, which narrows the birth
    # date enough to rebuild the ID number from the mask (docs/security.md, "A copy of the database").
    return {"agent": agent.id_number.masked, "agent_name": agent.name}


class RepresentationRefused(Refused):
    """The clerk, who holds the ID card, is told why (the holder's or agent's age); the trail is
    told only that someone must act for the holder, which says nothing of anyone's age."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.recorded = _("a guardian or an adult agent other than the holder must act "
                          "(--agent-id-number and --agent-name)")


def refuse_weak(ctx: Context, tx: Tx, card: CardRecord, pin: str, holder: HolderRecord | None = None) -> None:
    """Only after the holder proved who they are (ID number or current PIN): the refusal
    names the birth date or the ID tail, which must tell nobody else anything."""
    holder = holder or tx.cards.holder(card.holder_id)
    policy = ctx.policy_for(tx, card.region)
    try:
        birth = open_birth_date(ctx.keys.data_key, holder.id_hash, holder.birth_sealed)
    except SealBroken:
        raise DatabaseError(_("the holder data of card {card} does not open with this key file").format(
            card=card.card_no)) from None
    why = pins.weakness(
        pin, default_pin=policy.default_pin, birth_pins=birth_date_pins(birth),
        is_id_tail=pins.id_tail_checker(holder.id_tail_hash, ctx.keys.id_hash),
    )
    if why:
        raise WeakPin(_("PIN refused: {why}; choose another").format(why=why))


def audited_refusal(ctx: Context, error: CardctlError, action: str, card_no: str | None) -> CardctlError:
    """Record a refused action in its own transaction, then hand the error back to raise."""
    # a refusal may word for the clerk what the trail must not keep (see RepresentationRefused)
    reason = getattr(error, "recorded", error.message)
    with ctx.write() as tx:
        tx.record([EventDraft(action, Outcome.REFUSED, card_no, reason=reason)])
    return error

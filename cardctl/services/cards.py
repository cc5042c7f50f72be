"""Registering cards (one or streamed from a file) and activating them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Iterable, Iterator

from ..domain import pins
from ..domain.identity import (IdNumber, parse_card_no, parse_id_number, parse_region, parse_uscc,
                               shown_card_no)
from ..domain.model import CardStatus, ItemResult
from ..domain.names import parse_name, parse_text
from ..domain.events import Action, Outcome
from ..domain.sealed import birth_sealer
from ..errors import Conflict, InvalidInput, NotAllowed, Refused
from ..i18n import N_, _, term
from ..keys import Keys
from ..storage.audit import EventDraft
from .context import Context
from .guards import Agent, audited_refusal, check_identity, check_representation, load_card, refuse_weak

if TYPE_CHECKING:
    from .runs import Run

INSURANCE_TYPES = ("employee", "resident")
ISSUERS_DEFAULT = "social-security"
MAX_ISSUER = 64  # the column's width: a longer value would abort a whole import chunk on PostgreSQL
_BCRYPT_HASH = re.compile(r"\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}")
# the row is already on record exactly (a rerun of a file after a crash): not a failure
ALREADY_ISSUED = "already issued"


@dataclass(frozen=True)
class CardInput:
    """A validated request to register one card."""

    card_no: str
    name: str
    id_number: IdNumber
    region: str
    insurance_type: str
    unit: str | None
    issuer: str = ISSUERS_DEFAULT
    pin_hash: str | None = None  # a legacy bcrypt hash carried over from another system


def parse_card_input(fields: dict[str, str | None], today: date) -> CardInput:
    """Validate one row or one ``issue`` command; raises InvalidInput naming the field."""

    def text(name: str, required: bool = True) -> str | None:
        value = fields.get(name)
        value = value.strip() if isinstance(value, str) else value
        if required and not value:
            raise InvalidInput(_("{field} is missing").format(field=name))
        return value or None

    insurance_type = (text("type", required=False) or "employee").lower()
    if insurance_type not in INSURANCE_TYPES:
        raise InvalidInput(_("type must be employee or resident, not {type!r}").format(type=insurance_type))
    unit = text("unit", required=False)
    legacy = text("pin_hash", required=False)
    if legacy is not None and not _BCRYPT_HASH.fullmatch(legacy):
        raise InvalidInput(_("pin_hash is not a bcrypt hash ($2b$, cost, 53 characters of salt and hash)"))
    issuer = text("issuer", required=False)
    return CardInput(
        card_no=parse_card_no(text("card_no")),
        name=parse_name(text("name")),
        id_number=parse_id_number(text("id_number"), today),
        region=parse_region(text("region")),
        insurance_type=insurance_type,
        unit=parse_uscc(unit) if unit else None,
        issuer=parse_text(issuer, N_("issuer"), MAX_ISSUER) if issuer else ISSUERS_DEFAULT,
        pin_hash=legacy,
    )


def _holder_row(card: CardInput, id_hash: str, keys: Keys, seal) -> dict:
    return {
        "id_hash": id_hash,
        "id_masked": card.id_number.masked,
        "id_tail_hash": keys.id_hash("tail:" + card.id_number.last6),
        "name": card.name,
        # never in clear: with the mask and the region it spells the ID number (docs/security.md)
        "birth_sealed": seal(id_hash, card.id_number.birth_date),
    }


def _card_row(card: CardInput, holder_id: int, now: datetime) -> dict:
    return {
        "card_no": card.card_no, "holder_id": holder_id, "region": card.region,
        "insurance_type": card.insurance_type, "issuer": card.issuer, "unit": card.unit,
        # a card migrated with its PIN hash is already in use; a new one awaits activation
        "status": (CardStatus.ACTIVE if card.pin_hash else CardStatus.PENDING).value, "failures": 0,
        "pin_hash": card.pin_hash, "pin_scheme": pins.SCHEME_LEGACY if card.pin_hash else None,
        "issued_at": now,
    }


def _issue_event(card: CardInput) -> EventDraft:
    return EventDraft(Action.CARD_ISSUE, Outcome.ISSUED, card.card_no,
                      detail={"region": card.region, "type": card.insurance_type,
                              "holder": card.id_number.masked,
                              "status": (CardStatus.ACTIVE if card.pin_hash else CardStatus.PENDING).value})


def issue_card(ctx: Context, card: CardInput) -> str:
    """Register one card in status pending; one live card per holder. Returns "issued", or
    "already issued" for a card on record exactly as asked (as ``import`` counts it: not a failure)."""
    results = list(issue_many(ctx, [(0, card)]))
    if results[0].result not in ("issued", ALREADY_ISSUED):
        raise Conflict(results[0].detail)
    return results[0].result


def issue_many(ctx: Context, numbered: Iterable[tuple[int, CardInput]],
               run: Run | None = None) -> Iterator[ItemResult]:
    """Insert one chunk of validated cards in one transaction; one result per card.

    Conflicts (card number taken, holder already has a live card, duplicates
    within the chunk) are reported per card and the others still go in. A card
    already on record with the same holder and details is ``already issued``, so
    importing a file again after a crash finishes the job instead of failing. ``run``: the
    import's run, begun in the first chunk that issues a card (services/runs.py).
    """
    numbered = list(numbered)
    keys, now = ctx.keys, ctx.now()
    hashes = {n: keys.id_hash(c.id_number.value) for n, c in numbered}
    results: dict[int, ItemResult] = {}
    with ctx.write() as tx:
        taken_cards, holders, live = tx.cards.issue_facts([c.card_no for _, c in numbered], list(hashes.values()))
        seen_cards: set[str] = set()
        seen_holders: set[str] = set()
        fresh: list[tuple[int, CardInput]] = []
        for n, card in numbered:
            problem = None
            if card.card_no in taken_cards and card.card_no not in seen_cards and \
                    _same_card(taken_cards[card.card_no], card, holders.get(hashes[n])):
                seen_cards.add(card.card_no)
                results[n] = ItemResult(card.card_no, ALREADY_ISSUED,
                                        _("card {card} is already issued to this holder").format(card=card.card_no))
                continue
            if card.card_no in taken_cards or card.card_no in seen_cards:
                problem = _("card {card} already exists").format(card=card.card_no)
            elif hashes[n] in seen_holders or holders.get(hashes[n]) in live:
                problem = _("holder {id_number} already has a live card").format(id_number=card.id_number.masked)
            if problem:
                results[n] = ItemResult(card.card_no, "refused", problem)
                continue
            seen_cards.add(card.card_no)
            seen_holders.add(hashes[n])
            fresh.append((n, card))
        # one executemany each for the new holders, the cards and their events
        fresh_holders = [(n, c) for n, c in fresh if hashes[n] not in holders]
        if fresh and run is not None:
            run.begin_in(tx)
        seal = birth_sealer(keys.data_key) if fresh_holders else None
        new_holders = [_holder_row(c, hashes[n], keys, seal) for n, c in fresh_holders]
        if new_holders:
            holders.update(tx.cards.insert_holders(new_holders))
        if fresh:
            tx.cards.insert_cards([_card_row(c, holders[hashes[n]], now) for n, c in fresh])
            tx.record([_issue_event(c) for _, c in fresh], now)
        for n, card in fresh:
            results[n] = ItemResult(card.card_no, "issued")
    for n, _card in numbered:
        yield results[n]


def _same_card(taken: tuple, card: CardInput, holder_id: int | None) -> bool:
    """``taken``: (holder_id, region, insurance_type, unit, issuer) of the card on record."""
    return taken == (holder_id, card.region, card.insurance_type, card.unit, card.issuer)


def activate(ctx: Context, card_no: str, id_number: IdNumber, pin: str, agent: Agent | None = None) -> None:
    """Identity checked, first PIN set (weak PINs refused), status active.

    A minor's card is activated by a guardian (``agent``), as every other counter action on
    it; an agent is recorded in the event.
    """
    try:
        with ctx.read() as tx:
            card = load_card(tx, card_no)
            if card.status != CardStatus.PENDING:
                raise NotAllowed(_("card {card} is {status}, not pending; only a pending card is activated").format(
                    card=card_no, status=term(card.status)))
            holder = check_identity(ctx, tx, card, id_number, N_("activation"))
            detail = check_representation(ctx, tx, card, id_number, agent)
            refuse_weak(ctx, tx, card, pin, holder)
    except (Refused, InvalidInput) as error:
        raise audited_refusal(ctx, error, Action.CARD_ACTIVATE, card_no)
    new_hash = pins.hash_pin(pin, ctx.keys.pepper, ctx.bcrypt_cost)  # slow: outside any lock
    now = ctx.now()
    with ctx.write() as tx:
        changed = tx.cards.update_if(card_no, {"status": CardStatus.PENDING.value},
                                     status=CardStatus.ACTIVE.value, pin_hash=new_hash,
                                     pin_scheme=pins.SCHEME_PEPPERED, failures=0, activated_at=now)
        outcome = Outcome.ACTIVATED if changed else Outcome.REFUSED
        tx.record([EventDraft(Action.CARD_ACTIVATE, outcome, card_no, detail=detail or None)], now)
    if not changed:
        raise NotAllowed(_("card {card} changed state while being activated; try again").format(card=card_no))


def import_rows(ctx: Context, path: str, chunk: int = 2000, run: Run | None = None) -> Iterator[ItemResult]:
    """Stream a CSV / JSON-lines file into ``issue_many``, one transaction per chunk; with ``run``
    the file is hashed as read and the run begins with the first card issued (services/runs.py)."""
    from ..sources import read_records

    today = ctx.now().date()
    batch: list[tuple[int, CardInput]] = []
    rows = read_records(path, required=("card_no", "name", "id_number", "region"),
                        digest=run.digest if run is not None else None)
    for row in rows:
        if row.problem is not None:
            yield ItemResult("", "invalid", _("line {line}: {problem}").format(line=row.line, problem=row.problem),
                             row.line)
            continue
        try:
            batch.append((row.line, parse_card_input(row.fields, today)))
        except InvalidInput as exc:
            shown = shown_card_no(row.fields.get("card_no") or "")[:12]  # an ID number there: masked
            yield ItemResult(shown, "invalid", _("line {line}: {problem}").format(line=row.line, problem=exc.message),
                             row.line)
            continue
        if len(batch) >= chunk:
            yield from _with_lines(issue_many(ctx, batch, run), batch)
            batch = []
    if batch:
        yield from _with_lines(issue_many(ctx, batch, run), batch)


def _with_lines(results: Iterator[ItemResult], batch) -> Iterator[ItemResult]:
    for (line, _card), item in zip(batch, results):
        detail = _("line {line}: {problem}").format(line=line, problem=item.detail) if item.detail else ""
        yield ItemResult(item.card_no, item.result, detail, line)

"""A card's life after activation: PIN reset and change, loss reports, reissue, the admin lock."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from ..domain.identity import parse_card_no, parse_id_number
from ..domain.model import LockKind, iso
from ..domain.money import format_fen
from ..domain.names import parse_name, parse_reason, parse_terminal
from ..domain.roles import Role
from ..errors import InvalidInput
from ..i18n import N_, _, terms
from ..render.formats import OutputFormat, emit
from ..render.tables import local
from .common import edge, examples, message, read_pins, runtime
from .confirm import card_changes, confirm
from .idnumbers import id_numbers
from .options import (AgentIdOpt, AgentNameOpt, CardArg, ChannelOpt, IdNumberOpt, IdStdinOpt, OutputOpt,
                      PinStdinOpt, TerminalOpt, YesOpt)


EXAMPLES = {
    "reset-pin": examples(
        "printf '11010519491231002X\\n583920\\n' | cardctl reset-pin A10000001 --id-stdin --pin-stdin",
        "cardctl reset-pin A10000001    # asks for the ID number, then the new PIN twice"),
    "change-pin": examples(
        "printf '583920\\n702614\\n' | cardctl change-pin A10000001 --pin-stdin",
        "cardctl change-pin A10000001    # asks for the current PIN, then the new one twice",
        "cardctl change-pin A10000001 --channel terminal --terminal PHARM-07    # where it is typed"),
    "report-lost": examples(
        "printf '11010519491231002X\\n' | cardctl report-lost A10000001 --id-stdin",
        "cardctl report-lost A10000001 --temporary --channel hotline",
        "cardctl report-lost A10000001    # formal: asks for the ID number"),
    "cancel-loss": examples("cardctl cancel-loss A10000001    # asks for the ID number"),
    "reissue": examples(
        "printf '11010519491231002X\\n' | cardctl reissue A10000001 --new-card-no A10000099 --id-stdin --damaged",
        "cardctl reissue A10000001 --new-card-no A10000099    # asks for the ID number"),
    "lock": examples('cardctl lock A10000001 --kind admin --reason "suspected card sharing, case 2026-118"'),
}


def register(app: typer.Typer) -> None:
    for name, command in (("reset-pin", reset_pin), ("change-pin", change_pin), ("report-lost", report_lost),
                          ("cancel-loss", cancel_loss), ("reissue", reissue), ("lock", lock)):
        app.command(name, epilog=EXAMPLES[name])(edge(command))


def parse_agent(agent_id: str | None, agent_name: str | None, today: date):
    """Both or neither: an agent is recorded with their ID number and name."""
    from ..services.lifecycle import Agent

    if agent_id is None and agent_name is None:
        return None
    if agent_id is None or agent_name is None:
        raise InvalidInput(_("an agent needs both --agent-id-number and --agent-name"))
    return Agent(parse_id_number(agent_id, today), parse_name(agent_name))


def _report(record: dict, output: OutputFormat, text: str) -> None:
    """A one-line confirmation in table mode, the record itself otherwise."""
    if output is OutputFormat.TABLE:
        message(text)
    else:
        emit([record], output)


def reset_pin(
    ctx: typer.Context,
    card_no: CardArg,
    id_number: IdNumberOpt = None,
    id_stdin: IdStdinOpt = False,
    pin_stdin: PinStdinOpt = False,
    agent_id: AgentIdOpt = None,
    agent_name: AgentNameOpt = None,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """The holder forgot the PIN: identity checked, a new PIN set, the PIN lock and failure count cleared.

    Arrears and admin locks stay in place. A minor's card (under the region's minor age)
    needs a guardian: --agent-id-number and --agent-name.
    """
    from ..services.lifecycle import reset_pin as reset

    ctx_ = runtime(ctx).context(channel, Role.STAFF)
    today = ctx_.now().date()
    card = parse_card_no(card_no)
    id_number, agent_id = id_numbers(id_number, agent_id, agent_name, id_stdin)
    person = parse_id_number(id_number, today)
    agent = parse_agent(agent_id, agent_name, today)
    (pin,) = read_pins(1, pin_stdin, (_("New PIN"),), confirm_new=True)
    result = reset(ctx_, card, person, pin, agent)
    done = (_("PIN of card {card} reset; PIN lock cleared") if result.pin_lock_cleared
            else _("PIN of card {card} reset")).format(card=card)
    kept = sorted({lock.kind for lock in result.still_locked})
    if kept:
        kinds = terms(kept)
        done = (_("{done}; still locked: {kinds} (owed {owed} yuan) — a PIN reset does not lift these")
                if LockKind.ARREARS in kept else
                _("{done}; still locked: {kinds} — a PIN reset does not lift these")).format(
            done=done, kinds=kinds, owed=format_fen(result.owed_fen))
    _report(result.record(), output, done)


def change_pin(
    ctx: typer.Context,
    card_no: CardArg,
    pin_stdin: PinStdinOpt = False,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
    terminal: TerminalOpt = None,
) -> None:
    """Change the PIN: the current PIN, then the new one (with --pin-stdin: two lines).

    A wrong current PIN counts like a wrong PIN at verify and can lock the card (exit 3);
    a locked or unusable card is refused (exit 4); a weak new PIN is refused (exit 6).
    """
    from ..services.lifecycle import change_pin as change

    rt = runtime(ctx)
    rt.terminal = parse_terminal(terminal)  # a bad one is refused before anything is read or written
    ctx_ = rt.context(channel, Role.STAFF)
    card = parse_card_no(card_no)
    old, new = read_pins(2, pin_stdin, (_("Current PIN"), _("New PIN")), confirm_new=True)
    change(ctx_, card, old, new)
    _report({"card_no": card, "result": "changed"}, output, _("PIN of card {card} changed").format(card=card))


def report_lost(
    ctx: typer.Context,
    card_no: CardArg,
    temporary: Annotated[bool, typer.Option(
        "--temporary",
        help=N_("Temporary report (phone, online): withdrawable, lapses after the region's days."))] = False,
    id_number: Annotated[str | None, typer.Option(
        "--id-number", help=N_("The holder's ID number; required for a formal report."))] = None,
    id_stdin: IdStdinOpt = False,
    agent_id: AgentIdOpt = None,
    agent_name: AgentNameOpt = None,
    yes: YesOpt = False,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Report a card lost: every use is blocked at once.

    --temporary: withdrawn with cancel-loss, or lapses by itself after the region's
    temp-loss-days. Without it (formal), the card is void for good and must be
    reissued; a temporary report is made formal the same way.
    """
    from ..services.loss import report_lost as report

    ctx_ = runtime(ctx).context(channel, Role.STAFF)
    today = ctx_.now().date()
    card = parse_card_no(card_no)
    id_number, agent_id = id_numbers(id_number, agent_id, agent_name, id_stdin, holder_needed=not temporary)
    person = parse_id_number(id_number, today) if id_number else None
    agent = parse_agent(agent_id, agent_name, today)
    if not temporary and not yes:
        confirm(card_changes(ctx_, card, _("a formal loss report makes card {card} void for good: it cannot be "
                                           "withdrawn, only replaced with reissue")), yes)
    result = report(ctx_, card, temporary, person, agent)
    tz = ctx_.settings.timezone
    text = (_("card {card} reported lost (temporary); it lapses {at} unless withdrawn with cancel-loss or "
              "made formal").format(card=card, at=local(iso(result.lapses_at), tz)) if temporary else
            _("card {card} reported lost (formal); it is void — issue a replacement with reissue").format(card=card))
    _report(result.record(), output, text)


def cancel_loss(
    ctx: typer.Context,
    card_no: CardArg,
    id_number: IdNumberOpt = None,
    id_stdin: IdStdinOpt = False,
    agent_id: AgentIdOpt = None,
    agent_name: AgentNameOpt = None,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Withdraw a temporary loss report (解挂); the card is active again. A formal report cannot be withdrawn."""
    from ..services.loss import cancel_loss as cancel

    ctx_ = runtime(ctx).context(channel, Role.STAFF)
    today = ctx_.now().date()
    card = parse_card_no(card_no)
    id_number, agent_id = id_numbers(id_number, agent_id, agent_name, id_stdin)
    person = parse_id_number(id_number, today)
    result = cancel(ctx_, card, person, parse_agent(agent_id, agent_name, today))
    _report(result.record(), output, _("loss report of card {card} withdrawn; the card is active again").format(
        card=card))


def reissue(
    ctx: typer.Context,
    card_no: Annotated[str, typer.Argument(help=N_("The lost or damaged card's number."))],
    new_card_no: Annotated[str, typer.Option("--new-card-no", help=N_("Number of the replacement card."))],
    id_number: IdNumberOpt = None,
    id_stdin: IdStdinOpt = False,
    damaged: Annotated[bool, typer.Option(
        "--damaged",
        help=N_("Replace a card that is not reported lost (damaged, demagnetised, never collected)."))] = False,
    agent_id: AgentIdOpt = None,
    agent_name: AgentNameOpt = None,
    yes: YesOpt = False,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Replace a lost or damaged card (补办): the old card becomes void, the new one is pending
    for the same holder and must be activated. Arrears and admin locks carry over.
    """
    from ..services.loss import reissue as replace

    ctx_ = runtime(ctx).context(channel, Role.STAFF)
    today = ctx_.now().date()
    card, new = parse_card_no(card_no), parse_card_no(new_card_no)
    id_number, agent_id = id_numbers(id_number, agent_id, agent_name, id_stdin)
    person = parse_id_number(id_number, today)
    agent = parse_agent(agent_id, agent_name, today)
    if not yes:
        confirm(card_changes(ctx_, card, _("card {card} becomes void for good; {new} is issued to the same holder, "
                                           "pending activation"), new=new), yes)
    result = replace(ctx_, card, new, person, damaged, agent)
    done = _("card {card} is void; replacement {new} issued, pending activation").format(card=card, new=new)
    if result.carried_locks:
        done = _("{done}; carried over: {kinds} lock").format(done=done, kinds=terms(result.carried_locks))
    _report(result.record(), output, done)


def lock(
    ctx: typer.Context,
    card_no: CardArg,
    reason: Annotated[str, typer.Option("--reason", help=N_("Why: the account anomaly or violation."))],
    kind: Annotated[LockKind, typer.Option(
        "--kind", help=N_("admin: the only kind set by hand (pin locks come from wrong PINs, "
                       "arrears locks from add-arrears)."), case_sensitive=False)] = LockKind.ADMIN,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
) -> None:
    """Put an admin lock on a card (account anomaly); it ends only with unlock --kind admin --reason."""
    from ..services.lifecycle import lock_admin

    if kind is not LockKind.ADMIN:
        raise InvalidInput((_("only admin locks are set by hand; pin locks come from wrong PINs")
                            if kind is LockKind.PIN else
                            _("only admin locks are set by hand; arrears locks come from add-arrears")))
    reason = parse_reason(reason)  # one limit for every free-text option; no ID number kept
    ctx_ = runtime(ctx).context(channel, Role.ADMIN)
    card = parse_card_no(card_no)
    result = lock_admin(ctx_, card, reason)
    _report({"card_no": card, "result": result, "kind": kind.value}, output,
            (_("card {card}: admin lock set") if result == "locked"
             else _("card {card}: admin lock already in force")).format(card=card))


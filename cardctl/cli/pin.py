"""PIN commands: verify."""

from __future__ import annotations

import typer

from ..domain.identity import parse_card_no
from ..domain.names import parse_terminal
from ..domain.roles import Role
from ..i18n import _
from ..render.formats import OutputFormat, emit
from ..render.tables import verify_panel
from .common import edge, examples, finish, read_pins, runtime
from .options import CardArg, ChannelOpt, OutputOpt, PinStdinOpt, TerminalOpt


def register(app: typer.Typer) -> None:
    app.command("verify", epilog=examples(
        "printf '583920\\n' | cardctl verify A10000001 --pin-stdin -o json",
        "cardctl verify A10000001    # asks for the PIN on a hidden prompt",
        "cardctl verify A10000001 --channel terminal --terminal PHARM-07    # the events name where it was typed"))(
        edge(verify))


def verify(
    ctx: typer.Context,
    card_no: CardArg,
    pin_stdin: PinStdinOpt = False,
    output: OutputOpt = OutputFormat.TABLE,
    channel: ChannelOpt = None,
    terminal: TerminalOpt = None,
) -> None:
    """Check a PIN. The Nth consecutive wrong PIN locks the card for the region's lock hours.

    A locked or unusable card is refused without checking the PIN, and the attempt is not counted.
    Exit 0 correct, 3 wrong, 4 locked or unusable.
    """
    from ..services.verify import verify_pin

    rt = runtime(ctx)
    rt.terminal = parse_terminal(terminal)  # a bad one is refused before anything is read or written
    ctx_ = rt.context(channel, Role.STAFF)
    card = parse_card_no(card_no)
    (pin,) = read_pins(1, pin_stdin, (_("PIN"),))
    result = verify_pin(ctx_, card, pin)
    tz = ctx_.settings.timezone
    emit([result.record()], output, table=lambda rows: verify_panel(next(iter(rows)), tz))
    raise finish(result.result)

"""Prompts a person answers: the question before an irreversible action, and Ctrl-C at any prompt.

At a terminal (standard input is one), formal ``report-lost``, ``reissue``, ``operator disable``,
``policy set`` and ``unlock --kind admin`` of more than one card say what will change and ask
y/N first; ``--yes`` skips the question. Without a terminal (a script, cron, a pipe) they act as
they always did, so scripts keep working. Ctrl-C at a question or at a PIN or password prompt,
or any answer but yes, ends the command with "cancelled; nothing changed" (exit 130): every
prompt comes before the command's first write.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator

from ..errors import Cancelled
from ..i18n import _, localize
from ..render.formats import literal
from .console import err

YES = frozenset({"y", "yes", "是", "是的", "好", "确认"})


@contextlib.contextmanager
def cancellable() -> Iterator[None]:
    """Ctrl-C (or end of input) while a person is asked something cancels the command cleanly."""
    try:
        yield
    except (KeyboardInterrupt, EOFError):
        err.print()  # the prompt's line was left open
        raise Cancelled() from None


def at_terminal() -> bool:
    return sys.stdin.isatty()


def confirm(changes: list[str], yes: bool) -> None:
    """Show ``changes`` (messages) and ask y/N, at a terminal and without ``--yes``; anything but
    yes raises ``Cancelled``. Without a terminal, with ``--yes`` or with nothing to show, it
    returns at once."""
    if yes or not changes or not at_terminal():
        return
    for line in changes:
        err.print(literal(localize(line)), markup=False, highlight=False)
    with cancellable():
        err.print(literal(localize(_("Proceed? [y/N]"))) + " ", end="", markup=False, highlight=False)
        sys.stderr.flush()
        answer = sys.stdin.readline()
        if not answer:
            raise EOFError
    if answer.strip().lower() not in YES:
        raise Cancelled()


def card_changes(ctx_, card_no: str, change, **params) -> list[str]:
    """The question's text for an action on one card: who holds it and what happens to it
    (``change``: a message template with ``{card}`` and ``params``); nothing to ask about a card
    that does not exist (the action itself says so)."""
    if not at_terminal():
        return []
    from ..i18n import term
    from ..services.reads import cards_by_number

    views, _missing = cards_by_number(ctx_, [card_no])
    if not views:
        return []
    card = views[0]
    return [_("card {card}: {name}, {id_number}, {status}").format(
        card=card.card_no, name=card.holder_name, id_number=card.id_masked, status=term(card.status)),
        change.format(card=card.card_no, **params)]

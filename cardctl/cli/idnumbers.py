"""ID numbers from a prompt or standard input, so they stay out of process arguments.

Every user of the machine can read another process's arguments (``ps``, /proc/PID/cmdline),
so an ID number given as ``--id-number`` is shown to all of them. Left out, it is asked for
at a terminal, or read from standard input with ``--id-stdin``, in this order, one per line:

1. the holder's ID number (unless ``--id-number`` is given);
2. the agent's or guardian's (when ``--agent-name`` is given without ``--agent-id-number``);
3. then any PIN lines (``--pin-stdin``), as each command documents.

``--id-number`` still works, for a number that is not secret from the other users of the host.
"""

from __future__ import annotations

import sys

from ..errors import InvalidInput
from ..i18n import _, localize

# Msg objects: worded in the chosen language only when shown
HOLDER, AGENT = _("Holder's ID number"), _("Agent's or guardian's ID number")


def id_numbers(holder: str | None, agent_id: str | None, agent_name: str | None, from_stdin: bool,
               holder_needed: bool = True) -> tuple[str | None, str | None]:
    """(holder's, agent's) ID numbers as typed: from the options, else stdin or a prompt.

    ``holder_needed=False`` (unlock without a counter check, a temporary loss report): the
    holder's number is read only with --id-stdin.
    """
    if holder is None and (holder_needed or from_stdin):
        holder = _read(HOLDER, from_stdin)
    if agent_id is None and agent_name is not None:
        agent_id = _read(AGENT, from_stdin)
    return holder, agent_id


def _read(prompt, from_stdin: bool) -> str:
    at_terminal = sys.stdin.isatty()
    if not (from_stdin or at_terminal):
        raise InvalidInput(_("no terminal to ask for the ID number; use --id-stdin (ID numbers first, "
                             "then PINs, one per line)"))
    if at_terminal:
        sys.stderr.write(f"{localize(prompt)}: ")
        sys.stderr.flush()
    line = sys.stdin.readline()
    if not line.strip():
        raise InvalidInput(_("{what}: expected on a line of standard input").format(what=prompt))
    return line.strip()


def refuse_stdin_twice(from_stdin: bool, from_file: str | None) -> None:
    """Card numbers and ID numbers cannot both come from standard input."""
    if from_stdin and from_file == "-":
        raise InvalidInput(_("--id-stdin and --from - both want standard input; give the card list as a file"))

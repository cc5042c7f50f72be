"""The run id of a batch, said to the operator once the batch has ended (services/runs.py)."""

from __future__ import annotations

from ..i18n import _
from .common import message


def run_message(run) -> None:
    """One line on stderr (dropped by -q, as every summary): the run id to look the batch up by.
    The SHA-256 is not printed: the trail holds it (``audit log --run``), and a line of digits
    on stderr is masked as a possible ID number."""
    if run is not None and run.begun:
        message(_("run {run}: {rows} row(s) recorded; its events: cardctl audit log --run {run}").format(
            run=run.id, rows=sum(run.results.values())))

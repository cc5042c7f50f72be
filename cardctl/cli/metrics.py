"""metrics: the Prometheus text exposition of cards, locks, the sweep's lag and the audit head."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from ..domain.roles import Role
from ..i18n import N_
from .common import edge, examples, runtime

# A textfile is read by node_exporter, which runs as a login of its own; the figures name no
# one (docs/domain.md, "Metrics"), so unlike a report or an export it is readable by all.
TEXTFILE_MODE = 0o644


def register(app: typer.Typer) -> None:
    app.command("metrics", epilog=examples(
        "cardctl metrics",
        "cardctl metrics --textfile /var/lib/node_exporter/textfile/cardctl.prom",
        "cardctl metrics | grep '^cardctl_locks_expired_unrecorded'",
    ))(edge(metrics))


def metrics(
    ctx: typer.Context,
    textfile: Annotated[str | None, typer.Option(
        "--textfile", metavar="PATH",
        help=N_("Write to this file for node_exporter's textfile collector instead of standard output: "
                "replaced whole, never seen half-written."), show_default=False)] = None,
) -> None:
    """Print cards by region and status, cards locked now by kind, the sweep's lag, locks opened
    in the last 24 hours, the audit head and the last sweep, in the Prometheus text format.

    Needs the auditor role (an auditor key file is enough). The lag metrics show a sweep
    that stopped running: PIN locks past their end that no 'unlock --expired' has recorded
    yet, and how long ago the oldest ended.
    """
    rt = runtime(ctx)
    if textfile == "-":  # standard output, as '-' is for every output option
        textfile = None
    if textfile is not None:  # refused before any work: the database, a key file, a device
        from ..output_file import check_target

        check_target(textfile, True, rt.settings().protected_files())
    # the sqlite3 start-up path where it can serve (storage/lite.py): a scrape costs no SQLAlchemy
    ctx_ = rt.quick_context(Role.AUDITOR) or rt.context(role=Role.AUDITOR)
    from ..render.prometheus import exposition
    from ..services.metrics import gather

    text = exposition(gather(ctx_))
    if textfile is None:
        sys.stdout.buffer.write(text)
        sys.stdout.buffer.flush()
        return
    from ..output_file import output_file

    with output_file(textfile, True, ctx_.settings.protected_files()) as out:
        os.fchmod(out.fileno(), TEXTFILE_MODE & ~_umask())
        out.write(text)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

"""The figures of ``cardctl metrics``: the population and the locks as they stand now, the
sweep's lag, and the audit trail's head (docs/domain.md, "Metrics").

One read transaction of the context's read store: on an SQLite file the sqlite3 start-up
path (storage/lite.py), so a scrape every minute costs no SQLAlchemy import. "Now" is the
context's (the PostgreSQL server's time there), and a lock binds at read time as ``status``
decides it: a PIN lock past its end counts as ended, and as lag until the sweep records it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from ..domain.metrics import Metrics
from ..domain.model import LockKind

if TYPE_CHECKING:
    from .context import Context

OPENED_WITHIN = timedelta(hours=24)
# the batch.start/batch.end detail's command of the cron sweep (docs/domain.md, "Batch provenance")
SWEEP_COMMAND = "unlock --expired"


def gather(ctx: Context) -> Metrics:
    now = ctx.now()
    figures = ctx.reading(lambda store: store.metric_figures(now, now - OPENED_WITHIN, SWEEP_COMMAND))
    kinds = [kind.value for kind in LockKind]
    oldest = figures.oldest_unrecorded
    return Metrics(
        at=now,
        cards=tuple(figures.cards),
        locked={kind: figures.locked.get(kind, (0, 0))[0] for kind in kinds},
        escalated=sum(escalated for _cards, escalated in figures.locked.values()),
        unrecorded=figures.unrecorded,
        unrecorded_age_s=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        opened={kind: figures.opened.get(kind, 0) for kind in kinds},
        head_seq=figures.head_seq or 0,
        head_at=figures.head_recorded_at,
        last_sweep_at=figures.last_sweep_at,
    )

"""The report's ``runs`` section: one row per batch run started in the period (docs/domain.md,
"Batch provenance"), from its ``batch.start`` and ``batch.end`` events alone.

A run whose ``batch.end`` is not in the period (cut short, or still running at ``--until``) is
listed as unfinished, with no end, rows or results: never left out. Runs are not per region
(one file may hold cards of many), so ``--region`` does not narrow this section.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..domain.events import Action
from ..domain.model import iso

if TYPE_CHECKING:
    from ..storage.stores import Tx

COLUMNS = ["run_id", "command", "operator", "actor", "channel", "started_at", "ended_at", "finished", "input",
           "input_sha256", "rows", "results"]


def _detail(text: Any) -> dict:
    """An event's detail as cardctl wrote it; anything else (damaged behind its back) as empty:
    the row still shows, and ``audit verify`` says what was changed."""
    try:
        found = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        return {}
    return found if isinstance(found, dict) else {}


def runs(tx: Tx, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Runs in start order; the end's figures (rows, results, the input's SHA-256) when it ended."""
    found: dict[str, dict[str, Any]] = {}
    for run_id, action, at, operator, actor, channel, detail_text in tx.reports.batch_events(since, until):
        detail = _detail(detail_text)
        if action == Action.BATCH_START.value:
            found[run_id] = {"run_id": run_id, "command": detail.get("command"), "operator": operator,
                             "actor": actor, "channel": channel, "started_at": iso(at), "ended_at": None,
                             "finished": False, "input": detail.get("input"), "input_sha256": None,
                             "rows": None, "results": None}
        elif run_id in found:  # an end whose start is before the period: that run is not in it
            found[run_id].update(ended_at=iso(at), finished=True, input_sha256=detail.get("input_sha256"),
                                 rows=detail.get("rows"), results=detail.get("results"))
    return list(found.values())

"""``cardctl metrics`` on the full population, and its baseline in plain ``sqlite3``.

A scrape runs every minute or so from cron, so like ``status CARD`` it is timed with the
interpreter's start included and has a target of its own (README, "Performance").
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from .bench import Bench
from .measure import median_run
from .ops_read import _median_timed
from .rawops import EFFECTIVE
from .rawsql import connect, stored

TARGET_S = 1.0  # "well under a second" at 1M cards, interpreter start included

LAPSED = "c.status = 'lost' AND c.loss_kind = 'temporary' AND c.loss_lapses_at <= ?"
SQL = {
    # the same split cardctl makes: per region from the covering region index, the cards not
    # active through the status index (grouping every card by region and status sorts them all)
    "regions": "SELECT region, count(*) FROM cards GROUP BY region",
    "not_active": (f"SELECT c.region, CASE WHEN {LAPSED} THEN 'active' ELSE c.status END AS s, count(*)"
                   " FROM cards c WHERE c.status IN ('pending', 'lost', 'void') GROUP BY c.region, s"),
    "locked": (f"SELECT l.kind, count(DISTINCT l.card_no), count(DISTINCT CASE WHEN l.escalated THEN l.card_no END)"
               f" FROM locks l WHERE {EFFECTIVE} GROUP BY l.kind"),
    "lag": "SELECT count(*), min(ends_at) FROM locks WHERE kind = 'pin' AND ended_at IS NULL AND ends_at <= ?",
    "opened": "SELECT kind, count(*) FROM locks WHERE started_at > ? GROUP BY kind",
    "head": "SELECT h.seq, e.recorded_at FROM audit_head h LEFT JOIN events e ON e.seq = h.seq",
    "sweep": ("SELECT recorded_at FROM events WHERE action IN ('batch.start', 'batch.end') AND action = 'batch.end'"
              " AND detail LIKE '%\"command\": \"unlock --expired\"%' ORDER BY seq DESC LIMIT 1"),
}


def metrics(db: Path, now: datetime, out: TextIO) -> int:
    """``cardctl metrics``: the same statements in one read transaction, the lines written by hand."""
    conn = connect(db)
    conn.execute("BEGIN DEFERRED")
    at = stored(now)
    counts = {(region, status): n for region, status, n in conn.execute(SQL["not_active"], [at])}
    rest: dict[str, int] = {}
    for (region, status), n in counts.items():
        if status != "active":
            rest[region] = rest.get(region, 0) + n
    for region, total in conn.execute(SQL["regions"]):
        if total > rest.get(region, 0):
            counts[region, "active"] = total - rest.get(region, 0)
    locked = conn.execute(SQL["locked"], [at]).fetchall()
    lag, oldest = conn.execute(SQL["lag"], [at]).fetchone()
    opened = conn.execute(SQL["opened"], [stored(now - timedelta(hours=24))]).fetchall()
    head = conn.execute(SQL["head"]).fetchone()
    sweep = conn.execute(SQL["sweep"]).fetchone()
    conn.execute("COMMIT")
    conn.close()
    lines = [f'cardctl_cards{{region="{r}",status="{s}"}} {n}' for (r, s), n in sorted(counts.items())]
    lines += [f'cardctl_cards_locked{{kind="{kind}"}} {n}' for kind, n, _escalated in locked]
    lines.append(f"cardctl_cards_locked_escalated {sum(e for _kind, _n, e in locked)}")
    lines.append(f"cardctl_locks_expired_unrecorded {lag}")
    age = (now - datetime.fromisoformat(oldest + "+00:00")).total_seconds() if oldest else 0.0
    lines.append(f"cardctl_locks_expired_unrecorded_oldest_age_seconds {age}")
    lines += [f'cardctl_locks_opened_last_24h{{kind="{kind}"}} {n}' for kind, n in opened]
    lines.append(f"cardctl_audit_head_seq {head[0]}")
    lines.append(f"cardctl_audit_head_timestamp_seconds {datetime.fromisoformat(head[1] + '+00:00').timestamp()}")
    swept = datetime.fromisoformat(sweep[0] + "+00:00").timestamp() if sweep else math.nan
    lines.append(f"cardctl_last_sweep_timestamp_seconds {swept}")
    out.write("\n".join(lines) + "\n")
    return len(lines)


def op_metrics(b: Bench) -> dict:
    """``cardctl metrics`` on the full database, interpreter start included, median of the runs."""
    db = b.population.db
    printed = b.path("metrics.prom")
    runs = [b.cardctl(db, "metrics", stdout=printed) for _ in range(b.repeat)]
    cardctl = median_run(runs)
    due = f"cardctl_locks_expired_unrecorded {float(len(b.population.shape.pin_due))}\n"
    if due not in printed.read_text(encoding="utf-8"):
        raise AssertionError(f"metrics did not print {due!r} (the population's PIN locks past their end)")
    raw = _median_timed(b, lambda out: metrics(db, b.now(), out))
    return b.record(
        "metrics", f"metrics on {b.cards:,} cards, median of {b.repeat}", "cardctl --db X metrics",
        [("cardctl_s", TARGET_S)], cardctl, raw, cardctl_walls_s=cardctl["walls_s"],
        baseline="cards per region (covering index) less those not active, locks in force by kind, the sweep's "
                 "lag, locks opened in 24 h, the audit head, the last sweep; the lines written by hand")

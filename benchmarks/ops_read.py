"""The read-only operations: start-up, one card's status, the summary, the locked-card stream.

They read the population database itself (nothing is written); the stream runs get
two copies that differ only in how many cards are locked.
"""

from __future__ import annotations

import os
import statistics
import sys

from . import rawops, shape
from .bench import Bench, as_dict, run_dict
from .measure import median_run, run_cardctl, run_command, timed
from .population import card_no

FLAT = 1.10  # "memory flat": peak RSS at 10x the rows at most 10% above


def _median_timed(b: Bench, work, repeat: int | None = None) -> dict:
    with open(os.devnull, "w") as out:
        runs = [timed(lambda: work(out)) for _ in range(repeat or b.repeat)]
    return {"wall_s": statistics.median(t.wall_s for t in runs), "cpu_s": statistics.median(t.cpu_s for t in runs)}


def op_startup(b: Bench) -> dict:
    """``cardctl --help``: the interpreter and import floor under every command (no target).

    ``python -c "import sqlalchemy"`` runs interleaved with it: the floor of any command that
    touches the database, measured at the same moments (the machine's speed varies with load).
    """
    runs, imports = [], []
    for _ in range(b.repeat):
        runs.append(run_cardctl(b.child, ["--help"]))
        imports.append(run_command(b.child, [sys.executable, "-c", "import sqlalchemy"]))
    cardctl, sqlalchemy = median_run(runs), median_run(imports)
    return b.record("startup", f"cardctl --help (interpreter + imports), median of {b.repeat}", "cardctl --help",
                    [], cardctl, None, cardctl_walls_s=cardctl["walls_s"],
                    sqlalchemy_import_s=sqlalchemy["wall_s"], sqlalchemy_import_cpu_s=sqlalchemy["cpu_s"])


def op_status_card(b: Bench) -> dict:
    """``status CARD`` of a PIN-locked card on the full database, interpreter start included.

    The target is checked on ``-o json``; the table (the default output) and ``python -c
    "import sqlalchemy"`` (the floor under it) are measured alongside, runs interleaved.
    """
    card = card_no(b.population.shape.pin_open[0])
    db = b.population.db
    runs, table_runs, imports = [], [], []
    for _ in range(b.repeat):
        runs.append(b.cardctl(db, "status", card, "-o", "json"))
        table_runs.append(b.cardctl(db, "status", card))
        imports.append(run_command(b.child, [sys.executable, "-c", "import sqlalchemy"]))
    cardctl, table, sqlalchemy = median_run(runs), median_run(table_runs), median_run(imports)
    raw = _median_timed(b, lambda out: rawops.status_card(db, card, b.now(), out))
    return b.record(
        "status_card", f"status CARD on {b.cards:,} cards, median of {b.repeat}", "cardctl --db X status CARD -o json",
        [("cardctl_s", 0.5)], cardctl, raw, cardctl_walls_s=cardctl["walls_s"],
        cardctl_s_table=table["wall_s"], cardctl_cpu_s_table=table["cpu_s"], table_walls_s=table["walls_s"],
        sqlalchemy_import_s=sqlalchemy["wall_s"],
        baseline="the card + holder row, its effective locks, its lapsed PIN locks; one JSON array")


def op_summary(b: Bench) -> dict:
    """``status --summary`` over the whole population (a few seconds a run at 1M: 3 runs each side)."""
    db, repeat = b.population.db, min(b.repeat, 3)
    b.say(f"summary: {repeat} runs over {b.cards:,} cards")
    runs = [b.cardctl(db, "status", "--summary", "-o", "json") for _ in range(repeat)]
    cardctl = median_run(runs)
    raw = _median_timed(b, lambda out: rawops.summary(db, b.now(), out), repeat)
    return b.record(
        "summary", f"status --summary over {b.cards:,} cards, median of {repeat}",
        "cardctl --db X status --summary -o json", [("ratio", 1.5)], cardctl, raw,
        cardctl_walls_s=cardctl["walls_s"], baseline="the same GROUP BY (LEFT JOIN effective locks); one JSON array")


def op_status_locked_stream(b: Bench) -> dict:
    """``status --locked -o jsonl`` with 1x and 10x the locked cards: peak RSS must stay flat."""
    many = len(b.population.shape.pin_locked)  # 100k among 1M
    few = max(1, many // 10)
    figures = {}
    for label, locked in (("few", few), ("many", many)):
        db = b.population_copy(f"stream-{label}")
        shape.with_locked(db, locked)
        listing = b.path(f"stream-{label}.jsonl")
        b.say(f"status_locked_stream: {locked:,} locked cards")
        run = b.cardctl(db, "status", "--locked", "-o", "jsonl", stdout=listing)
        with listing.open() as handle:
            printed = sum(1 for _ in handle)
        if printed != locked:
            raise AssertionError(f"status --locked printed {printed} cards, {locked} are locked")
        with open(os.devnull, "w") as out:
            raw = timed(lambda: rawops.locked_stream(db, b.now(), out))
        figures[label] = (locked, run, raw)
        listing.unlink()
        b.drop(db)
    (n_few, run_few, raw_few), (n_many, run_many, raw_many) = figures["few"], figures["many"]
    return b.record(
        "status_locked_stream", f"status --locked -o jsonl, {n_few:,} vs {n_many:,} locked cards",
        "cardctl --db X status --locked -o jsonl > out.jsonl", [("rss_growth", FLAT)],
        run_dict(run_many), as_dict(raw_many),
        locked_few=n_few, locked_many=n_many, peak_rss_mb_few=round(run_few.peak_rss_mb, 1),
        peak_rss_mb_many=round(run_many.peak_rss_mb, 1), rss_growth=round(run_many.peak_rss_mb / run_few.peak_rss_mb, 3),
        cardctl_s_few=run_few.wall_s, raw_s_few=raw_few.wall_s,
        baseline="the same EXISTS query in card order, 1000 rows a page, each page's locks by card; a JSON line each")

"""The operations that write: import, the cron sweep (with and without work), batch unlock, verify.

Each runs the cardctl command on one copy of its starting database and the plain-SQL
baseline (``rawops``) on another, then checks that both left the same counts behind
(cards, events, locks ended), so the two did the same work. ``verify`` instead compares
cardctl's PIN check with the bcrypt check alone.
"""

from __future__ import annotations

import os
import statistics

from . import rawops
from .bench import Bench, as_dict, count, run_dict
from .measure import median_run, timed
from .population import card_no

UNLOCK_REASON = "benchmark: terminal fault"


def _same(what: str, ours: int, theirs: int) -> None:
    if ours != theirs:
        raise AssertionError(f"{what}: cardctl left {ours}, the baseline {theirs}; the two did different work")


def op_import(b: Bench) -> dict:
    """``import`` of N cards from CSV; the baseline's database becomes the population."""
    b.say(f"import: cardctl import of {b.cards:,} rows")
    mine = b.fresh_db("import-cardctl")
    run = b.cardctl(mine, "import", str(b.csv), "-o", "jsonl")
    b.say(f"import: cardctl {run.wall_s:.1f} s, peak RSS {run.peak_rss_mb:.0f} MB; now the baseline")
    theirs = b.fresh_db("import-raw")
    raw = b.raw_import(theirs)
    for table in ("holders", "cards", "events"):
        _same(f"rows in {table}", count(mine, f"SELECT count(*) FROM {table}"), count(theirs, f"SELECT count(*) FROM {table}"))
    size_mb = os.path.getsize(mine) / 2**20
    b.drop(mine)
    b.prepare_population(imported=theirs)
    return b.record(
        "import", f"import {b.cards:,} cards from CSV (audit events included)",
        "cardctl --db X import cards.csv -o jsonl >/dev/null",
        [("ratio", 3), ("peak_rss_mb", 250)], run_dict(run), as_dict(raw),
        csv_mb=round(b.csv.stat().st_size / 2**20, 1), db_mb=round(size_mb, 1),
        rows_per_s_cardctl=round(b.cards / run.wall_s), rows_per_s_raw=round(b.cards / raw.wall_s),
        baseline="csv.reader + holders/cards/events executemany, HMAC id hashes and event chain (the run id on"
                 " each event, batch.start/batch.end, the file's SHA-256),"
                 " one BEGIN IMMEDIATE per 2000 rows, a JSON line per row; no validation, no duplicate look-ups")


def op_unlock_expired(b: Bench) -> dict:
    """The cron sweep with 5% of the cards due (50k among 1M)."""
    due = len(b.population.shape.pin_due)
    b.say(f"unlock_expired: {due:,} due among {b.cards:,}")
    mine, theirs = b.population_copy("expire-cardctl"), b.population_copy("expire-raw")
    run = b.cardctl(mine, "unlock", "--expired", "-o", "jsonl")
    with open(os.devnull, "w") as out:
        raw = timed(lambda: rawops.expire_due(theirs, b.keys, b.actor("system"), b.now(), out))
    ended = "SELECT count(*) FROM locks WHERE end_cause = 'expired'"
    events = "SELECT count(*) FROM events WHERE action = 'lock.expire'"
    _same("locks ended as expired", count(mine, ended), count(theirs, ended))
    _same("lock.expire events", count(mine, events), count(theirs, events))
    runs = "SELECT count(*) FROM events WHERE action IN ('batch.start', 'batch.end') AND run_id IS NOT NULL"
    _same("batch.start/batch.end events", count(mine, runs), count(theirs, runs))
    _same("locks ended vs due", count(mine, ended), due)
    b.drop(mine, theirs)
    return b.record(
        "unlock_expired", f"unlock --expired, {due:,} due among {b.cards:,} (audit events included)",
        "cardctl --db X unlock --expired -o jsonl >/dev/null", [("ratio", 2)], run_dict(run), as_dict(raw),
        items=due, baseline="a count of the due locks, then per 10,000: UPDATE locks ... RETURNING,"
                            " UPDATE cards SET failures = 0, chained lock.expire events, audit head; a JSON line"
                            " per lock; the run id on each event, batch.start/batch.end")


def op_unlock_expired_none(b: Bench) -> dict:
    """The cron sweep when nothing is due: what a run every minute costs."""
    db = b.population_copy("expire-none")
    with open(os.devnull, "w") as out:
        rawops.expire_due(db, b.keys, b.actor("system"), b.now(), out)  # clear what is due, untimed
        # the copy and the clearing wrote a gigabyte at 1M cards: let the kernel write it back
        # now, not during the sub-second runs measured next
        os.sync()
        raws = [timed(lambda: rawops.expire_due(db, b.keys, b.actor("system"), b.now(), out))
                for _ in range(b.repeat)]
    b.say(f"unlock_expired_none: {b.repeat} runs with none due among {b.cards:,}")
    runs = [b.cardctl(db, "unlock", "--expired", "-o", "jsonl") for _ in range(b.repeat)]
    _same("lock.expire events after the idle runs", count(db, "SELECT count(*) FROM events WHERE action = 'lock.expire'"),
          len(b.population.shape.pin_due))
    b.drop(db)
    cardctl = median_run(runs)
    raw = {"wall_s": statistics.median(t.wall_s for t in raws), "cpu_s": statistics.median(t.cpu_s for t in raws)}
    return b.record(
        "unlock_expired_none", f"unlock --expired, none due among {b.cards:,} (median of {b.repeat})",
        "cardctl --db X unlock --expired -o jsonl", [("cardctl_s", 0.6)], cardctl, raw,
        cardctl_walls_s=cardctl["walls_s"], baseline="the same sweep query, finding nothing")


def op_unlock_batch(b: Bench) -> dict:
    """``unlock --from FILE`` of every PIN-locked card (100k among 1M; half of them already past their end)."""
    chosen = b.population.shape.pin_locked
    listing = b.path("unlock-list.txt")
    listing.write_text("".join(card_no(i) + "\n" for i in chosen), encoding="utf-8")
    b.say(f"unlock_batch: {len(chosen):,} cards from a file")
    mine, theirs = b.population_copy("batch-cardctl"), b.population_copy("batch-raw")
    run = b.cardctl(mine, "unlock", "--from", str(listing), "--reason", UNLOCK_REASON, "-o", "jsonl")
    with open(os.devnull, "w") as out:
        raw = timed(lambda: rawops.unlock_file(theirs, listing, UNLOCK_REASON, b.keys, b.actor("counter"), b.now(), out))
    for cause in ("expired", "unlocked"):
        sql = f"SELECT count(*) FROM locks WHERE end_cause = '{cause}'"
        _same(f"locks ended as {cause}", count(mine, sql), count(theirs, sql))
    events = "SELECT count(*) FROM events"
    _same("events", count(mine, events), count(theirs, events))
    b.drop(mine, theirs)
    return b.record(
        "unlock_batch", f"unlock --from FILE, {len(chosen):,} cards among {b.cards:,}",
        "cardctl --db X unlock --from list.txt --reason R -o jsonl >/dev/null", [("ratio", 3)],
        run_dict(run), as_dict(raw), items=len(chosen),
        baseline="per 5000: read cards, end due PIN locks as expired (events), read effective locks,"
                 " end PIN locks as unlocked, reset failures, one chained lock.unlock event per card; the run id on"
                 " each event, batch.start/batch.end, the file's SHA-256")


def op_verify(b: Bench) -> dict:
    """``verify`` with the correct PIN: cardctl's time beyond the bcrypt check itself."""
    import bcrypt

    from cardctl.config import Settings
    from cardctl.domain import pins
    from cardctl.services.context import Context
    from cardctl.services.verify import verify_pin

    from .shape import PIN

    db, card = b.population_copy("verify"), b.population.free_card()
    pepper, stored = b.keys.pepper, b.population.pin_hash
    alone = [timed(lambda: pins.check_pin(PIN, stored, pins.SCHEME_PEPPERED, pepper)) for _ in range(b.repeat)]
    ctx = Context.open(Settings.resolve(str(db), str(b.child.key_file), "bench"))
    inside, original = [0.0], bcrypt.checkpw

    def counted(*args):  # time spent in bcrypt during each verify_pin call, to subtract it exactly
        t = timed(lambda: original(*args))
        inside[0] += t.wall_s
        return t.value

    overheads, totals = [], []
    bcrypt.checkpw = counted
    try:
        for attempt in range(b.repeat + 1):  # the first call warms caches and is not counted
            inside[0] = 0.0
            t = timed(lambda: verify_pin(ctx, card, PIN))
            if t.value.result != "ok":
                raise AssertionError(f"verify of {card} gave {t.value.result}")
            if attempt:
                overheads.append(t.wall_s - inside[0])
                totals.append(t.wall_s)
    finally:
        bcrypt.checkpw = original
        ctx.db.engine.dispose()
    cli_runs = min(b.repeat, 3)  # for reference only: each costs a bcrypt and a start-up
    b.say(f"verify: {cli_runs} CLI runs")
    runs = [b.cardctl(db, "verify", card, "--pin-stdin", "-o", "json", stdin=f"{PIN}\n".encode())
            for _ in range(cli_runs)]
    b.drop(db)
    bcrypt_s = statistics.median(t.wall_s for t in alone)
    cli = median_run(runs)
    return b.record(
        "verify", f"verify (correct PIN, bcrypt cost {b.bcrypt_cost}), median of {b.repeat}",
        "verify_pin() in process; cardctl --db X verify CARD --pin-stdin -o json", [("overhead_ms", 10)],
        cli, {"wall_s": bcrypt_s, "cpu_s": statistics.median(t.cpu_s for t in alone)},
        bcrypt_ms=bcrypt_s * 1000, verify_pin_ms=statistics.median(totals) * 1000,
        overhead_ms=statistics.median(overheads) * 1000, overheads_ms=[round(o * 1000, 2) for o in overheads],
        cli_overhead_ms=(cli["wall_s"] - bcrypt_s) * 1000,
        baseline="bcrypt.checkpw alone (via cardctl.domain.pins.check_pin) at the configured cost")

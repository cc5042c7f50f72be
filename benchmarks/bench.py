"""What every measured operation shares: the work folder, the key, the prepared databases, results.

Preparation (untimed unless ``import`` is measured): write the CSV, ``cardctl init`` a
template database (which also creates the key file), import the CSV with the plain-SQL
baseline and shape the result into the population (``shape``). Each writing operation
then works on its own byte copy of that population, so all start from one state.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from cardctl.config import DEFAULT_BCRYPT_COST, Settings, os_user
from cardctl.keys import Keys

from . import population, rawops, rawsql, shape
from .measure import OPERATOR, Child, Run, Timed, run_cardctl, timed
from .rawsql import Actor


@dataclass
class Bench:
    cards: int
    workdir: Path
    child: Child
    repeat: int
    say: Callable[[str], None]
    keys: Keys | None = None
    csv: Path | None = None
    template: Path | None = None
    population: shape.Population | None = None
    results: list[dict] = field(default_factory=list)

    # -- paths and helpers -------------------------------------------------------------

    def path(self, name: str) -> Path:
        return self.workdir / name

    def fresh_db(self, name: str) -> Path:
        """A copy of the freshly initialised template."""
        return rawsql.copy_db(self.template, self.path(f"{name}.db"))

    def population_copy(self, name: str) -> Path:
        return rawsql.copy_db(self.population.db, self.path(f"{name}.db"))

    def cardctl(self, db: Path, *args: str, **kwargs) -> Run:
        return run_cardctl(self.child, ["--db", str(db), *args], **kwargs)

    def actor(self, channel: str) -> Actor:
        return Actor(OPERATOR, os_user(), channel)

    @property
    def bcrypt_cost(self) -> int:
        return Settings.resolve(None, str(self.child.key_file), OPERATOR).bcrypt_cost or DEFAULT_BCRYPT_COST

    @staticmethod
    def now() -> datetime:
        return datetime.now(timezone.utc)

    @staticmethod
    def drop(*dbs: Path) -> None:
        for db in dbs:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(db) + suffix).unlink(missing_ok=True)

    # -- preparation ---------------------------------------------------------------------

    def prepare_inputs(self) -> None:
        population.check_regions()
        self.csv = self.path(f"cards-{self.cards}.csv")
        if not self.csv.exists():
            self.say(f"writing {self.cards:,} synthetic cards to {self.csv.name}")
            tmp = self.csv.with_suffix(".part")
            population.write_csv(tmp, self.cards)
            tmp.rename(self.csv)
        self.template = self.path("template.db")
        self.drop(self.template)
        run_cardctl(self.child, ["--db", str(self.template), "init"])
        self.keys = rawsql.keys_of(self.child.key_file)
        rawsql.self_check(self.keys, self.actor("counter"))

    def raw_import(self, db: Path) -> Timed:
        with open(os.devnull, "w", encoding="utf-8") as out:
            return timed(lambda: rawops.import_csv(db, self.csv, self.keys, self.actor("counter"), self.now(), out))

    def prepare_population(self, imported: Path | None = None, reuse: bool = False) -> None:
        """Shape ``imported`` (a database the baseline import filled) or import anew, untimed;
        with ``reuse``, take the population a recent run left in the work folder, if any."""
        db = self.path("population.db")
        if reuse and imported is None and (found := shape.reusable(db, self.cards)) is not None:
            age = (self.now() - found.built_at).total_seconds() / 60
            self.say(f"reusing the population built {age:.0f} min ago in {db}")
            self.population = found
            return
        shape.forget(db)
        if imported is None:
            self.say("importing the population with plain SQL (untimed)")
            self.raw_import(self.fresh_db("population"))
        elif imported != db:
            imported.rename(db)
        self.say("shaping the population: PIN locks, arrears, lost cards")
        chosen = population.choose_shape(self.cards)
        self.population = shape.build(db, chosen, self.keys.pepper, self.bcrypt_cost)
        shape.remember(self.population, self.cards)

    # -- results ---------------------------------------------------------------------------

    def record(self, name: str, title: str, command: str, targets: list[tuple[str, float]],
               cardctl: dict, raw: dict | None, **extra) -> dict:
        """One result row; ``targets`` are (metric, upper limit) pairs checked against the row."""
        row = {"name": name, "title": title, "command": command, "cards": self.cards,
               "cardctl_s": _round(cardctl.get("wall_s")), "cardctl_cpu_s": _round(cardctl.get("cpu_s")),
               "raw_s": _round(raw["wall_s"]) if raw else None, "raw_cpu_s": _round(raw["cpu_s"]) if raw else None,
               "ratio": None, "cpu_ratio": None, "peak_rss_mb": _round(cardctl.get("peak_rss_mb"), 1)}
        if raw and raw["wall_s"] > 0 and cardctl.get("wall_s") is not None:
            row["ratio"] = round(cardctl["wall_s"] / raw["wall_s"], 2)
        if raw and raw["cpu_s"] > 0 and cardctl.get("cpu_s") is not None:
            # less disturbed than wall time when other processes share the CPUs
            row["cpu_ratio"] = round(cardctl["cpu_s"] / raw["cpu_s"], 2)
        row.update({k: _round(v) if isinstance(v, float) else v for k, v in extra.items()})
        row["targets"] = [{"metric": metric, "limit": limit, "value": row.get(metric),
                           "ok": row.get(metric) is not None and row[metric] <= limit} for metric, limit in targets]
        row["ok"] = all(t["ok"] for t in row["targets"]) if targets else None
        self.results.append(row)
        return row


def _round(value, digits: int = 6):
    return None if value is None else round(value, digits)


def as_dict(t: Timed) -> dict:
    return {"wall_s": t.wall_s, "cpu_s": t.cpu_s}


def run_dict(run: Run) -> dict:
    return {"wall_s": run.wall_s, "cpu_s": run.cpu_s, "peak_rss_mb": run.peak_rss_mb}


def count(db: Path, sql: str, params=()) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


def journal_mode(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()

"""The results as a Rich table (stdout) and as JSON (``--out``)."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
from pathlib import Path

from rich.console import Console
from rich.table import Table

LABELS = {"ratio": "ratio", "cardctl_s": "wall s", "peak_rss_mb": "RSS MB", "overhead_ms": "overhead ms",
          "rss_growth": "RSS growth"}


def _num(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _target(row: dict) -> str:
    return ", ".join(f"{LABELS.get(t['metric'], t['metric'])} <= {t['limit']:g}" for t in row["targets"]) or "-"


def _verdict(row: dict) -> str:
    if row["ok"] is None:
        return "-"
    return "[green]ok[/]" if row["ok"] else "[red]MISS[/]"


def _note(row: dict) -> str:
    if row["name"] == "verify":
        return (f"bcrypt {row['bcrypt_ms']:.1f} ms; verify_pin {row['verify_pin_ms']:.1f} ms; "
                f"overhead {row['overhead_ms']:.1f} ms in process, {row['cli_overhead_ms']:.0f} ms via CLI")
    if row["name"] == "status_locked_stream":
        return (f"RSS {row['peak_rss_mb_few']:.0f} MB at {row['locked_few']:,} -> "
                f"{row['peak_rss_mb_many']:.0f} MB at {row['locked_many']:,} (x{row['rss_growth']:.2f})")
    if row["name"] == "import":
        return f"{row['rows_per_s_cardctl']:,} rows/s vs {row['rows_per_s_raw']:,} rows/s"
    notes = []
    if "cardctl_walls_s" in row:
        notes.append("runs: " + " ".join(f"{w:.2f}" for w in row["cardctl_walls_s"]))
    if "cardctl_s_table" in row:
        notes.append(f"as a table {row['cardctl_s_table']:.3f} s")
    if "sqlalchemy_import_s" in row:
        notes.append(f"import sqlalchemy alone {row['sqlalchemy_import_s']:.3f} s")
    return "; ".join(notes)


def table(results: list[dict], meta: dict) -> Table:
    grid = Table(title=f"cardctl vs plain sqlite3, {meta['cards']:,} cards", title_justify="left")
    for name, justify in (("operation", "left"), ("cardctl s", "right"), ("raw s", "right"), ("ratio", "right"),
                          ("peak RSS MB", "right"), ("target", "left"), ("", "left"), ("notes", "left")):
        grid.add_column(name, justify=justify)
    for row in results:
        grid.add_row(row["title"], _num(row["cardctl_s"], 3), _num(row["raw_s"], 3), _num(row["ratio"]),
                     _num(row["peak_rss_mb"], 0), _target(row), _verdict(row), _note(row))
    return grid


def print_table(results: list[dict], meta: dict) -> None:
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a file or pipe: keep one line per operation where possible
    console.print(table(results, meta))


def _git_commit(repo: Path) -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "cardctl"], cwd=repo, capture_output=True,
                               text=True)
    except OSError:
        return None
    if head.returncode:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def meta(cards: int, repeat: int, bcrypt_cost: int, journal: str | None, profiled: bool) -> dict:
    import cardctl

    repo = Path(__file__).resolve().parent.parent
    return {"cardctl_source": str(Path(cardctl.__file__).resolve().parent),"cards": cards, "repeat": repeat, "bcrypt_cost": bcrypt_cost, "journal_mode": journal,
            "profiled": profiled, "cpus": os.cpu_count(), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "platform": platform.platform(), "cardctl_commit": _git_commit(repo)}


def write_json(path: Path, meta_: dict, results: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"meta": meta_, "results": results, "summary": {r["name"]: r["ok"] for r in results}}
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

"""The benchmark harness (python -m benchmarks) runs end to end on a tiny population.

It measures nothing worth keeping at this size; it proves the harness works, writes
every figure it promises, and builds a population that cardctl itself accepts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROW_KEYS = {"name", "title", "command", "cards", "cardctl_s", "cardctl_cpu_s", "raw_s", "raw_cpu_s", "ratio",
            "peak_rss_mb", "targets", "ok", "bench_s", "baseline"}
META_KEYS = {"cards", "repeat", "bcrypt_cost", "journal_mode", "cpus", "python", "sqlite", "cardctl_source",
             "load_average_before", "load_average_after", "elapsed_s", "operations"}


def test_a_tiny_benchmark_run_writes_every_figure_and_keeps_the_audit_chain_intact(tmp_path: Path) -> None:
    out, work = tmp_path / "results.json", tmp_path / "work"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--cards", "2000", "--only", "summary,status_card",
         "--repeat", "3", "--out", str(out), "--workdir", str(work)],
        cwd=REPO, capture_output=True, text=True, timeout=120)

    # 1 means a target was missed: a finding about cardctl, not a broken harness
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    document = json.loads(out.read_text(encoding="utf-8"))
    assert set(document) == {"meta", "results", "summary"}
    assert META_KEYS <= set(document["meta"])
    assert document["meta"]["cards"] == 2000
    rows = {row["name"]: row for row in document["results"]}
    assert list(rows) == ["status_card", "summary"]
    for row in rows.values():
        assert ROW_KEYS <= set(row), row["name"]
        assert row["cardctl_s"] > 0 and row["raw_s"] > 0 and row["peak_rss_mb"] > 0
        assert row["ratio"] == pytest.approx(row["cardctl_s"] / row["raw_s"], rel=0.01)
        assert row["ok"] is all(target["ok"] for target in row["targets"])
    assert [t["metric"] for t in rows["summary"]["targets"]] == ["ratio"]
    assert [t["metric"] for t in rows["status_card"]["targets"]] == ["cardctl_s"]
    assert document["summary"] == {name: row["ok"] for name, row in rows.items()}
    assert "status CARD" in proc.stdout and "status --summary" in proc.stdout

    # the population was written with plain SQL; cardctl must find its audit chain intact
    env = {**os.environ, "CARDCTL_KEY_FILE": str(work / "cardctl.key")}
    # the cardctl of this interpreter's environment, not whichever one PATH finds first
    verify = subprocess.run([sys.executable, "-m", "cardctl", "--db", str(work / "population.db"),
                             "audit", "verify", "-o", "json"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stderr
    # init, then the import's run: batch.start, one card.issue per card (each with the run id), batch.end
    assert json.loads(verify.stdout)[0]["checked"] == 2003
